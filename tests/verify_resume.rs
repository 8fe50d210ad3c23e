//! Verification that resumes (issue 19 item 2): `check --verify-data --max-duration` verifies
//! a slice of the data per run, least recently verified segments first, and records per
//! repository (in the client's security directory) which segments were verified and when.
//! Over N short runs every segment is verified exactly once; a byte flipped in a segment the
//! last run has not reached yet is found by the next run; `compact` leaves its new segments
//! unverified; `--coverage`, the job status and the metrics file report the share verified.
//! Local, S3 (SeaweedFS), `hoard serve` over ssh (segments through hoard's RPC extension) and
//! borg 1.4 `serve` (an object cursor). The clock is replaced by the hidden
//! `--hoard-verify-max-segments K` (K segments, or K objects over borg serve, per run).

mod common;
#[path = "support/seaweed.rs"]
mod seaweed;
#[path = "support/sshd.rs"]
mod sshd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{arg, borg14, Env, Run};

/// Random files of 40 kB each: with `max_segment_size` 64 KiB about one object per segment.
const FILES: usize = 20;

/// The repository `config` text's `id`.
fn id_from_config(config: &str) -> String {
    config
        .lines()
        .find_map(|l| l.trim().strip_prefix("id = "))
        .expect("repository id")
        .trim()
        .to_string()
}

/// The verification record of repository `id` in the environment's security directory.
fn record_path(env: &Env, id: &str) -> PathBuf {
    env.base()
        .join(".config/borg/security")
        .join(id)
        .join("hoard-verification.json")
}

/// Segment number → (size, verified time in unix µs), from the record.
fn verified(env: &Env, id: &str) -> BTreeMap<u32, (u64, i64)> {
    let p = record_path(env, id);
    let Ok(text) = std::fs::read_to_string(&p) else {
        return BTreeMap::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).expect("record is JSON");
    v["segments"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, r)| {
                    (
                        k.parse().expect("segment number"),
                        (
                            r["size"].as_u64().expect("size"),
                            r["verified_us"].as_i64().expect("time"),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `--coverage` as (percent, verified segments, total segments, stdout).
fn coverage(env: &Env, repo: &str) -> (f64, u64, u64, String) {
    let out = env.hoard(["check", "--coverage", repo]).ok().out();
    let pct = out
        .lines()
        .find_map(|l| l.split(": ").nth(1)?.strip_suffix(" % of the data"))
        .unwrap_or_else(|| panic!("no percentage in {out}"))
        .parse()
        .expect("percent");
    let (done, total) = out
        .lines()
        .find_map(|l| l.strip_prefix("Segments verified: "))
        .and_then(|t| t.split_once(" of "))
        .map(|(a, b)| (a.parse().expect("n"), b.parse().expect("n")))
        .unwrap_or_else(|| panic!("no segment counts in {out}"));
    (pct, done, total, out)
}

/// One slice: at most `k` segments (objects over borg serve), data verification only.
fn slice(env: &Env, repo: &str, k: usize) -> Run {
    env.hoard([
        "check",
        "-v",
        "--archives-only",
        "--verify-data",
        "--max-duration",
        "3600",
        "--hoard-verify-max-segments",
        &k.to_string(),
        repo,
    ])
}

/// Writes `FILES` random files (seeded by `seed`) under `dir` in the environment.
fn random_files(env: &Env, dir: &str, seed: u64) {
    let src = env.path().join(dir);
    std::fs::create_dir_all(&src).expect("mkdir");
    for i in 0..FILES {
        std::fs::write(
            src.join(format!("f{i:02}")),
            common::tree::pseudo_random(40_000, seed * 1000 + i as u64),
        )
        .expect("write");
    }
}

/// `config` text with `max_segment_size` 64 KiB: about one 40 kB object per segment.
fn small_segments(config: &str) -> String {
    config
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("max_segment_size") {
                "max_segment_size = 65536".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Shrinks the segments of the repository directory `dir`.
fn shrink_dir(dir: &Path) {
    let p = dir.join("config");
    let text = std::fs::read_to_string(&p).expect("config");
    std::fs::write(&p, small_segments(&text)).expect("config");
}

/// A repository at `repo` with small segments (`shrink` edits its config after `init`) and
/// archives `one` (of `src1`) and `two` (of `src2`), each of different random data.
fn make_repo(env: &Env, repo: &str, shrink: impl FnOnce()) {
    env.hoard(["init", "-e", "repokey", repo]).ok();
    shrink();
    random_files(env, "src1", 1);
    random_files(env, "src2", 2);
    env.hoard(["create", &format!("{repo}::one"), "src1"]).ok();
    env.hoard(["create", &format!("{repo}::two"), "src2"]).ok();
}

/// The segments of a repository directory whose first entry is a PUT of a file chunk (a
/// large object: those are live in these tests), ascending.
fn data_segments(repo: &Path) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(repo.join("data/0"))
        .expect("data/0")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|seg: &u32| {
            let data = std::fs::read(repo.join("data/0").join(seg.to_string())).unwrap_or_default();
            data.len() > 16
                && data[16] == 0
                && u32::from_le_bytes([data[12], data[13], data[14], data[15]]) > 30_000
        })
        .collect();
    out.sort();
    out
}

/// Slices of `k` segments until every segment is verified: each run verifies `k` segments
/// never verified before, no segment twice, until fewer than `k` are left; the last run then
/// goes on with the ones verified longest ago (those of the first run). Returns the record.
fn full_pass_in_slices(env: &Env, repo: &str, id: &str, k: usize) -> BTreeMap<u32, (u64, i64)> {
    let (_, done, total, out) = coverage(env, repo);
    assert_eq!(done, 0, "{out}");
    let total = total as usize;
    assert!(total >= 10, "too few segments for the test: {out}");
    let runs = total.div_ceil(k);
    let mut seen: BTreeMap<u32, (u64, i64)> = BTreeMap::new();
    let mut first_run: Vec<u32> = Vec::new();
    for run in 1..=runs {
        let r = slice(env, repo, k).ok();
        assert!(
            r.stderr
                .contains(&format!("Verified {k} of {total} segments"))
                && r.stderr.contains("stopped by --max-duration"),
            "run {run} of {runs}:\n{}",
            r.stderr
        );
        let now = verified(env, id);
        let new: Vec<u32> = now
            .keys()
            .filter(|s| !seen.contains_key(s))
            .copied()
            .collect();
        let left = total - seen.len();
        assert_eq!(new.len(), k.min(left), "run {run}: {new:?}");
        let again: Vec<u32> = seen
            .iter()
            .filter(|(s, rec)| now.get(s) != Some(rec))
            .map(|(s, _)| *s)
            .collect();
        if left >= k {
            assert!(again.is_empty(), "run {run} verified {again:?} again");
        } else {
            // the rest of the slice: the segments verified first, in ascending order
            assert_eq!(again, first_run[..k - left], "run {run}");
        }
        if run == 1 {
            first_run = new.clone();
        }
        seen = now;
    }
    assert_eq!(seen.len(), total);
    let (pct, done, _, out) = coverage(env, repo);
    assert_eq!((pct, done), (100.0, total as u64), "{out}");
    seen
}

#[test]
fn slices_verify_every_segment_once_then_the_least_recently_verified_again() {
    let env = Env::new();
    let repo_path = env.path().join("repo");
    let repo = arg(&repo_path);
    make_repo(&env, repo, || shrink_dir(&repo_path));
    let id = id_from_config(&std::fs::read_to_string(repo_path.join("config")).unwrap());
    let seen = full_pass_in_slices(&env, repo, &id, 3);
    // the next slice wraps around: the three verified longest ago are verified again
    let mut oldest: Vec<(i64, u32)> = seen.iter().map(|(s, (_, t))| (*t, *s)).collect();
    oldest.sort();
    let r = slice(&env, repo, 3).ok();
    assert!(
        r.stderr.contains("stopped by --max-duration"),
        "{}",
        r.stderr
    );
    let after = verified(&env, &id);
    let again: Vec<u32> = after
        .iter()
        .filter(|(s, rec)| seen.get(s) != Some(rec))
        .map(|(s, _)| *s)
        .collect();
    let mut want: Vec<u32> = oldest.iter().take(3).map(|(_, s)| *s).collect();
    want.sort();
    assert_eq!(again, want);
    // a full --verify-data (no --max-duration) verifies and records everything
    let r = env.hoard(["check", "-v", "--verify-data", repo]).ok();
    assert!(
        r.stderr.contains("100.0 % of the repository's data"),
        "{}",
        r.stderr
    );
    // the repository part with --max-duration is borg's partial check
    env.hoard(["check", "--verify-data", "--max-duration", "3600", repo])
        .ok();
    if let Some(b14) = borg14() {
        let out = env
            .command_at(&b14)
            .args(["check", "--verify-data", repo])
            .output()
            .expect("borg 1.4");
        assert!(
            out.status.success(),
            "borg 1.4.5 check --verify-data:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Flips one byte inside the data of segment `seg`'s first entry (a PUT).
fn flip_in_segment(repo: &Path, seg: u32) {
    let p = repo
        .join("data")
        .join((seg / 1000).to_string())
        .join(seg.to_string());
    let mut data = std::fs::read(&p).expect("segment");
    let size = u32::from_le_bytes(data[12..16].try_into().unwrap()) as usize;
    assert_eq!(data[16], 0, "segment {seg} does not start with a PUT");
    assert!(size > 1000, "segment {seg}'s first entry is small");
    let at = 8 + 41 + 500;
    data[at] ^= 0x40;
    std::fs::write(&p, data).expect("write segment");
}

#[test]
fn a_byte_flipped_ahead_of_the_last_slice_is_found_by_the_next() {
    let env = Env::new();
    let repo_path = env.path().join("repo");
    let repo = arg(&repo_path);
    make_repo(&env, repo, || shrink_dir(&repo_path));
    let id = id_from_config(&std::fs::read_to_string(repo_path.join("config")).unwrap());
    slice(&env, repo, 2).ok();
    let first = verified(&env, &id);
    assert_eq!(first.len(), 2);
    // the next unverified segment holding data, in the order the next slice takes them
    let r = env.hoard(["check", "--coverage", repo]).ok();
    assert!(r.out().contains("Segments verified: 2 of "), "{}", r.out());
    let target = data_segments(&repo_path)
        .into_iter()
        .find(|s| !first.contains_key(s))
        .expect("an unverified segment");
    assert!(first.keys().all(|s| *s < target), "{first:?} {target}");
    flip_in_segment(&repo_path, target);
    // the next slice reaches it: one error line, exit code 1
    let r = slice(&env, repo, 2).expect_code(1);
    assert!(
        r.stderr.contains("integrity error") || r.stderr.contains("Data integrity error"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("Finished cryptographic data integrity verification, verified")
            && r.stderr.contains("with 1 integrity errors."),
        "{}",
        r.stderr
    );
    // the damaged segment is not recorded as verified: first in line next time, found again
    let after = verified(&env, &id);
    assert!(!after.contains_key(&target), "{after:?}");
    assert_eq!(after.len(), 3, "{after:?}");
    let r = slice(&env, repo, 1).expect_code(1);
    assert!(
        r.stderr.contains("with 1 integrity errors."),
        "{}",
        r.stderr
    );
}

#[test]
fn compacted_segments_count_as_unverified() {
    let env = Env::new();
    let repo_path = env.path().join("repo");
    let repo = arg(&repo_path);
    make_repo(&env, repo, || shrink_dir(&repo_path));
    let id = id_from_config(&std::fs::read_to_string(repo_path.join("config")).unwrap());
    env.hoard(["check", "--verify-data", repo]).ok();
    let (pct, done, total, out) = coverage(&env, repo);
    assert_eq!((pct, done), (100.0, total), "{out}");
    let before = verified(&env, &id);
    env.hoard(["delete", &format!("{repo}::one")]).ok();
    env.hoard(["compact", "--threshold", "0", repo]).ok();
    let (pct, done, total, out) = coverage(&env, repo);
    assert!(pct < 100.0 && done < total, "{out}");
    let never: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Never verified (or changed since): "))
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(never >= 1 && done + never == total, "{out}");
    // what compaction wrote is newer than anything verified before: those segments are new
    let newest_before = *before.keys().max().unwrap();
    let r = slice(&env, repo, never as usize).ok();
    let after = verified(&env, &id);
    let fresh: Vec<u32> = after
        .iter()
        .filter(|(s, rec)| before.get(s) != Some(rec))
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(fresh.len() as u64, never, "{fresh:?}\n{}", r.stderr);
    assert!(fresh.iter().all(|s| *s > newest_before), "{fresh:?}");
    let (pct, _, _, out) = coverage(&env, repo);
    assert_eq!(pct, 100.0, "{out}");
}

#[test]
fn max_duration_still_needs_verify_data_or_repository_only() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let r = env
        .hoard(["check", "--max-duration", "10", arg(&repo)])
        .expect_code(2);
    assert!(
        r.stderr
            .contains("--repository-only is required for --max-duration support."),
        "{}",
        r.stderr
    );
    let out = env
        .hoard_cmd()
        .env("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "YES")
        .args([
            "check",
            "--verify-data",
            "--repair",
            "--max-duration",
            "10",
            arg(&repo),
        ])
        .output()
        .expect("hoard");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
    .expect_code(2);
    assert!(
        r.stderr
            .contains("--repair does not allow --max-duration argument."),
        "{}",
        r.stderr
    );
    env.hoard(["check", "--coverage", "--repair", arg(&repo)])
        .expect_code(2);
    // --coverage verifies nothing (a new repository holds its manifest)
    let out = env.hoard(["check", "--coverage", arg(&repo)]).ok().out();
    assert!(out.contains("Segments verified: 0 of 1"), "{out}");
    env.hoard(["check", "--verify-data", arg(&repo)]).ok();
    let out = env.hoard(["check", "--coverage", arg(&repo)]).ok().out();
    assert!(out.contains("Segments verified: 1 of 1"), "{out}");
}

#[test]
fn slices_on_s3() {
    let env0 = Env::new();
    let Some(w) = seaweed::Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let mut env = Env::new();
    for (k, v) in w.env() {
        env.set(k, v);
    }
    let repo = w.url("verify/repo");
    let store = w.store("verify/repo");
    make_repo(&env, &repo, || {
        let config = store.get("config").unwrap().unwrap();
        let config = small_segments(&String::from_utf8_lossy(&config));
        store.put("config", config.as_bytes()).unwrap();
    });
    let config = store.get("config").unwrap().unwrap();
    let id = id_from_config(&String::from_utf8_lossy(&config));
    full_pass_in_slices(&env, &repo, &id, 4);
}

#[test]
fn slices_over_hoard_serve_use_segments() {
    let hoard = PathBuf::from(env!("CARGO_BIN_EXE_hoard"));
    let (env, sshd) = sshd::client_env(&hoard, &[]);
    let repo_path = env.path().join("repo");
    let repo = sshd.url(&repo_path);
    make_repo(&env, &repo, || shrink_dir(&repo_path));
    let id = id_from_config(&std::fs::read_to_string(repo_path.join("config")).unwrap());
    full_pass_in_slices(&env, &repo, &id, 4);
}

/// The object cursor of the record.
fn marker(env: &Env, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(record_path(env, id)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["objects"]["marker"].as_str().map(str::to_string)
}

#[test]
fn slices_over_borg14_serve_use_an_object_cursor() {
    let Some(b14) = borg14() else { return };
    let (env, sshd) = sshd::client_env(&b14, &[]);
    let repo_path = env.path().join("repo");
    let repo = sshd.url(&repo_path);
    make_repo(&env, &repo, || shrink_dir(&repo_path));
    let id = id_from_config(&std::fs::read_to_string(repo_path.join("config")).unwrap());
    // borg serve tells no segments: --coverage estimates from object counts
    let out = env.hoard(["check", "--coverage", &repo]).ok().out();
    assert!(
        out.contains("about 0.0 % of the objects") && out.contains("borg serve tells no segments"),
        "{out}"
    );
    let total: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("Objects verified: about 0 of "))
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(total > 20, "{out}");
    // slices of 10 objects move the cursor; the last one goes past the end and on from the
    // beginning
    let mut markers = Vec::new();
    let runs = total.div_ceil(10);
    for run in 1..=runs {
        let r = slice(&env, &repo, 10).ok();
        assert!(
            r.stderr
                .contains("verified 10 chunks with 0 integrity errors."),
            "run {run}: {}",
            r.stderr
        );
        markers.push(marker(&env, &id).expect("a cursor"));
    }
    let mut distinct = markers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), runs, "{markers:?}");
    let out = env.hoard(["check", "--coverage", &repo]).ok().out();
    assert!(out.contains("about 100.0 % of the objects"), "{out}");
    // a byte flipped ahead of the cursor is found by a later slice
    // objects are scanned in segment order; the slice covered the first 10 objects, about
    // the first 10 segments: damage one well after them
    let segs = data_segments(&repo_path);
    let target = segs[segs.len() / 2 + 5];
    flip_in_segment(&repo_path, target);
    let mut found = false;
    for _ in 0..runs {
        let r = slice(&env, &repo, 10);
        if r.code == 1 {
            assert!(
                r.stderr.contains("with 1 integrity errors."),
                "{}",
                r.stderr
            );
            found = true;
            break;
        }
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert!(found, "the damage was not found within one pass");
}

/// A job folder `name` under `jobs` (passphrase file) with `config.yaml` = `yaml`.
fn job(jobs: &Path, name: &str, yaml: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = jobs.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let pf = dir.join("BORGKeyPassword.file");
    std::fs::write(&pf, "job-passphrase\n").unwrap();
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    dir
}

#[test]
fn job_status_and_metrics_carry_the_coverage() {
    let mut env = Env::new();
    env.passphrase = None;
    let jobs = env.path().join("jobs");
    env.set("HOARD_CONFIG_DIR", &jobs.to_string_lossy());
    random_files(&env, "src1", 1);
    let repo = env.path().join("repo");
    let yaml = format!(
        "backup:\n  - {}\ntarget: '{}'\ncleanup:\n  last: 5\nretry_wait: 0\nmetrics: job.prom\ncheck:\n  every: 7d\n  verify_data: true\n  max_duration: 3600\n",
        env.path().join("src1").display(),
        repo.display()
    );
    let dir = job(&jobs, "vjob", &yaml);
    let mut init: Command = env.hoard_cmd();
    init.env(
        "BORG_PASSCOMMAND",
        format!("cat {}", dir.join("BORGKeyPassword.file").display()),
    )
    .args(["init", "-e", "repokey", arg(&repo)]);
    assert!(init.status().unwrap().success());
    env.hoard(["run", "--config", "vjob"]).ok();
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["verification_coverage"], 1.0, "{status}");
    // new data, check not due (every: 7d): part of the repository is unverified now
    random_files(&env, "src1", 3);
    env.hoard(["run", "--config", "vjob"]).ok();
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).unwrap()).unwrap();
    let c = status["verification_coverage"].as_f64().expect("coverage");
    assert!(c > 0.0 && c < 1.0, "{status}");
    assert_eq!(status["verification_coverage_days"], 7, "{status}");
    // `hoard status` and the report show it: the share rounded down, and the window
    let pct = format!("{:.0}% (7d)", (c * 100.0).floor());
    let table = env.hoard(["status"]).ok().out();
    let header = table.lines().next().unwrap_or("");
    let row = table
        .lines()
        .find(|l| l.starts_with("vjob "))
        .unwrap_or_else(|| panic!("{table}"));
    let at = header.find("VERIFIED").unwrap_or_else(|| panic!("{table}"));
    assert!(row[at..].starts_with(&pct), "{pct}:\n{table}");
    let json: serde_json::Value =
        serde_json::from_str(&env.hoard(["status", "--json"]).ok().out()).unwrap();
    assert_eq!(json[0]["verification_coverage"], c, "{json}");
    let html = env.path().join("vjob.html");
    env.hoard(["report", "vjob", "--html", arg(&html)]).ok();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(&format!("<span>Data verified</span><strong>{pct}</strong>")),
        "{pct}"
    );
    let prom = std::fs::read_to_string(dir.join("job.prom")).unwrap();
    let line = prom
        .lines()
        .find(|l| l.starts_with("hoard_job_verification_coverage_ratio{job=\"vjob\"} "))
        .unwrap_or_else(|| panic!("{prom}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - c).abs() < 1e-9, "{line} vs {c}");
    if let Some(tool) = promtool() {
        let out = Command::new(tool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(dir.join("job.prom")).unwrap())
            .output()
            .unwrap();
        let msg = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && msg.trim().is_empty(),
            "{msg}\n{prom}"
        );
    }
}

/// `promtool` as tests/job_status.rs finds it; `None` only with `HOARD_SKIP_PROMTOOL=1`.
fn promtool() -> Option<PathBuf> {
    for c in [
        std::env::var_os("HOARD_PROMTOOL").map(PathBuf::from),
        Some(PathBuf::from("/var/tmp/hoard-promtool/promtool")),
        Some(PathBuf::from("promtool")),
    ]
    .into_iter()
    .flatten()
    {
        if Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    if std::env::var("HOARD_SKIP_PROMTOOL").as_deref() == Ok("1") {
        return None;
    }
    panic!("promtool is needed (Debian package prometheus), or HOARD_SKIP_PROMTOOL=1");
}

/// A pipe whose buffer holds one page: a child writing its stderr into it can never be more
/// than about a page of output ahead of the reader (the test's clock, not a timer).
fn narrow_pipe() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two descriptors that we then own; fcntl on one of them.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
        assert!(
            libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) > 0,
            "F_SETPIPE_SZ"
        );
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// Ctrl-C (twice: borg's check goes on after the first) during a verification slice ends
/// the check, and what it verified up to then is recorded: `--coverage` counts it and the
/// next slice goes on with the segments not verified yet instead of starting over.
#[test]
fn an_interrupted_slice_keeps_what_it_verified() {
    use std::io::{BufRead, BufReader};
    let env = Env::new();
    let repo_path = env.path().join("repo");
    let repo = arg(&repo_path);
    env.hoard(["init", "-e", "repokey", repo]).ok();
    // segments of at most 16 KiB: one 20 kB object each
    let config = repo_path.join("config");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = small_segments(&text).replace("65536", "16384");
    assert!(text.contains("max_segment_size = 16384"), "{text}");
    std::fs::write(&config, text).expect("config");
    // 1000 segments: their debug lines are many pages, the process cannot finish ahead of
    // the reader
    let src = env.path().join("many");
    std::fs::create_dir_all(&src).expect("mkdir");
    for i in 0..1000u64 {
        std::fs::write(
            src.join(format!("f{i:04}")),
            common::tree::pseudo_random(20_000, 7000 + i),
        )
        .expect("write");
    }
    env.hoard(["create", &format!("{repo}::many"), "many"]).ok();
    let id = id_from_config(&std::fs::read_to_string(repo_path.join("config")).unwrap());
    let (read, write) = narrow_pipe();
    let mut cmd = env.hoard_cmd();
    cmd.args([
        "--debug",
        "check",
        "--archives-only",
        "--verify-data",
        "--max-duration",
        "3600",
        repo,
    ])
    .stderr(std::process::Stdio::from(write));
    let mut child = cmd.spawn().expect("spawn");
    drop(cmd);
    let mut lines = BufReader::new(read).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.expect("stderr");
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("segment ") && line.contains(" verified: ") {
            break;
        }
    }
    common::signal(&child, libc::SIGINT);
    // (apart by more than borg's 20 ms debounce: two key presses, not one forwarded twice)
    std::thread::sleep(std::time::Duration::from_millis(200));
    common::signal(&child, libc::SIGINT);
    for line in lines {
        seen.push_str(&line.expect("stderr"));
        seen.push('\n');
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("Keyboard interrupt"), "{seen}");
    assert!(seen.contains("in this run, interrupted"), "{seen}");
    let kept = verified(&env, &id);
    let (_, done, total, out) = coverage(&env, repo);
    assert!(
        done > 0 && (done as usize) == kept.len() && done < total,
        "{out}\n{seen}"
    );
    // the next slice verifies segments not verified yet; the recorded ones stay as they are
    let k = 5;
    slice(&env, repo, k).ok();
    let after = verified(&env, &id);
    // (segments without live objects on the way are recorded without counting)
    assert!(after.len() >= kept.len() + k, "{} {after:?}", kept.len());
    for (s, rec) in &kept {
        assert_eq!(after.get(s), Some(rec), "segment {s} verified again");
    }
}
