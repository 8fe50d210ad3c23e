//! Jobs you can see: a run's summary line, status file, run history and Prometheus metrics
//! (checked with `promtool check metrics`), `hoard status` exit codes, the classic 10 s wait
//! between tries, and the HTML report opened in headless Chromium at phone and desktop widths.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Env;

const PASS: &str = "job-status-passphrase";

/// An environment without BORG_PASSPHRASE, a source folder, a jobs folder with job `myjob`
/// (passphrase file) and an initialized repository.
fn setup() -> (Env, PathBuf, PathBuf, PathBuf) {
    let mut env = Env::new();
    env.passphrase = None;
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "hello").unwrap();
    std::fs::write(src.join("sub/b.txt"), "world").unwrap();
    let jobs = env.path().join("jobs");
    env.set("HOARD_CONFIG_DIR", &jobs.to_string_lossy());
    let job = new_job(&jobs, "myjob");
    let repo = env.path().join("repo");
    let r = repo_cmd(&env, &job)
        .args(["init", "-e", "repokey"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    (env, src, job, repo)
}

fn new_job(jobs: &Path, name: &str) -> PathBuf {
    let job = jobs.join(name);
    std::fs::create_dir_all(&job).unwrap();
    let pf = job.join("BORGKeyPassword.file");
    std::fs::write(&pf, format!("{PASS}\n")).unwrap();
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o600)).unwrap();
    job
}

/// A hoard command with the job's passphrase.
fn repo_cmd(env: &Env, job: &Path) -> Command {
    let mut c = env.hoard_cmd();
    c.env(
        "BORG_PASSCOMMAND",
        format!("cat {}", job.join("BORGKeyPassword.file").display()),
    );
    c
}

/// Writes the job's config: back up `src` to `target`, keep every archive of the last day
/// (`last: N` would be borg's `--keep-secondly`, which keeps one archive per second and so
/// prunes runs that finish within the same second), no wait between tries.
fn config(job: &Path, src: &Path, target: &Path, extra: &str) {
    std::fs::write(
        job.join("config.yaml"),
        format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  within: 1d\nretry_wait: 0\n{extra}",
            src.display(),
            target.display()
        ),
    )
    .unwrap();
}

fn json_file(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.display()))
}

/// `promtool`: `$HOARD_PROMTOOL`, else the copy `.ci/run` extracts from Debian's `prometheus`
/// package, else `promtool` on PATH. `None` (skip) only with `HOARD_SKIP_PROMTOOL=1`.
fn promtool() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("HOARD_PROMTOOL").map(PathBuf::from),
        Some(PathBuf::from("/var/tmp/hoard-promtool/promtool")),
        Some(PathBuf::from("promtool")),
    ];
    for c in candidates.into_iter().flatten() {
        let ok = Command::new(&c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(c);
        }
    }
    if std::env::var("HOARD_SKIP_PROMTOOL").as_deref() == Ok("1") {
        eprintln!("promtool not found; skipping the metrics check (HOARD_SKIP_PROMTOOL=1)");
        return None;
    }
    panic!("promtool is needed (Debian package prometheus; .ci/run extracts promtool to /var/tmp/hoard-promtool/), or set HOARD_PROMTOOL=/path/to/promtool; HOARD_SKIP_PROMTOOL=1 skips");
}

/// `promtool check metrics` on a file: (success, its output).
fn promtool_check(file: &Path) -> Option<(bool, String)> {
    let tool = promtool()?;
    let mut child = Command::new(tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(file).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &text).unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success() && msg.trim().is_empty(), msg))
}

fn summary_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    let n = lines.len();
    assert!(n >= 2, "{stderr}");
    // The summary comes right before the last line.
    let line = lines[n - 2];
    let (_, text) = line.split_once(" INFO ").unwrap_or(("", line));
    text
}

#[test]
fn run_writes_summary_status_history_and_metrics() {
    let (env, src, job, repo) = setup();
    config(&job, &src, &repo, "metrics: node/hoard.prom\n");
    std::fs::create_dir_all(job.join("node")).unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        let r = env.hoard(["run", "--config", "myjob", "--json"]).ok();
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        let name = v["archive"].as_str().unwrap().to_string();
        // The figures as `info` sees the archive.
        let info = repo_cmd(&env, &job)
            .args(["info", "--json"])
            .arg(format!("{}::{name}", repo.display()))
            .output()
            .unwrap();
        assert!(info.status.success());
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        let stats = &info["archives"][0]["stats"];
        assert_eq!(stats["nfiles"], 2);
        assert_eq!(stats["original_size"], 10);
        let st = json_file(&job.join("status.json"));
        assert_eq!(st["job"], "myjob");
        assert_eq!(st["result"], "success");
        assert_eq!(st["exit_code"], 0);
        assert_eq!(st["tries"], 1);
        assert_eq!(st["archive"], name.as_str());
        assert_eq!(st["sizes"]["files"], 2);
        assert_eq!(st["sizes"]["original"], stats["original_size"]);
        assert_eq!(st["sizes"]["compressed"], stats["compressed_size"]);
        assert_eq!(st["last_success"], st["end"]);
        assert_eq!(st["steps"][0]["name"], "create");
        assert_eq!(st["steps"][1]["name"], "prune");
        assert!(st.get("verification_coverage").is_none(), "{st}");
        assert!(st["start"].as_str().unwrap() < st["end"].as_str().unwrap());
        let line = summary_line(&r.stderr);
        let sizes = &st["sizes"];
        let want = format!(
            "Summary: job myjob: success, archive {name}, 2 files, original 10 B, compressed {} B, deduplicated {} B, duration ",
            sizes["compressed"], sizes["deduplicated"]
        );
        assert!(line.starts_with(&want), "{line:?}\nwant {want:?}");
        assert!(line.ends_with(", tries 1"), "{line}");
        names.push(name);
    }
    let st = json_file(&job.join("status.json"));
    // The first archive brought the data; the second only refers to it.
    assert_eq!(st["sizes"]["deduplicated"], 0);
    assert_eq!(st["archive_count"], 2);
    // The repository's stored size as `info` reports it.
    let info = repo_cmd(&env, &job)
        .args(["info", "--json"])
        .arg(&repo)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(
        st["repository_size"],
        info["cache"]["stats"]["unique_csize"]
    );
    let history = std::fs::read_to_string(job.join("history.jsonl")).unwrap();
    let runs: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["archive"], names[0].as_str());
    assert_eq!(runs[1]["archive"], names[1].as_str());
    // The statistics hand-over file is gone.
    assert!(!job.join(".hoard-create-stats.json").exists());
    let prom = std::fs::read_to_string(job.join("node/hoard.prom")).unwrap();
    for want in [
        "# TYPE hoard_job_last_run_success gauge\nhoard_job_last_run_success{job=\"myjob\"} 1\n",
        "hoard_job_repository_archives{job=\"myjob\"} 2\n",
        "hoard_job_last_archive_files{job=\"myjob\"} 2\n",
        "hoard_job_last_archive_original_bytes{job=\"myjob\"} 10\n",
        "hoard_job_last_run_tries{job=\"myjob\"} 1\n",
        "# HELP hoard_job_last_success_timestamp_seconds ",
    ] {
        assert!(prom.contains(want), "{want:?} missing:\n{prom}");
    }
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(job.join("node"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    if let Some((ok, msg)) = promtool_check(&job.join("node/hoard.prom")) {
        assert!(ok, "promtool: {msg}\n{prom}");
    }
    // --metrics-file writes elsewhere.
    let other = env.path().join("other.prom");
    let other_arg = other.to_string_lossy().into_owned();
    env.hoard(["run", "--config", "myjob", "--metrics-file", &other_arg])
        .ok();
    let prom = std::fs::read_to_string(&other).unwrap();
    assert!(
        prom.contains("hoard_job_repository_archives{job=\"myjob\"} 3\n"),
        "{prom}"
    );
}

#[test]
fn failed_run_keeps_the_last_success_and_says_so() {
    let (env, src, job, repo) = setup();
    config(&job, &src, &repo, "");
    env.hoard(["run", "--config", "myjob"]).ok();
    let good = json_file(&job.join("status.json"));
    config(
        &job,
        &src,
        &env.path().join("missing-repo"),
        "tries:\n  backup: 2\n  cleanup: 1\nmetrics: job.prom\n",
    );
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    let st = json_file(&job.join("status.json"));
    assert_eq!(st["result"], "failure");
    assert_eq!(st["exit_code"], 2);
    assert_eq!(st["tries"], 2);
    assert_eq!(st["steps"][0]["tries"], 2);
    assert_eq!(st["steps"][0]["result"], "failure");
    assert_eq!(st["last_success"], good["end"]);
    assert!(
        st["sizes"].is_null() && st["archive_count"].is_null(),
        "{st}"
    );
    let line = summary_line(&r.stderr);
    assert!(
        line.starts_with("Summary: job myjob: failure (exit 2), no archive, duration "),
        "{line}"
    );
    assert!(line.ends_with(", tries 2"), "{line}");
    let prom = std::fs::read_to_string(job.join("job.prom")).unwrap();
    assert!(
        prom.contains("hoard_job_last_run_success{job=\"myjob\"} 0\n"),
        "{prom}"
    );
    assert!(prom.contains("hoard_job_last_run_exit_code{job=\"myjob\"} 2\n"));
    assert!(prom.contains("hoard_job_last_success_timestamp_seconds{job=\"myjob\"} "));
    assert!(!prom.contains("hoard_job_repository_archives"), "{prom}");
    if let Some((ok, msg)) = promtool_check(&job.join("job.prom")) {
        assert!(ok, "promtool: {msg}\n{prom}");
    }
    // The control: promtool does reject a malformed file.
    std::fs::write(env.path().join("bad.prom"), "hoard job 1\n").unwrap();
    if let Some((ok, _)) = promtool_check(&env.path().join("bad.prom")) {
        assert!(!ok);
    }
    let history = std::fs::read_to_string(job.join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 2);
}

/// A run refused before its steps (an unsafe passphrase file with `strict_permissions`) is
/// a failed run for a monitor: status file, history, metrics and `hoard status`. A config
/// that does not parse is recorded in its job folder too (with `--metrics-file`).
#[test]
fn refused_runs_are_recorded_as_failures() {
    let (env, src, job, repo) = setup();
    config(&job, &src, &repo, "metrics: job.prom\n");
    env.hoard(["run", "--config", "myjob"]).ok();
    let good = json_file(&job.join("status.json"));
    config(
        &job,
        &src,
        &repo,
        "metrics: job.prom\nstrict_permissions: true\n",
    );
    let pf = job.join("BORGKeyPassword.file");
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    assert!(
        r.stderr.contains("strict_permissions: refusing to run"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Starting job"), "{}", r.stderr);
    let st = json_file(&job.join("status.json"));
    assert_eq!(st["result"], "failure", "{st}");
    assert_eq!(st["exit_code"], 2, "{st}");
    assert_eq!(st["last_success"], good["end"], "{st}");
    assert!(
        st["reason"]
            .as_str()
            .is_some_and(|m| m.contains("group/world accessible")),
        "{st}"
    );
    assert_eq!(st["steps"].as_array().map(Vec::len), Some(0), "{st}");
    let history = std::fs::read_to_string(job.join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");
    let line = summary_line(&r.stderr);
    assert!(
        line.starts_with("Summary: job myjob: failure (exit 2), no archive"),
        "{line}"
    );
    let prom = std::fs::read_to_string(job.join("job.prom")).unwrap();
    assert!(
        prom.contains("hoard_job_last_run_success{job=\"myjob\"} 0\n")
            && prom.contains("hoard_job_last_run_exit_code{job=\"myjob\"} 2\n"),
        "{prom}"
    );
    if let Some((ok, msg)) = promtool_check(&job.join("job.prom")) {
        assert!(ok, "promtool: {msg}\n{prom}");
    }
    let s = env.hoard(["status"]).expect_code(2).out();
    assert!(
        s.lines()
            .any(|l| l.starts_with("myjob ") && l.contains("FAILED")),
        "{s}"
    );
    // A config that does not parse: the job folder is known, the run is recorded there.
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(job.join("config.yaml"), "backup: [unclosed\n").unwrap();
    let r = env
        .hoard_cmd()
        .args(["run", "--config", "myjob", "--metrics-file"])
        .arg(env.path().join("cli.prom"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let st = json_file(&job.join("status.json"));
    assert_eq!(st["exit_code"], 2, "{st}");
    assert_eq!(st["job"], "myjob", "{st}");
    assert!(
        st["reason"]
            .as_str()
            .is_some_and(|m| m.contains("config.yaml")),
        "{st}"
    );
    assert_eq!(st["last_success"], good["end"], "{st}");
    let prom = std::fs::read_to_string(env.path().join("cli.prom")).unwrap();
    assert!(
        prom.contains("hoard_job_last_run_exit_code{job=\"myjob\"} 2\n"),
        "{prom}"
    );
    if let Some((ok, msg)) = promtool_check(&env.path().join("cli.prom")) {
        assert!(ok, "promtool: {msg}\n{prom}");
    }
    let history = std::fs::read_to_string(job.join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");
    // --dry-run records nothing
    env.hoard(["run", "--config", "myjob", "--dry-run"])
        .expect_code(2);
    let history = std::fs::read_to_string(job.join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");
}

/// SIGTERM while a hook runs (the process ends at once: nothing polls) still records the
/// run: failed, exit code 143, the signal as its reason, in the status file, the history
/// and the metrics.
#[test]
fn a_signal_during_a_hook_records_the_run() {
    let (env, src, job, repo) = setup();
    config(&job, &src, &repo, "metrics: job.prom\n");
    env.hoard(["run", "--config", "myjob"]).ok();
    let pid_file = job.join("hook.pid");
    config(
        &job,
        &src,
        &repo,
        &format!(
            "metrics: job.prom\nhooks:\n  before:\n    - 'echo $$ > {}.tmp && mv {0}.tmp {0} && exec sleep 60 >/dev/null 2>&1'\n",
            pid_file.display()
        ),
    );
    let mut child = env
        .hoard_cmd()
        .args(["run", "--config", "myjob"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait (without a time limit on the outcome) for the hook to be running
    let mut hook_pid = None;
    for _ in 0..3000 {
        if let Ok(t) = std::fs::read_to_string(&pid_file) {
            hook_pid = t.trim().parse::<i32>().ok();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let hook_pid = hook_pid.expect("the hook did not start");
    common::signal(&child, libc::SIGTERM);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    // SAFETY: kill(2) of the hook's sleep, which this test started through the job.
    unsafe {
        libc::kill(hook_pid, libc::SIGKILL);
    }
    assert_eq!(status.code(), Some(143), "{stderr}");
    let st = json_file(&job.join("status.json"));
    assert_eq!(st["result"], "failure", "{st}");
    assert_eq!(st["exit_code"], 143, "{st}");
    assert!(
        st["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Received SIGTERM")),
        "{st}"
    );
    let history = std::fs::read_to_string(job.join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");
    let prom = std::fs::read_to_string(job.join("job.prom")).unwrap();
    assert!(
        prom.contains("hoard_job_last_run_exit_code{job=\"myjob\"} 143\n")
            && prom.contains("hoard_job_last_run_success{job=\"myjob\"} 0\n"),
        "{prom}"
    );
    if let Some((ok, msg)) = promtool_check(&job.join("job.prom")) {
        assert!(ok, "promtool: {msg}\n{prom}");
    }
    assert!(
        summary_line(&stderr).starts_with("Summary: job myjob: failure (exit 143)"),
        "{stderr}"
    );
    env.hoard(["status"]).expect_code(2);
}

/// Rewrites a job's status as if its last success (and end) were `hours` ago.
fn age_status(job: &Path, hours: i64) {
    let mut st = json_file(&job.join("status.json"));
    let t = chrono::Utc::now() - chrono::Duration::hours(hours);
    let text = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    st["end"] = text.clone().into();
    st["last_success"] = text.into();
    std::fs::write(job.join("status.json"), st.to_string()).unwrap();
}

#[test]
fn status_exit_codes_for_healthy_failed_and_stale_jobs() {
    let (env, src, job, repo) = setup();
    config(&job, &src, &repo, "");
    env.hoard(["run", "--config", "myjob"]).ok();
    let jobs = env.path().join("jobs");
    // Only the healthy job: 0, and its line names the archive count and repository size.
    let out = env.hoard(["status"]).ok().out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("JOB    LAST SUCCESS      AGE"),
        "{}",
        lines[0]
    );
    let cells: Vec<&str> = lines[1]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells[0], "myjob");
    assert_eq!(cells[3], "success");
    assert_eq!(cells[4], "1");
    assert!(
        cells[5].ends_with(" B") || cells[5].ends_with("kB"),
        "{cells:?}"
    );
    // (no data verification configured: no coverage)
    assert_eq!(cells[6], "-");
    assert_eq!(cells[7], "ok");
    // A stale job (last success 3 days ago): 1.
    let stale = new_job(&jobs, "stale");
    config(
        &stale,
        &src,
        &env.path().join("repo2"),
        "encryption: none\n",
    );
    env.hoard(["run", "--config", "stale", "--init"]).ok();
    age_status(&stale, 72);
    let r = env.hoard(["status"]).expect_code(1);
    assert!(r.out().contains(" STALE\n"), "{}", r.out());
    // ... unless the allowed age is longer.
    env.hoard(["status", "--max-age", "4d"]).ok();
    // A failed job: 2, whatever the others.
    let failed = new_job(&jobs, "failed");
    config(
        &failed,
        &src,
        &env.path().join("missing"),
        "tries:\n  backup: 1\n  cleanup: 1\n",
    );
    env.hoard(["run", "--config", "failed"]).expect_code(2);
    let r = env.hoard(["status"]).expect_code(2);
    let out = r.out();
    assert!(out.contains("\nfailed "), "{out}");
    assert!(out.contains(" FAILED\n"), "{out}");
    // One folder at a time: the healthy job alone is 0.
    env.hoard(["status", &*job.to_string_lossy()]).ok();
    env.hoard(["status", &*failed.to_string_lossy()])
        .expect_code(2);
    // --json carries the same verdicts.
    let r = env.hoard(["status", "--json"]).expect_code(2);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let states: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["job"].as_str().unwrap(), j["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("failed", "failed"), ("myjob", "ok"), ("stale", "stale")]
    );
    // Bad input: one line, exit 2.
    let r = env.hoard(["status", "--max-age", "soon"]).expect_code(2);
    common::assert_one_line_error(&r.stderr, "argument --max-age: invalid duration");
    let r = env
        .hoard(["status", &*env.path().join("nowhere").to_string_lossy()])
        .expect_code(2);
    common::assert_one_line_error(&r.stderr, "nowhere: No such file or directory");
}

/// Without `retry_wait`, a failed try waits the classic 10 seconds; a signal ends the wait
/// (so this test does not sit through it) and the job, without another try.
#[test]
fn classic_wait_between_tries_is_ten_seconds() {
    let (env, src, job, _repo) = setup();
    std::fs::write(
        job.join("config.yaml"),
        format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  last: 5\ntries:\n  backup: 2\n",
            src.display(),
            env.path().join("missing-repo").display()
        ),
    )
    .unwrap();
    let mut child = env
        .hoard_cmd()
        .args(["run", "--config", "myjob"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("create: retrying in") {
            break;
        }
    }
    assert!(seen.ends_with(" INFO create: retrying in 10s\n"), "{seen}");
    common::signal(&child, libc::SIGTERM);
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "{seen}");
    assert!(!seen.contains("create: attempt 2/2"), "{seen}");
    // A configured retry_wait keeps the growing back-off: n × retry_wait.
    std::fs::write(
        job.join("config.yaml"),
        format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  last: 5\ntries:\n  backup: 3\n  cleanup: 1\nretry_wait: 0.2\n",
            src.display(),
            env.path().join("missing-repo").display()
        ),
    )
    .unwrap();
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    let waits: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.split_once(" INFO create: retrying in ").map(|x| x.1))
        .collect();
    assert_eq!(waits, ["0.2s", "0.4s"], "{}", r.stderr);
}

/// Chromium (`$HOARD_CHROMIUM`, else `chromium` on PATH); `None` (skip) only with
/// `HOARD_SKIP_CHROMIUM=1`.
fn chromium() -> Option<PathBuf> {
    let path = common::program_at("HOARD_CHROMIUM", "chromium");
    let ok = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(path);
    }
    if std::env::var("HOARD_SKIP_CHROMIUM").as_deref() == Ok("1") {
        eprintln!("chromium not found; skipping the browser part (HOARD_SKIP_CHROMIUM=1)");
        return None;
    }
    panic!("the report test needs chromium (apt-get install chromium), or HOARD_CHROMIUM=/path; HOARD_SKIP_CHROMIUM=1 skips");
}

/// What headless Chromium made of a page at one window width.
struct Rendered {
    /// The DOM after load.
    dom: String,
    /// The screenshot: width, height, RGB pixels.
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
    /// Requests the page made (not the browser's own), other than `file:` ones.
    page_requests: Vec<String>,
}

/// Headless Chromium lays a page out at least this wide, whatever `--window-size` says (a
/// narrower screenshot is only cropped): narrower screens are shown through an iframe.
const CHROMIUM_MIN_WIDTH: usize = 500;

/// Loads `page` in headless Chromium with a `width` x `height` screen: the DOM after load, a
/// screenshot and the requests the page made. Below [`CHROMIUM_MIN_WIDTH`] the screenshot is
/// of a wrapper page holding `page` in an iframe exactly `width` pixels wide, so the layout
/// really is that narrow.
fn render(chrome: &Path, page: &Path, width: usize, height: usize, scratch: &Path) -> Rendered {
    let profile = scratch.join(format!("profile-{width}"));
    let shot = scratch.join(format!("shot-{width}.png"));
    let netlog = scratch.join(format!("net-{width}.json"));
    let shown = if width < CHROMIUM_MIN_WIDTH {
        let frame = scratch.join(format!("frame-{width}.html"));
        std::fs::write(
            &frame,
            format!(
                "<!DOCTYPE html><html><head><style>body{{margin:0}}iframe{{display:block;\
                 border:0;width:{width}px;height:{height}px}}</style></head><body>\
                 <iframe src=\"file://{}\"></iframe></body></html>",
                page.display()
            ),
        )
        .unwrap();
        frame
    } else {
        page.to_path_buf()
    };
    let run = |url: &Path, extra: &[String]| {
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let out = Command::new(chrome)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={width},{height}"))
            .args(extra)
            .arg(format!("file://{}", url.display()))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(page, &["--dump-dom".to_string()]);
    run(
        &shown,
        &[
            format!("--screenshot={}", shot.display()),
            format!("--log-net-log={}", netlog.display()),
        ],
    );
    let (w, h, rgb) = decode_png(&std::fs::read(&shot).unwrap());
    Rendered {
        dom,
        width: w,
        height: h,
        rgb,
        page_requests: page_requests(&netlog),
    }
}

/// Whether the page and its archive table fit a `width`-pixel screen (nothing to scroll
/// sideways). A copy of the page gets a probe script (the report itself has none, and its
/// policy would refuse one) that paints a 40-pixel square in the corner: green when nothing
/// overflows, magenta when something does; the screenshot tells which.
fn fits_width(chrome: &Path, page: &Path, width: usize, scratch: &Path) -> bool {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = "<script>var t=document.querySelector('.scroll'),d=document.documentElement;\
                 var over=t.scrollWidth>t.clientWidth||d.scrollWidth>window.innerWidth;\
                 var m=document.createElement('div');\
                 m.style.cssText='position:fixed;left:0;top:0;width:40px;height:40px;z-index:9;\
                 background:'+(over?'#ff00ff':'#00ff00');document.body.appendChild(m);</script>";
    assert!(html.contains("</body>"));
    let csp = "<meta http-equiv=\"Content-Security-Policy\"";
    let html: String = html
        .lines()
        .filter(|l| !l.starts_with(csp))
        .map(|l| format!("{l}\n"))
        .collect();
    let copy = scratch.join("probe.html");
    std::fs::write(&copy, html.replace("</body>", &format!("{probe}</body>"))).unwrap();
    let r = render(chrome, &copy, width, 2400, scratch);
    let (fits, over) = (r.count(0x00ff00), r.count(0xff00ff));
    assert!(
        fits + over >= 1600,
        "the probe did not run: {fits} + {over} pixels"
    );
    fits > over
}

/// The URLs of requests in a Chromium net log that a page loaded from a file made: their
/// network isolation key is the `file://` origin (the browser's own requests have none).
fn page_requests(netlog: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(netlog).unwrap();
    // A net log cut short by the exit lacks its closing brackets.
    let v: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .unwrap_or_else(|e| panic!("net log {}: {e}", netlog.display()));
    let mut urls = Vec::new();
    for e in v["events"].as_array().unwrap() {
        let p = &e["params"];
        let (Some(url), Some(key)) = (p["url"].as_str(), p["network_isolation_key"].as_str())
        else {
            continue;
        };
        if key.contains("file://") && !url.starts_with("file:") && !urls.iter().any(|u| u == url) {
            urls.push(url.to_string());
        }
    }
    urls
}

/// A small PNG decoder for Chromium's screenshots (8-bit RGB or RGBA, not interlaced).
fn decode_png(data: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n");
    let (mut pos, mut idat) = (8, Vec::new());
    let (mut w, mut h, mut channels) = (0usize, 0usize, 0usize);
    while pos + 8 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &data[pos + 4..pos + 8];
        let body = &data[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(body[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
                assert_eq!(body[8], 8, "bit depth");
                assert_eq!(body[12], 0, "interlace");
                channels = match body[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("PNG colour type {t}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(body),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = w * channels;
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(w * h);
    for y in 0..h {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let mut cur = line[1..].to_vec();
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 } as i16;
            let b = prev[i] as i16;
            let c = if i >= channels { prev[i - channels] } else { 0 } as i16;
            let add = match line[0] {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            cur[i] = cur[i].wrapping_add(add as u8);
        }
        for px in cur.chunks(channels) {
            pixels.push([px[0], px[1], px[2]]);
        }
        prev = cur;
    }
    (w, h, pixels)
}

impl Rendered {
    /// Pixels of exactly this colour.
    fn count(&self, hex: u32) -> usize {
        let want = [(hex >> 16) as u8, (hex >> 8) as u8, hex as u8];
        self.rgb.iter().filter(|p| **p == want).count()
    }

    /// The columns (x) where this colour occurs: leftmost and rightmost.
    fn x_extent(&self, hex: u32) -> Option<(usize, usize)> {
        let want = [(hex >> 16) as u8, (hex >> 8) as u8, hex as u8];
        let xs = self
            .rgb
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == want)
            .map(|(i, _)| i % self.width);
        xs.fold(None, |acc, x| match acc {
            None => Some((x, x)),
            Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
        })
    }
}

#[test]
fn html_report_renders_offline_at_phone_and_desktop_widths() {
    let (mut env, src, job, repo) = setup();
    config(&job, &src, &repo, "");
    for i in 0..3u64 {
        std::fs::write(
            src.join(format!("data{i}")),
            common::tree::pseudo_random(20_000 * (i as usize + 1), i),
        )
        .unwrap();
        env.hoard(["run", "--config", "myjob"]).ok();
    }
    // One failed run in the history.
    let good = std::fs::read_to_string(job.join("config.yaml")).unwrap();
    config(
        &job,
        &src,
        &env.path().join("missing"),
        "tries:\n  backup: 1\n  cleanup: 1\n",
    );
    env.hoard(["run", "--config", "myjob"]).expect_code(2);
    std::fs::write(job.join("config.yaml"), good).unwrap();
    // A name with markup in it must come out as text.
    let odd = "<i>odd&'name'";
    env.passphrase = Some(PASS.into());
    let r = env.hoard([
        "create".to_string(),
        format!("{}::{odd}", repo.display()),
        src.to_string_lossy().into_owned(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let archives: Vec<String> = env
        .hoard(["list", "--short", &*repo.to_string_lossy()])
        .ok()
        .out()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(archives.len(), 4);
    let repo_page = env.path().join("repo.html");
    let job_page = env.path().join("job.html");
    env.hoard([
        "report",
        &*repo.to_string_lossy(),
        "--html",
        &*repo_page.to_string_lossy(),
    ])
    .ok();
    env.passphrase = None;
    // A job needs no passphrase: its report comes from the run history.
    env.hoard(["report", "myjob", "--html", &*job_page.to_string_lossy()])
        .ok();
    for page in [&repo_page, &job_page] {
        let html = std::fs::read_to_string(page).unwrap();
        assert!(
            html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""),
            "no CSP"
        );
        assert!(!html.contains("http:") && !html.contains("https:"));
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<link"));
        assert!(html.contains("@media print") && html.contains("@media (max-width:600px)"));
    }
    let repo_html = std::fs::read_to_string(&repo_page).unwrap();
    assert!(repo_html.contains("&lt;i&gt;odd&amp;&#39;name&#39;"));
    let Some(chrome) = chromium() else { return };
    let scratch = env.path().join("chromium");
    std::fs::create_dir_all(&scratch).unwrap();
    for (page, charts, rows) in [(&repo_page, 5, 4), (&job_page, 6, 3)] {
        for width in [390, 1280] {
            let r = render(&chrome, page, width, 2400, &scratch);
            assert_eq!((r.width, r.height), (width, 2400));
            assert_eq!(r.dom.matches("<svg class=\"chart\"").count(), charts);
            let table = r
                .dom
                .split("<table id=\"archives\">")
                .nth(1)
                .expect("archive table");
            let body = table.split("</table>").next().unwrap();
            assert_eq!(body.matches("<tr>").count(), rows + 1, "{body}");
            assert!(r.page_requests.is_empty(), "{:?}", r.page_requests);
            // The charts are drawn: the original-size line and the deduplicated bars in
            // their colours, and on a phone each chart spans (nearly) the screen's width.
            // (A repository's archives share their data here: its deduplicated bars are
            // all but flat, so only the job's are looked for.)
            let colours: &[(u32, &str)] = if page == &job_page {
                &[
                    (0x2b6cb0, "original size"),
                    (0x2f855a, "deduplicated size"),
                    (0xdd6b20, "growth"),
                ]
            } else {
                &[(0x2b6cb0, "original size"), (0xdd6b20, "growth")]
            };
            for (c, what) in colours {
                assert!(r.count(*c) > 50, "no {what} chart at {width}px");
            }
            let (lo, hi) = r.x_extent(0x2b6cb0).unwrap();
            assert!(hi < width, "{lo}..{hi}");
            if width == 390 {
                assert!(hi - lo > 390 / 2, "line spans {lo}..{hi} on a phone");
            }
            if page == &job_page {
                // The run history: successes green, the failure red.
                assert!(r.count(0x38a169) > 20 && r.count(0xe53e3e) > 20);
            }
            if width == 390 {
                assert!(
                    fits_width(&chrome, page, width, &scratch),
                    "{}",
                    page.display()
                );
            }
        }
    }
    // The control: a page that does reach out is seen doing so.
    let bad = scratch.join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><img src=\"http://127.0.0.1:9/x.png\">",
    )
    .unwrap();
    let r = render(&chrome, &bad, 390, 400, &scratch);
    assert_eq!(r.page_requests, ["http://127.0.0.1:9/x.png"]);
}

/// A job's report with the figures of a large server (terabytes, long archive names, 14 runs
/// with two failures) fits a 390-pixel phone screen: nothing scrolls sideways. With
/// `HOARD_REPORT_SHOTS=DIR` the phone and desktop screenshots are kept there as
/// `report-phone.png` / `report-desktop.png` (how `docs/report-*.png` are made).
#[test]
fn report_with_large_figures_fits_a_phone_screen() {
    let env = Env::new();
    let jobs = env.path().join("jobs");
    let job = new_job(&jobs, "home");
    let mut history = String::new();
    let day = 86_400i64;
    let first = chrono::DateTime::parse_from_rfc3339("2026-11-24T01:00:00Z").unwrap();
    for i in 0..14i64 {
        let start = first + chrono::Duration::seconds(i * day);
        let failed = i == 5 || i == 11;
        let original = 1_200_000_000_000u64 + i as u64 * 9_876_543_210;
        let stored = 310_000_000_000u64 + i as u64 * 4_321_098_765;
        let sizes = serde_json::json!({
            "files": 1_234_567 + i * 1_000,
            "original": original,
            "compressed": original / 3,
            "deduplicated": 15_230_000_000u64 + i as u64 * 987_654_321,
            "duration_seconds": 3_600.0 + i as f64 * 97.0,
        });
        let end = start + chrono::Duration::seconds(3_700 + i * 97);
        let run = serde_json::json!({
            "job": "home",
            "repository": "ssh://backup@storage.example.net:2222/./repos/home-server",
            "start": start.to_rfc3339(),
            "end": end.to_rfc3339(),
            "duration_seconds": 3_700.0 + i as f64 * 97.0,
            "result": if failed { "failure" } else { "success" },
            "exit_code": if failed { 2 } else { 0 },
            "tries": if failed { 3 } else { 1 + (i % 3 == 0) as i64 },
            "steps": [],
            "archive": format!("home-server-{}", start.format("%Y-%m-%dT%H:%M:%S")),
            "sizes": if failed { serde_json::Value::Null } else { sizes },
            "archive_count": 20 + i,
            "repository_size": stored,
            "repository_original_size": original * (20 + i as u64),
            "last_success": end.to_rfc3339(),
        });
        history.push_str(&format!("{run}\n"));
    }
    std::fs::write(job.join("history.jsonl"), history).unwrap();
    std::fs::write(job.join("config.yaml"), "backup:\n  - /home\ntarget: /x\n").unwrap();
    let mut env = env;
    env.set("HOARD_CONFIG_DIR", &jobs.to_string_lossy());
    let page = env.path().join("home.html");
    env.hoard(["report", "home", "--html", &*page.to_string_lossy()])
        .ok();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("home-server-2026-12-07T01:00:00"), "{html}");
    let Some(chrome) = chromium() else { return };
    let scratch = env.path().join("chromium");
    std::fs::create_dir_all(&scratch).unwrap();
    assert!(fits_width(&chrome, &page, 390, &scratch));
    if let Some(dir) = std::env::var_os("HOARD_REPORT_SHOTS").map(PathBuf::from) {
        for (width, height, name) in [(390, 2400, "phone"), (1280, 1600, "desktop")] {
            render(&chrome, &page, width, height, &scratch);
            std::fs::copy(
                scratch.join(format!("shot-{width}.png")),
                dir.join(format!("report-{name}.png")),
            )
            .unwrap();
        }
    }
}
