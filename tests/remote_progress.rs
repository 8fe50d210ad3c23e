//! Progress of work the server does (the repository check, compaction) reaches the client, as
//! borg's `handle_remote_line` shows it: with `--progress`, `--log-json` re-emits the server's
//! `progress_percent` records with `Remote: ` before the message, text mode writes the message
//! and `\r`; without `--progress` nothing. Against `hoard serve` and borg 1.4.5's `borg serve`,
//! and borg 1.4.5's client against `hoard serve`.

mod common;

use std::path::{Path, PathBuf};

use common::{arg, Env};

/// An environment whose `ssh://` repositories are served by `server`, and a repository of
/// four commits (several segments) in it.
fn remote_env(server: &Path) -> (Env, PathBuf, String) {
    let mut env = Env::new();
    let rsh = common::local_rsh(&env);
    env.set("BORG_RSH", arg(&rsh));
    env.set("BORG_REMOTE_PATH", arg(server));
    let repo = env.init_repo("repo", "repokey");
    let tree = env.path().join("tree");
    for round in 0..4u8 {
        let files: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| {
                (
                    format!("f{round}-{i}"),
                    common::tree::pseudo_random(40_000, u64::from(round) * 10 + i),
                )
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        common::write_files(&tree, &refs);
        env.hoard([
            "create",
            &common::archive(&repo, &format!("a{round}")),
            arg(&tree),
        ])
        .ok();
    }
    let url = format!("ssh://localhost{}", repo.display());
    (env, repo, url)
}

/// The `progress_percent` records of `msgid` in a `--log-json` stderr.
fn percent_records(stderr: &str, msgid: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "progress_percent" && v["msgid"] == msgid)
        .collect()
}

/// Asserts that the records show the server's indicator: running ones with a `Remote: `
/// message beginning with `message`, a position within the total, and a finished one.
fn assert_remote_percent(stderr: &str, msgid: &str, message: &str) {
    let records = percent_records(stderr, msgid);
    let running: Vec<_> = records.iter().filter(|v| v["finished"] == false).collect();
    assert!(
        !running.is_empty(),
        "no running {msgid} records in:\n{stderr}"
    );
    for v in &running {
        let text = v["message"].as_str().unwrap_or("");
        assert!(
            text.starts_with(&format!("Remote: {message}")),
            "unexpected message {text:?} in:\n{stderr}"
        );
        let (current, total) = (v["current"].as_u64(), v["total"].as_u64());
        assert!(
            matches!((current, total), (Some(c), Some(t)) if t > 0 && c <= t),
            "bad position in {v}"
        );
    }
    // every record came, not only those the server wrote before the client had its reply
    let last = running.last().expect("a running record");
    assert!(
        last["current"].as_u64().unwrap_or(0) + 1 >= last["total"].as_u64().unwrap_or(0),
        "the records stop at {last} in:\n{stderr}"
    );
    assert!(
        records.iter().any(|v| v["finished"] == true),
        "no finished {msgid} record in:\n{stderr}"
    );
}

fn hoard() -> PathBuf {
    common::hoard_exe()
}

#[test]
fn check_progress_of_hoard_serve_reaches_the_client() {
    let (env, _repo, url) = remote_env(&hoard());
    let r = env
        .hoard(["check", "--repository-only", "-p", "--log-json", &url])
        .ok();
    assert_remote_percent(&r.stderr, "repository.check", "Checking segments");

    // Text mode, stderr not a terminal: borg's client writes the message and a carriage return.
    let r = env.hoard(["check", "--repository-only", "-p", &url]).ok();
    assert!(
        r.stderr.contains("Remote: Checking segments") && r.stderr.contains('\r'),
        "no text progress in:\n{:?}",
        r.stderr
    );

    // Without --progress nothing is shown.
    let r = env
        .hoard(["check", "--repository-only", "--log-json", &url])
        .ok();
    assert!(
        percent_records(&r.stderr, "repository.check").is_empty(),
        "progress without -p:\n{}",
        r.stderr
    );
}

#[test]
fn compaction_progress_of_hoard_serve_reaches_the_client() {
    let (env, repo, url) = remote_env(&hoard());
    env.hoard(["delete", &common::archive(&repo, "a1")]).ok();
    env.hoard(["delete", &common::archive(&repo, "a2")]).ok();
    let r = env.hoard(["compact", "-p", "--log-json", &url]).ok();
    assert_remote_percent(
        &r.stderr,
        "repository.compact_segments",
        "Compacting segments",
    );
    env.hoard(["check", &url]).ok();
}

#[test]
fn check_progress_of_borg_serve_reaches_the_hoard_client() {
    let Some(borg) = common::borg14() else { return };
    let (env, _repo, url) = remote_env(&borg);
    let r = env
        .hoard(["check", "--repository-only", "-p", "--log-json", &url])
        .ok();
    assert_remote_percent(&r.stderr, "repository.check", "Checking segments");
}

#[test]
fn borg_client_shows_check_progress_of_hoard_serve() {
    let Some(borg) = common::borg14() else { return };
    let (env, _repo, url) = remote_env(&hoard());
    let r = env
        .run_at(
            &borg,
            ["check", "--repository-only", "-p", "--log-json", &url],
        )
        .ok();
    assert_remote_percent(&r.stderr, "repository.check", "Checking segments");
}
