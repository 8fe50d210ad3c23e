//! `hoard run` / `hoard schedule`: configured jobs, retries, hooks, pings, secrets, schedule.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;

const PASS: &str = "first line of the passphrase\nsecond-Secret-Line-xyz";

/// An environment without BORG_PASSPHRASE, a source folder and a job folder with a
/// passphrase file (multi-line, like `openssl rand -base64`).
fn setup() -> (Env, PathBuf, PathBuf) {
    let mut env = Env::new();
    env.passphrase = None;
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "hello").unwrap();
    std::fs::write(src.join("sub/b.txt"), "world").unwrap();
    let job = env.path().join("jobs/myjob");
    std::fs::create_dir_all(&job).unwrap();
    let pf = job.join("BORGKeyPassword.file");
    std::fs::write(&pf, format!("{PASS}\n\n")).unwrap();
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.set(
        "HOARD_CONFIG_DIR",
        &env.path().join("jobs").to_string_lossy(),
    );
    (env, src, job)
}

fn init_repo(env: &Env, job: &Path) -> PathBuf {
    let repo = env.path().join("repo");
    let mut c = env.hoard_cmd();
    c.env(
        "BORG_PASSCOMMAND",
        format!("cat {}", job.join("BORGKeyPassword.file").display()),
    );
    let out = c
        .args(["init", "-e", "repokey"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    repo
}

fn write_config(job: &Path, text: &str) {
    std::fs::write(job.join("config.yaml"), text).unwrap();
}

fn archives(env: &Env, job: &Path, repo: &Path) -> Vec<String> {
    let mut c = env.hoard_cmd();
    c.env(
        "BORG_PASSCOMMAND",
        format!("cat {}", job.join("BORGKeyPassword.file").display()),
    );
    let out = c.args(["list", "--short"]).arg(repo).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[test]
fn job_runs_create_prune_check_with_retention() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\narchive_name: 'a-{{now:%Y%m%d%H%M%S%f}}'\ncleanup:\n  last: 2\ncheck:\n  every: 7d\n  verify_data: true\ncompact: true\nretry_wait: 0\n",
            src.display(),
            repo.display()
        ),
    );
    for _ in 0..3 {
        let r = env.hoard(["run", "--config", "myjob", "--json"]).ok();
        assert_eq!(
            last_line(&r.stderr).split_once(" INFO ").unwrap().1,
            "Jobs successful finished."
        );
        assert!(!r.stderr.contains("second-Secret-Line"));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["exit_code"], 0);
    }
    let names = archives(&env, &job, &repo);
    assert_eq!(names.len(), 2, "{names:?}");
    // check ran once, then was not due.
    assert!(job.join(".hoard-state.json").is_file());
    let r = env.hoard(["run", "--config", "myjob"]).ok();
    assert!(r.stderr.contains("check: not due"), "{}", r.stderr);
    assert!(r.stderr.contains("compact: finished"), "{}", r.stderr);
}

#[test]
fn job_passes_13weekly_and_3monthly_to_prune() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    // An archive of an older 13-week period and quarter than the job's runs.
    let mut c = env.hoard_cmd();
    c.env(
        "BORG_PASSCOMMAND",
        format!("cat {}", job.join("BORGKeyPassword.file").display()),
    );
    let out = c
        .args(["create", "--timestamp", "2020-01-15T00:00:00"])
        .arg(format!("{}::old", repo.display()))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = |rule: &str| {
        format!(
            "backup:\n  - {}\ntarget: '{}'\narchive_name: 'a-{{now:%Y%m%d%H%M%S%f}}'\ncleanup:\n  {rule}\nretry_wait: 0\n",
            src.display(),
            repo.display()
        )
    };
    // Two 13-week periods: the newest archive of this one and `old`.
    write_config(&job, &config("13weekly: 2"));
    for _ in 0..2 {
        env.hoard(["run", "--config", "myjob"]).ok();
    }
    let names = archives(&env, &job, &repo);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"old".to_string()), "{names:?}");
    // One quarter (the `keep_` spelling): only the newest archive is left.
    write_config(&job, &config("keep_3monthly: 1"));
    env.hoard(["run", "--config", "myjob"]).ok();
    let after = archives(&env, &job, &repo);
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(after[0].starts_with("a-"), "{after:?}");
    assert!(!names.contains(&after[0]), "{after:?} {names:?}");
}

#[test]
fn classic_config_loads_unchanged() {
    let (mut env, _src, job) = setup();
    let repo = init_repo(&env, &job);
    // The config, verbatim except the target.
    let home = env.path().join("home");
    std::fs::create_dir_all(home.join("backup_scripts")).unwrap();
    env.set("HOME", &home.to_string_lossy());
    write_config(
        &job,
        &format!(
            "backup:\n  - $HOME/backup_scripts/\ntarget: '{}'\noptions:\n  backup: '-C lzma,9'\n  cleanup: '--lock-wait 60'\ncleanup:\n  daily: 7\n  weekly: 4\n  monthly: 6\n  yearly: 2\ntries:\n  backup: 3\n  cleanup: 3\n",
            repo.display()
        ),
    );
    let r = env.hoard(["run", "--config", "myjob"]).ok();
    assert!(r.stderr.ends_with("Jobs successful finished.\n"));
    assert_eq!(archives(&env, &job, &repo).len(), 1);
}

fn load_error(text: &str, remove_pass: bool) -> String {
    let (env, _src, job) = setup();
    write_config(&job, text);
    if remove_pass {
        std::fs::remove_file(job.join("BORGKeyPassword.file")).unwrap();
    }
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    assert!(r.stderr.contains("At least one job failed."));
    assert!(r.stderr.contains("config.yaml"), "{}", r.stderr);
    r.stderr
}

#[test]
fn bad_configs_fail_at_load() {
    let base = "backup:\n  - /tmp\ntarget: /nonexistent/repo\ncleanup:\n  daily: 7\n";
    let e = load_error(&format!("{base}colour: blue\n"), false);
    assert!(e.contains("line 6") && e.contains("colour"), "{e}");
    let e = load_error(&format!("{base}tries:\n  backup: many\n"), false);
    assert!(e.contains("line 7") && e.contains("tries.backup"), "{e}");
    let e = load_error(
        &format!("{base}options:\n  backup: '--no-such-option'\n"),
        false,
    );
    assert!(
        e.contains("line 7") && e.contains("options.backup") && e.contains("--no-such-option"),
        "{e}"
    );
    let e = load_error(base, true);
    assert!(e.contains("BORGKeyPassword.file"), "{e}");
}

#[test]
fn always_failing_target_exits_2_after_tries() {
    let (env, src, job) = setup();
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  daily: 7\ntries:\n  backup: 3\n  cleanup: 2\nretry_wait: 0.1\n",
            src.display(),
            env.path().join("missing-repo").display()
        ),
    );
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    let starts = |step: &str| {
        r.stderr
            .lines()
            .filter(|l| l.contains(&format!("{step}: attempt")) && !l.contains("failed"))
            .count()
    };
    assert_eq!(starts("create"), 3, "{}", r.stderr);
    assert_eq!(starts("prune"), 2, "{}", r.stderr);
    assert!(r.stderr.contains("create: failed after 3 attempts"));
    assert!(last_line(&r.stderr).ends_with("ERROR At least one job failed."));
}

#[test]
fn locked_target_succeeds_on_third_try() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\noptions:\n  backup: '--lock-wait 0.2'\ncleanup:\n  daily: 7\ntries:\n  backup: 3\nretry_wait: 3\n",
            src.display(),
            repo.display()
        ),
    );
    let release = env.path().join("release");
    let mut holder = env.hoard_cmd();
    holder
        .arg("with-lock")
        .arg(&repo)
        .args(["sh", "-c"])
        .arg(format!(
            "touch {0}.held; while [ ! -e {0} ]; do sleep 0.05; done",
            release.display()
        ));
    let mut holder = holder.spawn().unwrap();
    let held = PathBuf::from(format!("{}.held", release.display()));
    let start = Instant::now();
    while !held.exists() {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut job_cmd = env.hoard_cmd();
    job_cmd
        .args(["run", "--config", "myjob"])
        .stderr(Stdio::piped());
    let mut child = job_cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut all = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains("create: attempt 2/3 failed") {
            std::fs::write(&release, "").unwrap();
            // Wait until the lock is released so try 3 finds the repository free: the job
            // waits 3 s before it, time enough for the holder to exit on a loaded machine.
            while holder.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        all.push_str(&line);
        all.push('\n');
    }
    let st = child.wait().unwrap();
    let _ = std::fs::write(&release, "");
    let _ = holder.wait();
    assert_eq!(st.code(), Some(0), "{all}");
    assert!(all.contains("create: finished (attempt 3/3)"), "{all}");
    assert!(all.ends_with("Jobs successful finished.\n"));
}

#[test]
fn hooks_run_in_order_with_env_and_missing_paths() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    let trace = env.path().join("trace");
    write_config(
        &job,
        &format!(
            "backup:\n  - {src}\n  - {src}/nope\ntarget: '{repo}'\noptional:\n  - {src}/maybe\ncleanup:\n  daily: 7\nretry_wait: 0\nhooks:\n  before:\n    - echo before $HOARD_JOB $HOARD_STATUS >> {t}\n    - echo before2 >> {t}\n  after:\n    - echo after $HOARD_STATUS $HOARD_EXIT_CODE >> {t}\n  on_error:\n    - echo on_error >> {t}\n",
            src = src.display(),
            repo = repo.display(),
            t = trace.display()
        ),
    );
    // A missing non-optional path refuses the job: no archive of "the rest", no prune.
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    assert!(
        r.stderr.contains(&format!(
            " ERROR backup path {}/nope does not exist\n",
            src.display()
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            " ERROR refusing to start: a backup path is missing (list paths that may be absent under `optional:`)\n"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("maybe is missing; skipped"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("create: attempt"), "{}", r.stderr);
    assert!(!r.stderr.contains("prune: attempt"), "{}", r.stderr);
    assert!(last_line(&r.stderr).ends_with("ERROR At least one job failed."));
    assert!(archives(&env, &job, &repo).is_empty());
    let t = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(
        t,
        "before myjob running\nbefore2\nafter failure 2\non_error\n"
    );
}

#[test]
fn passphrase_not_in_logs_or_child_argv() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    let seen = env.path().join("seen");
    // The before hook records every process's argv while the job runs.
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  daily: 7\nlog_file: job.log\nhooks:\n  before:\n    - cat /proc/[0-9]*/cmdline > {} 2>/dev/null; true\n",
            src.display(),
            repo.display(),
            seen.display()
        ),
    );
    let r = env.hoard(["run", "--config", "myjob", "--debug"]).ok();
    for secret in ["second-Secret-Line", "first line of the passphrase"] {
        assert!(!r.stderr.contains(secret));
        assert!(!r.out().contains(secret));
        let log = std::fs::read_to_string(job.join("job.log")).unwrap();
        assert!(!log.contains(secret));
        assert!(log.contains("Jobs successful finished."));
        // The steps' own messages (here: create's --debug output) reach the file too.
        assert!(log.contains("DEBUG") || log.lines().count() > 8, "{log}");
        let argv = std::fs::read(&seen).unwrap();
        assert!(!String::from_utf8_lossy(&argv).contains(secret));
    }
    // The repository opens with the multi-line passphrase read like BORG_PASSCOMMAND.
    assert_eq!(archives(&env, &job, &repo).len(), 1);
}

#[test]
fn world_readable_passphrase_warns_or_refuses() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    let pf = job.join("BORGKeyPassword.file");
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = format!(
        "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  daily: 7\n",
        src.display(),
        repo.display()
    );
    write_config(&job, &cfg);
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(1);
    assert!(r.stderr.contains("group/world accessible"));
    write_config(&job, &format!("{cfg}strict_permissions: true\n"));
    env.hoard(["run", "--config", "myjob"]).expect_code(2);
}

#[test]
fn hanging_ping_does_not_block() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and never answer.
    let t = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(2).flatten() {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  daily: 7\nping:\n  url: http://127.0.0.1:{port}/ping/abc\n  timeout: 1\n",
            src.display(),
            repo.display()
        ),
    );
    let start = Instant::now();
    let r = env.hoard(["run", "--config", "myjob"]).ok();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert!(r.stderr.contains("ping http://127.0.0.1"), "{}", r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    drop(t);
}

#[test]
fn ping_reaches_http_server() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let mut paths = Vec::new();
        for mut s in listener.incoming().take(2).flatten() {
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            paths.push(req.split_whitespace().nth(1).unwrap_or("").to_string());
            use std::io::Write;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
        }
        paths
    });
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  daily: 7\nping:\n  url: http://127.0.0.1:{port}/hc\n",
            src.display(),
            repo.display()
        ),
    );
    env.hoard(["run", "--config", "myjob"]).ok();
    assert_eq!(t.join().unwrap(), vec!["/hc/start", "/hc"]);
}

#[test]
fn schedule_outputs_crontab_and_systemd() {
    let (env, src, job) = setup();
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: /x\ncleanup:\n  daily: 7\n",
            src.display()
        ),
    );
    let r = env
        .hoard(["schedule", "--config", "myjob", "--at", "03:15"])
        .ok();
    let line = r.out();
    let fields: Vec<&str> = line.trim().splitn(6, ' ').collect();
    assert_eq!(&fields[..5], &["15", "3", "*", "*", "*"]);
    let cmd = shell_words::split(fields[5]).unwrap();
    assert!(cmd[0].ends_with("hoard"));
    assert_eq!(&cmd[1..3], &["run", "--config"]);
    assert!(Path::new(&cmd[3]).join("config.yaml").is_file());
    let r = env
        .hoard(["schedule", "--config", "myjob", "--systemd"])
        .ok();
    let text = r.out();
    assert!(text.contains("[Service]\nType=oneshot\nExecStart="));
    assert!(text.contains("OnCalendar=*-*-* 02:00:00"));
    for l in text.lines() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('[') {
            continue;
        }
        assert!(l.contains('='), "not a unit line: {l}");
    }
    env.hoard(["schedule", "--config", "myjob", "--at", "25:00"])
        .expect_code(2);
}

#[test]
fn example_config_loads_and_runs() {
    let (mut env, _src, _job) = setup();
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local-job");
    let tmp = env.path().join("ex");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(ex.join("config.yaml"), tmp.join("config.yaml")).unwrap();
    let source = env.path().join("src");
    env.set("HOARD_EXAMPLE_SOURCE", &source.to_string_lossy());
    let repo = env.path().join("exrepo");
    env.set("HOARD_EXAMPLE_REPO", &repo.to_string_lossy());
    let r = env
        .hoard(["run", "--init", "--config", &tmp.to_string_lossy()])
        .ok();
    assert!(r.stderr.ends_with("Jobs successful finished.\n"));
    assert!(tmp.join("BORGKey.bak").is_file());
    let mode = std::fs::metadata(tmp.join("BORGKeyPassword.file"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(archives(&env, &tmp, &repo).len(), 1);
}

#[test]
fn run_example_script_works() {
    let (env, _src, _job) = setup();
    let dir = env.path().join("demo");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/run-example.sh");
    let out = std::process::Command::new(&script)
        .env("HOARD", env!("CARGO_BIN_EXE_hoard"))
        .env("HOARD_EXAMPLE_DIR", &dir)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.matches("Jobs successful finished.").count(),
        2,
        "{stderr}"
    );
    let listed = stdout.split("== archives in").nth(1).unwrap_or("");
    let rows = listed.lines().filter(|l| l.contains('[')).count();
    assert_eq!(rows, 2, "{stdout}");
}

#[test]
fn systemd_units_verify() {
    let (env, src, job) = setup();
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: /x\ncleanup:\n  daily: 7\n",
            src.display()
        ),
    );
    let text = env
        .hoard(["schedule", "--config", "myjob", "--systemd"])
        .ok()
        .out();
    let service = text
        .split("# hoard-myjob.timer")
        .next()
        .unwrap()
        .replace("# hoard-myjob.service\n", "");
    let timer = text.split("# hoard-myjob.timer\n").nth(1).unwrap();
    let d = env.path().join("units");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("hoard-myjob.service"), service).unwrap();
    std::fs::write(d.join("hoard-myjob.timer"), timer).unwrap();
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(d.join("hoard-myjob.service"))
        .arg(d.join("hoard-myjob.timer"))
        .output()
    else {
        eprintln!("systemd-analyze not available; parsed checks only");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shell_lists_names_not_values() {
    let (mut env, src, job) = setup();
    let repo = init_repo(&env, &job);
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  daily: 7\n",
            src.display(),
            repo.display()
        ),
    );
    let dump = env.path().join("dump");
    let script = env.path().join("fake-shell");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$BORG_REPO|$BORG_PASSCOMMAND\" > {}\n",
            dump.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set("SHELL", &script.to_string_lossy());
    let r = env.hoard(["run", "--config", "myjob", "--shell"]).ok();
    assert!(
        r.stderr
            .contains("BORG_REPO, THIS_TARGET, BACKUP_THIS, BORG_PASSCOMMAND"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains(&repo.to_string_lossy().into_owned()),
        "{}",
        r.stderr
    );
    let d = std::fs::read_to_string(&dump).unwrap();
    assert!(d.starts_with(&format!("{}|cat ", repo.display())), "{d}");
    assert!(!d.contains("second-Secret-Line"));
}

#[test]
fn job_lock_prevents_overlap_and_flags_skip_steps() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    let gate = env.path().join("gate");
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  daily: 7\nhooks:\n  before:\n    - 'touch {g}.in; while [ ! -e {g} ]; do sleep 0.05; done'\n",
            src.display(),
            repo.display(),
            g = gate.display()
        ),
    );
    let mut first = env.hoard_cmd();
    first
        .args(["run", "--config", "myjob"])
        .stderr(Stdio::null());
    let mut first = first.spawn().unwrap();
    let entered = PathBuf::from(format!("{}.in", gate.display()));
    let start = Instant::now();
    while !entered.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    std::fs::write(&gate, "").unwrap();
    assert!(r.stderr.contains("is already running"), "{}", r.stderr);
    assert_eq!(first.wait().unwrap().code(), Some(0));
    // --nocreate --nocleanup: nothing but the hooks; --dry-run creates no archive.
    let r = env
        .hoard(["run", "--config", "myjob", "--nocreate", "--nocleanup"])
        .ok();
    assert!(!r.stderr.contains("create:") && !r.stderr.contains("prune:"));
    env.hoard(["run", "--config", "myjob", "--dry-run"]).ok();
    assert_eq!(archives(&env, &job, &repo).len(), 1);
}

#[test]
fn borg_repo_with_multiline_passphrase_file_interops() {
    if !common::borg_available() {
        return;
    }
    let (env, src, job) = setup();
    let repo = env.path().join("borgrepo");
    let pc = format!("cat {}", job.join("BORGKeyPassword.file").display());
    let mut c = env.borg_cmd();
    let out = c
        .env("BORG_PASSCOMMAND", &pc)
        .args(["init", "-e", "repokey"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  daily: 7\n",
            src.display(),
            repo.display()
        ),
    );
    env.hoard(["run", "--config", "myjob"]).ok();
    let out = env
        .borg_cmd()
        .env("BORG_PASSCOMMAND", &pc)
        .args(["list", "--short"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

/// The archive names of one run's JSON summary and the log's statistics.
#[test]
fn default_name_has_microseconds_and_log_has_statistics() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  last: 1\nretry_wait: 0\nlog_file: job.log\n",
            src.display(),
            repo.display()
        ),
    );
    let first = env.hoard(["run", "--config", "myjob", "--json"]).ok();
    let r = env.hoard(["run", "--config", "myjob", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let name = v["archive"].as_str().unwrap().to_string();
    // `1765068111.123456`: seconds and six digits of microseconds.
    let (secs, micros) = name.split_once('.').expect("fractional seconds");
    assert!(
        secs.len() >= 10 && secs.bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
    assert!(
        micros.len() == 6 && micros.bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
    assert_eq!(archives(&env, &job, &repo), vec![name.clone()]);
    let v1: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let pruned = v1["archive"].as_str().unwrap().to_string();
    assert_ne!(pruned, name);
    // create --stats, prune --list --stats, in the job's output and its log file.
    let log = std::fs::read_to_string(job.join("job.log")).unwrap();
    for text in [&r.stderr, &log] {
        for want in [
            format!("Archive name: {name}\n"),
            "Number of files: 2\n".to_string(),
            "This archive: ".to_string(),
            "Keeping archive (rule: secondly #1):".to_string(),
            "Pruning archive (1/1):".to_string(),
            "Deleted data: ".to_string(),
        ] {
            assert!(text.contains(&want), "{want:?} missing in:\n{text}");
        }
        assert!(text.contains(&pruned), "{text}");
    }
    // --dry-run: prune lists (no statistics, and no "Ignoring --stats" warning).
    let r = env.hoard(["run", "--config", "myjob", "--dry-run"]).ok();
    assert!(
        r.stderr.contains(&format!(
            "{:<44} {name} ",
            "Keeping archive (rule: secondly #1):"
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Ignoring --stats"), "{}", r.stderr);
    assert!(!r.stderr.contains("Deleted data"), "{}", r.stderr);
}

#[test]
fn taken_archive_name_is_retried_at_once_with_a_fresh_name() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    let seen = env.path().join("seen");
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\narchive_name: 'fixed'\ncleanup:\n  last: 10\ntries:\n  backup: 2\nretry_wait: 60\nhooks:\n  after:\n    - echo $HOARD_ARCHIVE >> {}\n",
            src.display(),
            repo.display(),
            seen.display()
        ),
    );
    env.hoard(["run", "--config", "myjob"]).ok();
    let start = Instant::now();
    let r = env.hoard(["run", "--config", "myjob", "--json"]).ok();
    // No back-off before the retry (retry_wait is 60 s).
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    for want in [
        "create: attempt 1/2 failed (rc 2): Archive fixed already exists\n",
        "create: archive fixed already exists; using fixed.1\n",
        "create: finished (attempt 2/2)\n",
    ] {
        assert!(
            r.stderr.contains(want),
            "{want:?} missing in:\n{}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains("retrying in"), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["archive"], "fixed.1");
    assert_eq!(v["steps"][0]["attempts"], 2);
    let mut names = archives(&env, &job, &repo);
    names.sort();
    assert_eq!(names, vec!["fixed", "fixed.1"]);
    // Hooks see the name actually used.
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "fixed\nfixed.1\n");
}

#[test]
fn missing_ssh_key_stops_at_once() {
    let (mut env, src, job) = setup();
    let key = job.join("SSHKey.pem");
    for target in ["ssh://backup.invalid/./repo", "backup.invalid:repo"] {
        write_config(
            &job,
            &format!(
                "backup:\n  - {}\ntarget: '{target}'\ncleanup:\n  daily: 7\ntries:\n  backup: 3\n  cleanup: 3\nretry_wait: 60\n",
                src.display()
            ),
        );
        let start = Instant::now();
        let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
        assert!(start.elapsed() < Duration::from_secs(30));
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 3, "{}", r.stderr);
        assert!(
            lines[0].ends_with(&format!(" ERROR SSH key {} not available!", key.display())),
            "{}",
            r.stderr
        );
        // the refused run is recorded (status file) and summarized
        assert!(
            lines[1].contains(" INFO Summary: job myjob: failure (exit 2), no archive"),
            "{}",
            r.stderr
        );
        assert!(lines[2].ends_with(" ERROR At least one job failed."));
    }
    // With the key file, the job's ssh uses it: a stand-in `ssh` on PATH records its arguments.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let args = env.path().join("ssh-args");
    std::fs::write(
        bin.join("ssh"),
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 255\n", args.display()),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    env.set("PATH", &path);
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: 'ssh://backup.invalid/./repo'\ncleanup:\n  daily: 7\ntries:\n  backup: 1\n  cleanup: 1\n",
            src.display()
        ),
    );
    std::fs::write(&key, "not really a key\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    assert!(r.stderr.contains("create: attempt 1/1"), "{}", r.stderr);
    let seen = std::fs::read_to_string(&args).unwrap();
    assert!(
        seen.lines()
            .next()
            .unwrap()
            .starts_with(&format!("-i {} backup.invalid ", key.display())),
        "{seen}"
    );
    // Without the key but with BORG_RSH in the environment (an agent, ~/.ssh/config), that is used.
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(&args).unwrap();
    env.set("BORG_RSH", "ssh -o BatchMode=yes");
    let r = env.hoard(["run", "--config", "myjob"]).expect_code(2);
    assert!(!r.stderr.contains("not available!"), "{}", r.stderr);
    let seen = std::fs::read_to_string(&args).unwrap();
    assert!(
        seen.lines()
            .next()
            .unwrap()
            .starts_with("-o BatchMode=yes backup.invalid "),
        "{seen}"
    );
}

/// SIGTERM during a job's create ends the job: no retry, no back-off wait, no further step.
#[test]
fn signal_ends_the_job_without_retries() {
    let (env, src, job) = setup();
    let repo = init_repo(&env, &job);
    std::fs::write(src.join("big"), common::tree::pseudo_random(400 << 20, 11)).unwrap();
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  last: 10\ntries:\n  backup: 3\n  cleanup: 3\nretry_wait: 60\n",
            src.display(),
            repo.display(),
        ),
    );
    let mut child = env
        .hoard_cmd()
        .args(["run", "--config", "myjob"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("create: attempt 1/3") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    common::signal(&child, libc::SIGTERM);
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{seen}");
    // the run is recorded as the job reports it: failed with the signal's exit code, create
    // ended by it
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job.join("status.json")).unwrap()).unwrap();
    assert_eq!(st["result"], "failure", "{st}");
    assert_eq!(st["exit_code"], 143, "{st}");
    assert_eq!(st["reason"], "Received SIGTERM", "{st}");
    assert_eq!(st["steps"][0]["name"], "create", "{st}");
    assert_eq!(st["steps"][0]["exit_code"], 143, "{st}");
    assert!(
        seen.contains("Summary: job myjob: failure (exit 143)"),
        "{seen}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(45),
        "waited {:?}:\n{seen}",
        start.elapsed()
    );
    assert!(!seen.contains("create: attempt 2/3"), "{seen}");
    assert!(!seen.contains("retrying in"), "{seen}");
    assert!(!seen.contains("prune: attempt"), "{seen}");
    assert!(
        last_line(&seen).ends_with("ERROR At least one job failed."),
        "{seen}"
    );
    // No lock left behind: the next command runs.
    let mut c = env.hoard_cmd();
    c.env(
        "BORG_PASSCOMMAND",
        format!("cat {}", job.join("BORGKeyPassword.file").display()),
    );
    let out = c.args(["list"]).arg(&repo).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SIGHUP while the job waits to try a failed step again ends the wait and the job; the
/// run is recorded with the signal's exit code (129), as the process exits.
#[test]
fn signal_between_tries_is_recorded_with_its_exit_code() {
    let (env, src, job) = setup();
    let missing = env.path().join("no-repo");
    write_config(
        &job,
        &format!(
            "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  last: 10\ntries:\n  backup: 3\n  cleanup: 1\nretry_wait: 600\n",
            src.display(),
            missing.display(),
        ),
    );
    let mut child = env
        .hoard_cmd()
        .args(["run", "--config", "myjob"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("create: retrying in") {
            break;
        }
    }
    common::signal(&child, libc::SIGHUP);
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(129), "{seen}");
    assert!(!seen.contains("create: attempt 2/3"), "{seen}");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job.join("status.json")).unwrap()).unwrap();
    assert_eq!(st["result"], "failure", "{st}");
    assert_eq!(st["exit_code"], 129, "{st}");
    assert_eq!(st["reason"], "Received SIGHUP.", "{st}");
}
