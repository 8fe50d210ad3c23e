//! Remote repositories over a private sshd on 127.0.0.1: hoard as a client of `borg serve`,
//! borg as a client of `hoard serve`, hoard against hoard, server policies, killed
//! connections and hostile "servers". Plus a codec round trip of the captured RPC streams.

mod common;
#[path = "support/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{borg_available, Env, Run};
use hoard::msgpack::{Limits, StreamDecoder};
use hoard::rpc as protocol;
use sshd::Sshd;

/// A private copy of the hoard binary: the shared target dir may be rebuilt by others while
/// these tests run, and the remote side must be this build.
fn hoard_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("remote-tests");
        std::fs::create_dir_all(&dir).expect("bin dir");
        // Remove the copies of earlier runs whose process is gone.
        for e in std::fs::read_dir(&dir).expect("ls").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("hoard-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let dst = dir.join(format!("hoard-{}", std::process::id()));
        // HOARD_REMOTE_TEST_BIN overrides the binary (useful with a busy shared target dir).
        let src = std::env::var_os("HOARD_REMOTE_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hoard")));
        std::fs::copy(&src, &dst).expect("copy hoard");
        dst
    })
}

/// Runs `program` with the environment `env` gives hoard.
fn command(env: &Env, program: &Path) -> Command {
    let base = env.hoard_cmd();
    let mut c = Command::new(program);
    c.env_clear();
    for (k, v) in std::env::vars() {
        if !(k.starts_with("BORG_") || k.starts_with("HOARD_")) {
            c.env(k, v);
        }
    }
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = base.get_current_dir() {
        c.current_dir(d);
    }
    c.stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Run {
    let out = c.output().expect("run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn hoard(env: &Env, args: &[&str]) -> Run {
    let mut c = command(env, hoard_bin());
    c.args(args);
    run(c)
}

fn borg(env: &Env, args: &[&str]) -> Run {
    with_program(env, Path::new("borg"), args)
}

/// Runs another client program (say, borg 1.4) with the environment `env` gives hoard.
fn with_program(env: &Env, program: &Path, args: &[&str]) -> Run {
    let mut c = command(env, program);
    c.args(args);
    run(c)
}

use common::borg14;

/// A test setup: an environment, a private sshd, and the hoard binary for the remote side.
struct Setup {
    env: Env,
    sshd: Sshd,
}

impl Setup {
    fn new(forced: &[(&str, &str)]) -> Option<Setup> {
        let (env, sshd) = sshd::client_env(hoard_bin(), forced);
        Some(Setup { env, sshd })
    }

    fn url(&self, p: &Path) -> String {
        self.sshd.url(p)
    }

    fn src_tree(&self) -> PathBuf {
        let src = self.env.path().join("src");
        std::fs::create_dir_all(src.join("sub")).expect("src");
        std::fs::write(src.join("a.txt"), "hello remote\n".repeat(1000)).expect("w");
        std::fs::write(
            src.join("sub/b.bin"),
            common::tree::pseudo_random(300_000, 7),
        )
        .expect("w");
        std::fs::write(src.join("sub/c"), b"").expect("w");
        src
    }
}

fn segments(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(repo.join("data")) {
        for d in rd.flatten() {
            if let Ok(rd2) = std::fs::read_dir(d.path()) {
                out.extend(rd2.flatten().map(|e| e.path()));
            }
        }
    }
    out.sort();
    out
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

#[test]
fn rpc_vectors_decode_and_reencode_byte_exact() {
    let dir = common::vectors_dir().join("rpc");
    let mut files = 0;
    for e in std::fs::read_dir(&dir).expect("rpc vectors") {
        let p = e.expect("entry").path();
        if p.extension().and_then(|x| x.to_str()) != Some("bin") {
            continue;
        }
        files += 1;
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&p).expect("read");
        let client_to_server = name.contains("client-to-server");
        let limits = if client_to_server {
            Limits::RPC_SERVER
        } else {
            Limits::RPC_CLIENT
        };
        let mut dec = StreamDecoder::new(limits);
        dec.feed(&data);
        let mut reencoded = Vec::new();
        let mut n = 0;
        while let Some(v) = dec.next_value().expect("decode") {
            n += 1;
            reencoded.extend_from_slice(&v.to_bytes());
            if client_to_server {
                let req = protocol::parse_request(v).expect("a request");
                // Re-encode through the request encoder too: same bytes.
                let msgid = req.msgid.as_u64().expect("msgid");
                let args: Vec<(&str, hoard::msgpack::Value)> = req
                    .args
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                let b = protocol::encode_request(req.dict, msgid, &req.method, &args);
                let (again, _) = hoard::msgpack::decode_one(&b, limits).expect("decode");
                assert_eq!(protocol::parse_request(again).expect("req"), req);
            } else {
                let r = protocol::parse_reply(v).expect("a reply");
                assert!(r.outcome.is_ok());
            }
        }
        assert_eq!(dec.pending(), 0, "{name}: trailing bytes");
        assert!(n >= 2, "{name}: only {n} messages");
        assert_eq!(reencoded, data, "{name}: re-encoding differs");
    }
    assert!(files >= 4, "expected the captured .bin streams");
}

#[test]
fn hoard_client_against_borg_serve() {
    if !borg_available() {
        return;
    }
    let Some(mut s) = Setup::new(&[]) else { return };
    s.env.set("BORG_REMOTE_PATH", "borg");
    let repo = s.env.path().join("repo");
    let url = s.url(&repo);
    hoard(&s.env, &["init", "-e", "repokey", &url]).ok();
    assert!(repo.join("config").is_file());
    let info = hoard(&s.env, &["info", &url]).ok();
    assert!(
        info.out().contains(&format!("Location: {url}")),
        "{}",
        info.out()
    );
    assert!(info.out().contains("Encrypted: Yes (repokey)"));
    let check = hoard(&s.env, &["check", "-v", "--repository-only", &url]).ok();
    assert!(
        check.stderr.contains("Remote: ") && check.stderr.contains("no problems found"),
        "{}",
        check.stderr
    );
    let export = hoard(&s.env, &["key", "export", &url]).ok();
    assert!(export.out().starts_with("BORG_KEY "), "{}", export.out());
    // Compare with what borg exports locally.
    let local = borg(&s.env, &["key", "export", &repo.to_string_lossy()]).ok();
    assert_eq!(export.out(), local.out());
    // The repository made over the wire is a good borg repository, usable by borg.
    borg(&s.env, &["check", "--verify-data", &repo.to_string_lossy()]).ok();
    // hoard create / extract over borg serve.
    let src = s.src_tree();
    hoard(&s.env, &["create", &format!("{url}::a1"), "src"]).ok();
    let out = s.env.path().join("out");
    std::fs::create_dir_all(&out).expect("out");
    let mut c = command(&s.env, hoard_bin());
    c.args(["extract", &format!("{url}::a1")]).current_dir(&out);
    run(c).ok();
    common::tree::assert_same_tree(&src, &out.join("src"));
    borg(&s.env, &["check", "--verify-data", &repo.to_string_lossy()]).ok();
    // hoard's archive-level commands over borg serve.
    let list = hoard(&s.env, &["list", "--short", &url]).ok();
    assert_eq!(list.out(), "a1\n");
    let files = hoard(&s.env, &["list", "--short", &format!("{url}::a1")]).ok();
    assert!(files.out().contains("src/sub/b.bin"), "{}", files.out());
    hoard(&s.env, &["check", &url]).ok();
    hoard(&s.env, &["check", "--verify-data", &url]).ok();
    hoard(&s.env, &["rename", &format!("{url}::a1"), "renamed"]).ok();
    hoard(&s.env, &["delete", &format!("{url}::renamed")]).ok();
    assert_eq!(hoard(&s.env, &["list", "--short", &url]).ok().out(), "");
    hoard(&s.env, &["break-lock", &url]).ok();
    borg(&s.env, &["check", &repo.to_string_lossy()]).ok();
    // prune and compact over borg serve, then the full check (server side included).
    prune_compact_check(&s, &repo, &url, &src, &[Path::new("borg")]);
}

/// Three more archives through `url`, prune to the last one, compact (segments shrink),
/// a full `check -v` that includes the server-side repository check, extract of the kept
/// archive, and finally `borg check --verify-data` on the repository directory itself.
fn prune_compact_check(s: &Setup, repo: &Path, url: &str, src: &Path, local_borgs: &[&Path]) {
    for (i, a) in ["p1", "p2", "p3"].into_iter().enumerate() {
        // Each archive has its own big file and not the one before: pruning frees them.
        if i > 0 {
            std::fs::remove_file(src.join(format!("big-{i}"))).expect("rm");
        }
        std::fs::write(
            src.join(format!("big-{}", i + 1)),
            common::tree::pseudo_random(400_000, 100 + i as u64),
        )
        .expect("w");
        hoard(&s.env, &["create", &format!("{url}::{a}"), "src"]).ok();
    }
    let before = dir_size(repo);
    let dry = hoard(
        &s.env,
        &["prune", "--dry-run", "--list", "--keep-last", "1", url],
    )
    .ok();
    assert!(
        dry.stderr.contains("Would prune:") && dry.stderr.contains("Keeping archive"),
        "{}",
        dry.stderr
    );
    hoard(&s.env, &["prune", "--keep-last", "1", url]).ok();
    assert_eq!(hoard(&s.env, &["list", "--short", url]).ok().out(), "p3\n");
    hoard(&s.env, &["compact", url]).ok();
    let after = dir_size(repo);
    assert!(
        after + 700_000 < before,
        "compact freed too little: {before} -> {after} bytes"
    );
    let check = hoard(&s.env, &["check", "-v", url]).ok();
    assert!(
        check
            .stderr
            .contains("Remote: Finished full repository check, no problems found.")
            && check.stderr.contains("Archive consistency check complete"),
        "{}",
        check.stderr
    );
    let out = s.env.path().join("out-p3");
    std::fs::create_dir_all(&out).expect("out");
    let mut c = command(&s.env, hoard_bin());
    c.args(["extract", &format!("{url}::p3")]).current_dir(&out);
    run(c).ok();
    common::tree::assert_same_tree(src, &out.join("src"));
    for b in local_borgs {
        let check = with_program(
            &s.env,
            b,
            &["check", "-v", "--verify-data", &repo.to_string_lossy()],
        )
        .ok();
        assert!(
            check
                .stderr
                .contains("Archive consistency check complete, no problems found."),
            "{}",
            check.stderr
        );
    }
}

#[test]
fn borg_client_against_hoard_serve() {
    if !borg_available() {
        return;
    }
    let Some(s) = Setup::new(&[]) else { return };
    let repo = s.env.path().join("repo");
    let url = s.url(&repo);
    let src = s.src_tree();
    borg(&s.env, &["init", "-e", "repokey", &url]).ok();
    for a in ["a1", "a2", "a3"] {
        let mut c = command(&s.env, Path::new("borg"));
        c.args(["create", "--stats", &format!("{url}::{a}"), "."])
            .current_dir(&src);
        run(c).ok();
        std::fs::write(src.join(format!("new-{a}")), a).expect("w");
    }
    let list = borg(&s.env, &["list", "--short", &url]).ok();
    assert_eq!(list.out(), "a1\na2\na3\n");
    let files = borg(&s.env, &["list", "--short", &format!("{url}::a2")]).ok();
    assert!(files.out().contains("sub/b.bin"), "{}", files.out());
    let out = s.env.path().join("out");
    std::fs::create_dir_all(&out).expect("out");
    let mut c = command(&s.env, Path::new("borg"));
    c.args(["extract", &format!("{url}::a1")]).current_dir(&out);
    run(c).ok();
    assert_eq!(
        std::fs::read(out.join("sub/b.bin")).expect("extracted"),
        std::fs::read(src.join("sub/b.bin")).expect("src")
    );
    borg(&s.env, &["delete", &format!("{url}::a1")]).ok();
    borg(&s.env, &["prune", "--keep-last", "1", &url]).ok();
    borg(&s.env, &["compact", &url]).ok();
    let check = borg(&s.env, &["check", "-v", &url]).ok();
    assert!(check.stderr.contains("Remote: "), "{}", check.stderr);
    assert_eq!(borg(&s.env, &["list", "--short", &url]).ok().out(), "a3\n");
    borg(&s.env, &["check", "--verify-data", &repo.to_string_lossy()]).ok();
    // And hoard reads it over the same server.
    hoard(&s.env, &["info", &url]).ok();
    assert_eq!(hoard(&s.env, &["list", "--short", &url]).ok().out(), "a3\n");
    hoard(&s.env, &["check", "--verify-data", &url]).ok();
}

#[test]
fn hoard_client_against_hoard_serve() {
    let Some(s) = Setup::new(&[]) else { return };
    let repo = s.env.path().join("repo");
    let url = s.url(&repo);
    hoard(&s.env, &["init", "-e", "repokey", &url]).ok();
    let again = hoard(&s.env, &["init", "-e", "repokey", &url]).expect_code(2);
    assert_eq!(
        last_line(&again.stderr),
        format!("A repository already exists at {url}.")
    );
    hoard(&s.env, &["info", &url]).ok();
    let check = hoard(&s.env, &["check", "-v", "--repository-only", &url]).ok();
    assert!(
        check
            .stderr
            .contains("Remote: Finished full repository check, no problems found."),
        "{}",
        check.stderr
    );
    hoard(&s.env, &["key", "export", &url]).ok();
    hoard(&s.env, &["break-lock", &url]).ok();
    // `config` only works on local repositories, as in borg (refused while parsing).
    let want = format!("argument REPOSITORY: \"{url}\": Repository must be local");
    for args in [
        vec!["config", url.as_str(), "append_only"],
        vec!["config", "-l", url.as_str()],
        vec!["config", url.as_str(), "append_only", "1"],
        vec!["config", "--cache", url.as_str(), "previous_location"],
    ] {
        let r = hoard(&s.env, &args).expect_code(2);
        assert_eq!(last_line(&r.stderr), want, "{args:?}");
        if borg_available() {
            let b = borg(&s.env, &args).expect_code(2);
            assert_eq!(
                last_line(&b.stderr),
                format!("borg config: error: {want}"),
                "{args:?}"
            );
        }
    }
    let config = std::fs::read_to_string(repo.join("config")).expect("config");
    assert!(!config.contains("append_only = 1"), "{config}");
    // A full round trip through hoard serve.
    let src = s.src_tree();
    hoard(&s.env, &["create", &format!("{url}::a1"), "src"]).ok();
    std::fs::write(src.join("later"), "x").expect("w");
    // Through the --upload-buffer send queue (and a rate limit far above the data rate).
    hoard(
        &s.env,
        &[
            "create",
            "--upload-buffer",
            "4",
            "--upload-ratelimit",
            "1000000",
            &format!("{url}::a2"),
            "src",
        ],
    )
    .ok();
    let out = s.env.path().join("out");
    std::fs::create_dir_all(&out).expect("out");
    let mut c = command(&s.env, hoard_bin());
    c.args(["extract", &format!("{url}::a2")]).current_dir(&out);
    run(c).ok();
    common::tree::assert_same_tree(&src, &out.join("src"));
    hoard(&s.env, &["prune", "--keep-last", "1", &url]).ok();
    hoard(&s.env, &["compact", &url]).ok();
    assert_eq!(hoard(&s.env, &["list", "--short", &url]).ok().out(), "a2\n");
    hoard(&s.env, &["check", "--verify-data", &url]).ok();
    let missing = s.url(&s.env.path().join("nope"));
    let r = hoard(&s.env, &["info", &missing]).expect_code(2);
    assert_eq!(
        last_line(&r.stderr),
        format!("Repository {missing} does not exist.")
    );
    // Home-relative paths resolve on the server (BORG_BASE_DIR there is serverbase).
    let home_rel = s.url(Path::new("/~/rel-repo"));
    hoard(&s.env, &["init", "-e", "none", &home_rel]).ok();
    assert!(s.env.path().join("serverbase/rel-repo/config").is_file());
    hoard(&s.env, &["list", &home_rel]).ok();
    if borg_available() {
        borg(&s.env, &["check", &repo.to_string_lossy()]).ok();
    }
}

#[test]
fn restrict_to_path_and_repository() {
    let tmp = tempfile::tempdir().expect("tmp");
    let allowed = tmp.path().join("allowed");
    std::fs::create_dir_all(&allowed).expect("mkdir");
    let bin = hoard_bin().to_string_lossy().into_owned();
    let only_repo = allowed.join("only");
    let Some(mut s) = Setup::new(&[
        (
            "restricted_key",
            &format!("{bin} serve --restrict-to-path {}", allowed.display()),
        ),
        (
            "repo_key",
            &format!(
                "{bin} serve --restrict-to-repository {}",
                only_repo.display()
            ),
        ),
        (
            "borg_key",
            &format!("borg serve --restrict-to-path {}", allowed.display()),
        ),
    ]) else {
        return;
    };
    s.env.set("BORG_RSH", &s.sshd.rsh_with("restricted_key"));
    let outside = tmp.path().join("allowedx");
    let r = hoard(&s.env, &["init", "-e", "none", &s.url(&outside)]).expect_code(2);
    assert_eq!(
        last_line(&r.stderr),
        format!("Repository path not allowed: {}", outside.display())
    );
    assert!(!outside.exists());
    if borg_available() {
        let r = borg(&s.env, &["init", "-e", "none", &s.url(&outside)]).expect_code(2);
        assert!(
            r.stderr.contains(&format!(
                "Repository path not allowed: {}",
                outside.display()
            )),
            "{}",
            r.stderr
        );
        borg(&s.env, &["init", "-e", "none", &s.url(&allowed.join("r1"))]).ok();
    }
    hoard(&s.env, &["init", "-e", "none", &s.url(&allowed.join("r2"))]).ok();
    // Escaping with .. is resolved before the check.
    let sneaky = format!("{}/../allowedx/r", allowed.display());
    let r = hoard(&s.env, &["init", "-e", "none", &s.url(Path::new(&sneaky))]).expect_code(2);
    assert!(
        r.stderr.contains("Repository path not allowed"),
        "{}",
        r.stderr
    );

    if borg_available() {
        // The same refusal from the real borg serve, as hoard reports it.
        s.env.set("BORG_RSH", &s.sshd.rsh_with("borg_key"));
        let r = hoard(&s.env, &["init", "-e", "none", &s.url(&outside)]).expect_code(2);
        assert_eq!(
            last_line(&r.stderr),
            format!("Repository path not allowed: {}", outside.display())
        );
        hoard(&s.env, &["init", "-e", "none", &s.url(&allowed.join("r3"))]).ok();
        hoard(&s.env, &["check", &s.url(&allowed.join("r3"))]).ok();
    }

    s.env.set("BORG_RSH", &s.sshd.rsh_with("repo_key"));
    hoard(&s.env, &["init", "-e", "none", &s.url(&only_repo)]).ok();
    let r = hoard(&s.env, &["info", &s.url(&allowed.join("r2"))]).expect_code(2);
    assert!(
        r.stderr.contains("Repository path not allowed"),
        "{}",
        r.stderr
    );
}

#[test]
fn append_only_serve_keeps_deleted_data() {
    if !borg_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("repo");
    let bin = hoard_bin().to_string_lossy().into_owned();
    let Some(mut s) = Setup::new(&[("ao_key", &format!("{bin} serve --append-only"))]) else {
        return;
    };
    let url = s.url(&repo);
    let src = s.src_tree();
    borg(&s.env, &["init", "-e", "none", &url]).ok();
    for a in ["a1", "a2"] {
        let mut c = command(&s.env, Path::new("borg"));
        c.args(["create", &format!("{url}::{a}"), "."])
            .current_dir(&src);
        run(c).ok();
        std::fs::write(src.join(a), a).expect("w");
    }
    let before = segments(&repo);
    s.env.set("BORG_RSH", &s.sshd.rsh_with("ao_key"));
    borg(&s.env, &["delete", &format!("{url}::a1")]).ok();
    borg(&s.env, &["compact", &url]).ok();
    let after = segments(&repo);
    for seg in &before {
        assert!(after.contains(seg), "segment {} was removed", seg.display());
    }
    assert!(repo.join("transactions").is_file(), "no transactions log");
    assert!(!std::fs::read_to_string(repo.join("config"))
        .unwrap()
        .contains("append_only = 1"));
    assert_eq!(borg(&s.env, &["list", "--short", &url]).ok().out(), "a2\n");
    // Roll back: drop everything written after the last pre-delete segment.
    for seg in after.iter().filter(|p| !before.contains(p)) {
        std::fs::remove_file(seg).expect("rm");
    }
    for e in std::fs::read_dir(&repo).expect("ls").flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("index.") || n.starts_with("hints.") || n.starts_with("integrity.") {
            std::fs::remove_file(e.path()).expect("rm");
        }
    }
    // borg rebuilds the index from the remaining segments: both archives are back.
    // (A fresh client: the old one's cache and security dir know the newer manifest.)
    let fresh = Env::new();
    let listed = borg(&fresh, &["list", "--short", &repo.to_string_lossy()]).ok();
    assert_eq!(listed.out(), "a1\na2\n");
    borg(&fresh, &["check", &repo.to_string_lossy()]).ok();
}

/// The pid of a child of `parent` whose command name is `name`.
fn child_pid(parent: u32, name: &str) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[stat.find('(').map(|i| i + 1).unwrap_or(0)..close].to_string();
        let ppid: u32 = stat[close + 2..]
            .split(' ')
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        if ppid == parent && comm == name {
            return Some(pid);
        }
    }
    None
}

fn dir_size(p: &Path) -> u64 {
    segments(p)
        .iter()
        .filter_map(|s| std::fs::metadata(s).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn killed_ssh_during_borg_create_leaves_last_commit() {
    if !borg_available() {
        return;
    }
    let Some(s) = Setup::new(&[]) else { return };
    let repo = s.env.path().join("repo");
    let url = s.url(&repo);
    let src = s.src_tree();
    borg(&s.env, &["init", "-e", "none", &url]).ok();
    let mut c = command(&s.env, Path::new("borg"));
    c.args(["create", &format!("{url}::first"), "."])
        .current_dir(&src);
    run(c).ok();
    let committed = dir_size(&repo);
    // A larger input so that the second create is still running when the link dies.
    let big = s.env.path().join("big");
    std::fs::create_dir_all(&big).expect("big");
    for i in 0..8 {
        std::fs::write(
            big.join(format!("f{i}")),
            common::tree::pseudo_random(8_000_000, i),
        )
        .expect("w");
    }
    let mut c = command(&s.env, Path::new("borg"));
    c.args([
        "create",
        "--compression",
        "none",
        &format!("{url}::second"),
        ".",
    ])
    .current_dir(&big)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("borg create");
    kill_ssh_once_repo_grows(&mut child, &repo, committed);
    let out = child.wait_with_output().expect("wait");
    assert_ne!(out.status.code(), Some(0));
    // The server notices the closed connection, drops the transaction and releases the lock.
    let mut c = command(&s.env, Path::new("borg"));
    c.args(["--lock-wait", "30", "create", &format!("{url}::third"), "."])
        .current_dir(&src);
    run(c).ok();
    assert_eq!(
        borg(&s.env, &["list", "--short", &url]).ok().out(),
        "first\nthird\n"
    );
    borg(&s.env, &["check", &repo.to_string_lossy()]).ok();
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Waits until the repository has grown by 2 MB past `committed` (a create is writing), then
/// SIGKILLs the create's ssh child. Fails if the create finishes first.
fn kill_ssh_once_repo_grows(child: &mut std::process::Child, repo: &Path, committed: u64) {
    let deadline = Instant::now() + HANG_LIMIT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if dir_size(repo) > committed + 2_000_000 {
            if let Some(pid) = child_pid(child.id(), "ssh") {
                unsafe {
                    libc_kill(pid, 9);
                }
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("create finished before the ssh process could be killed");
}

/// How long a client may take to give up on a dead or silent peer before the test calls it a
/// hang. Generous on purpose: these guards catch clients that never return, they do not
/// measure speed.
const HANG_LIMIT: Duration = Duration::from_secs(120);

/// Runs hoard and fails if it does not return within [`HANG_LIMIT`].
fn timed(env: &Env, args: &[&str]) -> Run {
    let start = Instant::now();
    let r = hoard(env, args);
    assert!(
        start.elapsed() < HANG_LIMIT,
        "hoard {args:?} took {:?}",
        start.elapsed()
    );
    r
}

#[test]
fn bad_servers_give_one_clear_error() {
    let Some(mut s) = Setup::new(&[]) else { return };
    let repo = s.env.path().join("repo");
    // Nothing listens on this port.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dead = format!(
        "ssh://{}@127.0.0.1:{dead_port}{}",
        s.sshd.user,
        repo.display()
    );
    let r = timed(&s.env, &["info", &dead]).expect_code(2);
    assert_eq!(
        last_line(&r.stderr),
        "Connection closed by remote host. Is borg working on the server?"
    );
    assert!(r.stderr.contains("Connection refused"), "{}", r.stderr);

    let url = s.url(&repo);
    let r = timed(&s.env, &["--remote-path", "/nonexistent", "info", &url]).expect_code(2);
    assert_eq!(
        last_line(&r.stderr),
        "Connection closed by remote host. Is borg working on the server?"
    );
    assert!(
        r.stderr.contains("Remote: ") && r.stderr.contains("/nonexistent"),
        "{}",
        r.stderr
    );

    // A "server" that prints junk and then stays silent.
    let fake = s.env.path().join("junk-ssh");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Welcome to the machine!'\nexec sleep 60\n",
    )
    .expect("w");
    set_exec(&fake);
    s.env.set("BORG_RSH", &fake.to_string_lossy());
    let r = timed(&s.env, &["info", &url]).expect_code(2);
    common::assert_one_line_error(&r.stderr, "Got unexpected RPC data format from server");

    // A "server" that sends an invalid msgpack byte, and one that just exits.
    std::fs::write(&fake, "#!/bin/sh\nprintf '\\301\\301'\nexec sleep 60\n").expect("w");
    let r = timed(&s.env, &["info", &url]).expect_code(2);
    common::assert_one_line_error(
        &r.stderr,
        "Got unexpected RPC data format from server: C1 C1",
    );
    // One that exits but leaves a process holding the pipes open.
    std::fs::write(&fake, "#!/bin/sh\nsleep 40 &\nexit 0\n").expect("w");
    let r = timed(&s.env, &["info", &url]).expect_code(2);
    common::assert_one_line_error(
        &r.stderr,
        "Connection closed by remote host. Is borg working on the server?",
    );
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").expect("w");
    let r = timed(&s.env, &["info", &url]).expect_code(2);
    common::assert_one_line_error(
        &r.stderr,
        "Connection closed by remote host. Is borg working on the server?",
    );
}

fn set_exec(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn library_client_pipelines_puts_and_gets() {
    use hoard::location::Location;
    use hoard::repo::remote::{self, RemoteOpenOptions, RemoteRepository};
    use hoard::repo::{RepoError, Repository};
    let Some(s) = Setup::new(&[]) else { return };
    let copts = remote::ClientOptions {
        rsh: Some(s.sshd.rsh()),
        remote_path: Some(hoard_bin().to_string_lossy().into_owned()),
        ..remote::ClientOptions::default()
    };
    let path = s.env.path().join("librepo");
    let loc = Location::parse(Some(&s.url(&path)), None).expect("location");
    let mut repo = RemoteRepository::open_with(
        &loc,
        &RemoteOpenOptions {
            create: true,
            exclusive: true,
            ..RemoteOpenOptions::default()
        },
        &copts,
    )
    .expect("create");
    let ids: Vec<[u8; 32]> = (0..500u32)
        .map(|i| {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id[31] = 1;
            id
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        repo.put(id, &vec![i as u8; 1000 + i]).expect("put");
    }
    repo.commit(false, 0.1).expect("commit");
    assert_eq!(repo.len().expect("len"), 500);
    let got = repo.get_many(&ids).expect("get_many");
    for (i, data) in got.iter().enumerate() {
        assert_eq!(data, &vec![i as u8; 1000 + i]);
    }
    let listed = repo.list(None, None).expect("list");
    assert_eq!(listed.len(), 500);
    // A missing id in the middle fails the batch, and the connection stays usable.
    let mut with_missing = ids[..150].to_vec();
    with_missing[75] = [9u8; 32];
    match repo.get_many(&with_missing) {
        Err(RepoError::ObjectNotFound(hex_id, _)) => assert_eq!(hex_id, "09".repeat(32)),
        other => panic!("expected ObjectNotFound, got {:?}", other.map(|v| v.len())),
    }
    assert!(!repo.contains(&[9u8; 32]).expect("contains"));
    assert_eq!(repo.get(&ids[3]).expect("get"), vec![3u8; 1003]);
    // An async delete of a missing object is reported by the next flush.
    repo.delete(&[7u8; 32]).expect("queued");
    match repo.flush() {
        Err(RepoError::ObjectNotFound(..)) => {}
        other => panic!("expected ObjectNotFound, got {other:?}"),
    }
    // Uncommitted puts vanish with the connection.
    repo.put(&[5u8; 32], b"uncommitted").expect("put");
    repo.flush().expect("flush");
    drop(repo);
    let mut repo =
        RemoteRepository::open_with(&loc, &RemoteOpenOptions::default(), &copts).expect("open");
    assert_eq!(repo.len().expect("len"), 500);
    assert!(!repo.contains(&[5u8; 32]).expect("contains"));
    // Server-side exceptions without a local class arrive as one-line remote errors.
    match repo.get_free_nonce() {
        Err(RepoError::Remote { class, message }) => {
            assert_eq!(class, "AssertionError");
            assert_eq!(
                message,
                "AssertionError: bug in code, exclusive lock should exist here"
            );
        }
        other => panic!("expected an AssertionError, got {other:?}"),
    }
    assert_eq!(repo.len().expect("len"), 500);
}

#[test]
fn killed_ssh_during_hoard_writes_against_borg_serve() {
    use hoard::location::Location;
    use hoard::repo::remote::{self, RemoteOpenOptions, RemoteRepository};
    use hoard::repo::{RepoError, Repository};
    if !borg_available() {
        return;
    }
    let Some(s) = Setup::new(&[]) else { return };
    let path = s.env.path().join("repo");
    borg(&s.env, &["init", "-e", "none", &path.to_string_lossy()]).ok();
    let before = borg(&s.env, &["list", "--short", &path.to_string_lossy()]).ok();
    assert_eq!(before.out(), "");
    let copts = remote::ClientOptions {
        rsh: Some(s.sshd.rsh()),
        remote_path: Some("borg".into()),
        ..remote::ClientOptions::default()
    };
    let loc = Location::parse(Some(&s.url(&path)), None).expect("location");
    let exclusive = RemoteOpenOptions {
        exclusive: true,
        lock_wait: Some(30.0),
        ..RemoteOpenOptions::default()
    };
    let mut repo = RemoteRepository::open_with(&loc, &exclusive, &copts).expect("open");
    let committed = repo.len().expect("len");
    for i in 0..200u32 {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_be_bytes());
        id[31] = 0xee;
        repo.put(&id, &common::tree::pseudo_random(20_000, u64::from(i)))
            .expect("put");
    }
    repo.flush().expect("flush");
    let pid = repo.child_id().expect("ssh pid");
    unsafe {
        libc_kill(pid as i32, 9);
    }
    let start = Instant::now();
    match repo.commit(false, 0.1) {
        Err(RepoError::ConnectionClosed(_)) => {}
        other => panic!("expected a closed connection, got {other:?}"),
    }
    // A hang guard, not a speed claim: the client must notice the dead connection at all.
    assert!(start.elapsed() < HANG_LIMIT, "commit hung after the kill");
    // Every later call reports the same, at once.
    assert!(matches!(repo.len(), Err(RepoError::ConnectionClosed(_))));
    drop(repo);
    // borg serve drops the transaction and releases the lock; the repository is as before.
    let mut repo = RemoteRepository::open_with(&loc, &exclusive, &copts).expect("reopen");
    assert_eq!(repo.len().expect("len"), committed);
    drop(repo);
    borg(&s.env, &["check", &path.to_string_lossy()]).ok();
}

#[test]
fn killed_ssh_during_hoard_create_against_borg_serve() {
    if !borg_available() {
        return;
    }
    let Some(mut s) = Setup::new(&[]) else { return };
    s.env.set("BORG_REMOTE_PATH", "borg");
    let repo = s.env.path().join("repo");
    let url = s.url(&repo);
    s.src_tree();
    hoard(&s.env, &["init", "-e", "repokey", &url]).ok();
    hoard(&s.env, &["create", &format!("{url}::first"), "src"]).ok();
    let committed = dir_size(&repo);
    let big = s.env.path().join("big");
    std::fs::create_dir_all(&big).expect("big");
    for i in 0..8 {
        std::fs::write(
            big.join(format!("f{i}")),
            common::tree::pseudo_random(8_000_000, i),
        )
        .expect("w");
    }
    let mut c = command(&s.env, hoard_bin());
    c.args([
        "create",
        "--compression",
        "none",
        &format!("{url}::second"),
        "big",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("hoard create");
    kill_ssh_once_repo_grows(&mut child, &repo, committed);
    let start = Instant::now();
    let out = child.wait_with_output().expect("wait");
    assert!(start.elapsed() < HANG_LIMIT, "client hung after the kill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Connection closed by remote host"),
        "{stderr}"
    );
    hoard(
        &s.env,
        &[
            "--lock-wait",
            "30",
            "create",
            &format!("{url}::third"),
            "src",
        ],
    )
    .ok();
    assert_eq!(
        hoard(&s.env, &["list", "--short", &url]).ok().out(),
        "first\nthird\n"
    );
    borg(&s.env, &["check", "--verify-data", &repo.to_string_lossy()]).ok();
}

#[test]
fn hoard_client_against_borg14_serve() {
    let Some(b14) = borg14() else { return };
    let b14s = b14.to_string_lossy().into_owned();
    let Some(mut s) = Setup::new(&[]) else { return };
    // No BORG_REMOTE_PATH: --remote-path alone must pick the server program.
    s.env.vars.retain(|(k, _)| k != "BORG_REMOTE_PATH");
    let rp = ["--remote-path", b14s.as_str()];
    let h = |s: &Setup, args: &[&str]| -> Run {
        let mut all: Vec<&str> = vec![args[0]];
        all.extend_from_slice(&rp);
        all.extend_from_slice(&args[1..]);
        hoard(&s.env, &all)
    };
    let repo = s.env.path().join("repo");
    let url = s.url(&repo);
    h(&s, &["init", "-e", "repokey", &url]).ok();
    assert!(repo.join("config").is_file());
    let src = s.src_tree();
    h(&s, &["create", &format!("{url}::a1"), "src"]).ok();
    std::fs::write(src.join("later.txt"), "second archive\n").expect("w");
    h(&s, &["create", &format!("{url}::a2"), "src"]).ok();
    assert_eq!(h(&s, &["list", "--short", &url]).ok().out(), "a1\na2\n");
    let files = h(&s, &["list", "--short", &format!("{url}::a2")]).ok();
    assert!(files.out().contains("src/later.txt"), "{}", files.out());
    let out = s.env.path().join("out");
    std::fs::create_dir_all(&out).expect("out");
    let mut c = command(&s.env, hoard_bin());
    c.args(["extract", "--remote-path", &b14s, &format!("{url}::a2")])
        .current_dir(&out);
    run(c).ok();
    common::tree::assert_same_tree(&src, &out.join("src"));
    // The server really is borg 1.4 (the version it reported in the negotiation).
    let dbg = h(&s, &["info", "--debug", &url]).ok();
    assert!(
        dbg.stderr.contains("Remote server version: 1.4."),
        "{}",
        dbg.stderr
    );
    let check = h(&s, &["check", "-v", "--repository-only", &url]).ok();
    assert!(
        check
            .stderr
            .contains("Remote: Finished full repository check, no problems found."),
        "{}",
        check.stderr
    );
    // Both borg versions agree the repository is good before the maintenance commands.
    with_program(
        &s.env,
        &b14,
        &["check", "--verify-data", &repo.to_string_lossy()],
    )
    .ok();
    s.env.set("BORG_REMOTE_PATH", &b14s);
    let local: Vec<&Path> = if borg_available() {
        vec![Path::new("borg"), b14.as_path()]
    } else {
        vec![b14.as_path()]
    };
    prune_compact_check(&s, &repo, &url, &src, &local);
}

#[test]
fn borg14_client_against_hoard_serve() {
    let Some(b14) = borg14() else { return };
    let Some(s) = Setup::new(&[]) else { return };
    let repo = s.env.path().join("repo");
    let url = s.url(&repo);
    let src = s.src_tree();
    let b = |args: &[&str]| with_program(&s.env, &b14, args);
    b(&["init", "-e", "repokey", &url]).ok();
    assert!(repo.join("config").is_file());
    for a in ["a1", "a2", "a3"] {
        let mut c = command(&s.env, &b14);
        c.args(["create", "--stats", &format!("{url}::{a}"), "."])
            .current_dir(&src);
        run(c).ok();
        std::fs::write(src.join(format!("new-{a}")), a).expect("w");
    }
    assert_eq!(b(&["list", "--short", &url]).ok().out(), "a1\na2\na3\n");
    let files = b(&["list", "--short", &format!("{url}::a2")]).ok();
    assert!(
        files.out().contains("sub/b.bin") && files.out().contains("new-a1"),
        "{}",
        files.out()
    );
    let out = s.env.path().join("out");
    std::fs::create_dir_all(&out).expect("out");
    let mut c = command(&s.env, &b14);
    c.args(["extract", &format!("{url}::a1")]).current_dir(&out);
    run(c).ok();
    for f in ["a.txt", "sub/b.bin", "sub/c"] {
        assert_eq!(
            std::fs::read(out.join(f)).expect("extracted"),
            std::fs::read(src.join(f)).expect("src"),
            "{f}"
        );
    }
    assert!(!out.join("new-a1").exists());
    b(&["prune", "--keep-last", "1", &url]).ok();
    b(&["compact", &url]).ok();
    let check = b(&["check", "-v", &url]).ok();
    assert!(
        check
            .stderr
            .contains("Remote: Finished full repository check, no problems found.")
            && check
                .stderr
                .contains("Archive consistency check complete, no problems found."),
        "{}",
        check.stderr
    );
    assert_eq!(b(&["list", "--short", &url]).ok().out(), "a3\n");
    // A request hoard serve refuses reaches borg 1.4's client as the error it rebuilds.
    let missing = s.url(&s.env.path().join("nope"));
    let r = b(&["list", &missing]).expect_code(2);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    b(&["check", "--verify-data", &repo.to_string_lossy()]).ok();
    if borg_available() {
        borg(&s.env, &["check", "--verify-data", &repo.to_string_lossy()]).ok();
    }
    // hoard reads what borg 1.4 wrote, over the same server.
    assert_eq!(hoard(&s.env, &["list", "--short", &url]).ok().out(), "a3\n");
    hoard(&s.env, &["check", "--verify-data", &url]).ok();
}

#[test]
fn upload_buffer_queues_writes_and_reports_a_killed_connection() {
    use hoard::location::Location;
    use hoard::repo::remote::{self, RemoteOpenOptions, RemoteRepository};
    use hoard::repo::{RepoError, Repository};
    let Some(s) = Setup::new(&[]) else { return };
    let copts = remote::ClientOptions {
        rsh: Some(s.sshd.rsh()),
        remote_path: Some(hoard_bin().to_string_lossy().into_owned()),
        upload_buffer: 1,
        ..remote::ClientOptions::default()
    };
    let path = s.env.path().join("bufrepo");
    let loc = Location::parse(Some(&s.url(&path)), None).expect("location");
    let exclusive = RemoteOpenOptions {
        exclusive: true,
        lock_wait: Some(30.0),
        ..RemoteOpenOptions::default()
    };
    let create = RemoteOpenOptions {
        create: true,
        ..exclusive.clone()
    };
    let id_of = |i: u32| {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_be_bytes());
        id[31] = 0xb0;
        id
    };
    let data_of = |i: u32| common::tree::pseudo_random(20_000, 1000 + u64::from(i));
    let mut repo = RemoteRepository::open_with(&loc, &create, &copts).expect("create");
    for i in 0..300 {
        repo.put(&id_of(i), &data_of(i)).expect("put");
    }
    repo.commit(false, 0.1).expect("commit");
    // Closing drains the queue: a fresh unbuffered connection sees everything.
    drop(repo);
    let plain = remote::ClientOptions {
        upload_buffer: 0,
        ..copts.clone()
    };
    let mut repo = RemoteRepository::open_with(&loc, &exclusive, &plain).expect("open");
    assert_eq!(repo.len().expect("len"), 300);
    let ids: Vec<[u8; 32]> = (0..300).map(id_of).collect();
    for (i, data) in repo.get_many(&ids).expect("get_many").iter().enumerate() {
        assert_eq!(data, &data_of(i as u32), "object {i}");
    }
    drop(repo);
    // Queued writes on a killed connection end in one ConnectionClosed, never a hang or Ok.
    let mut repo = RemoteRepository::open_with(&loc, &exclusive, &copts).expect("open");
    for i in 300..400 {
        repo.put(&id_of(i), &data_of(i)).expect("put");
    }
    let pid = repo.child_id().expect("ssh pid");
    unsafe {
        libc_kill(pid as i32, 9);
    }
    let mut failed = None;
    for i in 400..1400 {
        if let Err(e) = repo.put(&id_of(i), &data_of(i)) {
            failed = Some(e);
            break;
        }
    }
    let err = match failed {
        Some(e) => e,
        None => repo.commit(false, 0.1).expect_err("commit after kill"),
    };
    assert!(matches!(err, RepoError::ConnectionClosed(_)), "{err:?}");
    assert!(matches!(repo.len(), Err(RepoError::ConnectionClosed(_))));
    drop(repo);
    let mut repo = RemoteRepository::open_with(&loc, &exclusive, &plain).expect("reopen");
    assert_eq!(repo.len().expect("len"), 300);
}
