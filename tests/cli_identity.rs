//! hoard's identity on the command line: `--version` in the form frontends parse (Pika
//! Backup, borgmatic), `version [REPO]` against borg 1.2.4's, borg 1.4.5's and hoard's own
//! `serve`, and `help` / no-argument behaviour as borg 1.4.5's.

mod common;

use std::path::Path;

use common::{borg14, borg_available, Env};

/// Pika Backup's check (pika-backup `init_check_borg`): the second word of the first line of
/// `borg --log-json --version`, split into three numbers, must be at least 1.4.0 and its
/// major.minor at most 1.4.
fn pika_accepts(version_output: &str) -> Result<Vec<u32>, String> {
    let word = version_output
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or("no second word")?;
    let v: Vec<u32> = word
        .splitn(3, '.')
        .map(str::parse::<u32>)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{word}: {e}"))?;
    if v[..] < [1, 4, 0][..] {
        return Err(format!("{word} is too old"));
    }
    if v[..2] > [1, 4][..] {
        return Err(format!("{word} is too new"));
    }
    Ok(v)
}

/// borgmatic's `local_borg_version`: `output.split(' ')[1].strip()` of `borg --version`.
fn borgmatic_version(version_output: &str) -> Option<String> {
    version_output
        .split(' ')
        .nth(1)
        .map(|w| w.trim().to_string())
}

#[test]
fn version_is_borg_145_then_hoard() {
    let env = Env::new();
    let out = env.hoard(["--version"]).ok().out();
    let first = out.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("hoard 1.4.5 (hoard {})", env!("CARGO_PKG_VERSION"))
    );
    // Pika asks with --log-json first; the answer must not change.
    let pika_out = env.hoard(["--log-json", "--version"]).ok().out();
    assert_eq!(pika_accepts(&pika_out), Ok(vec![1, 4, 5]));
    assert_eq!(borgmatic_version(&out).as_deref(), Some("1.4.5"));
    // -V is the short form, as borg's
    assert_eq!(env.hoard(["-V"]).ok().out(), out);
    // and borg 1.4.5 itself passes the same two parsers
    if let Some(b14) = borg14() {
        let o = std::process::Command::new(b14)
            .arg("--version")
            .output()
            .expect("borg 1.4.5 --version");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(pika_accepts(&text), Ok(vec![1, 4, 5]));
        assert_eq!(borgmatic_version(&text).as_deref(), Some("1.4.5"));
    }
}

#[test]
fn pika_parser_refuses_what_it_should() {
    // the mimic itself: 1.2.4 (hoard's old answer) is refused, so the test above can fail
    assert!(pika_accepts("hoard 1.2.4 (hoard 0.1.0)").is_err());
    assert!(pika_accepts("borg 1.5.0").is_err());
    assert!(pika_accepts("hoard").is_err());
}

#[test]
fn show_version_logs_the_same_version() {
    let env = Env::new();
    let r = env
        .hoard(["--show-version", "version", "/nonexistent-repo"])
        .ok();
    assert!(
        r.stderr.contains(&format!(
            "borgbackup version 1.4.5 (hoard {})",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn placeholders_report_borg_145() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo_s = repo.to_string_lossy().into_owned();
    env.hoard(["init", "-e", "none", &repo_s]).ok();
    std::fs::write(env.path().join("f"), b"x").expect("write");
    env.hoard([
        "create",
        &format!("{repo_s}::{{borgversion}}-{{borgminor}}-{{borgmajor}}-{{borgpatch}}"),
        "f",
    ])
    .ok();
    let list = env.hoard(["list", "--short", &repo_s]).ok().out();
    assert_eq!(list, "1.4.5-1.4-1-1.4.5\n");
}

/// `version ssh://localhost/REPO` with `--remote-path server`.
fn version_against(env: &Env, repo: &Path, server: &str) -> common::Run {
    env.hoard([
        "version",
        "--remote-path",
        server,
        &format!("ssh://localhost{}", repo.display()),
    ])
}

#[test]
fn version_reports_client_and_server() {
    let mut env = Env::new();
    let rsh = common::local_rsh(&env);
    env.set("BORG_RSH", &rsh.to_string_lossy());
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "none", &repo.to_string_lossy()])
        .ok();
    // a local repository: the client is its own server (borg does not even open it)
    assert_eq!(
        env.hoard(["version", &repo.to_string_lossy()]).ok().out(),
        "1.4.5 / 1.4.5\n"
    );
    assert_eq!(
        env.hoard(["version", "/does/not/exist"]).ok().out(),
        "1.4.5 / 1.4.5\n"
    );
    // hoard's own serve
    let hoard_bin = env!("CARGO_BIN_EXE_hoard");
    assert_eq!(
        version_against(&env, &repo, hoard_bin).ok().out(),
        "1.4.5 / 1.4.5\n"
    );
    // borg 1.2.4's serve announces 1.2.4
    if borg_available() {
        assert_eq!(
            version_against(&env, &repo, "borg").ok().out(),
            "1.4.5 / 1.2.4\n"
        );
        // and a borg 1.2.4 client accepts hoard's serve (which says 1.4.5) as before
        let borg12 = env
            .borg([
                "list",
                "--remote-path",
                hoard_bin,
                &format!("ssh://localhost{}", repo.display()),
            ])
            .ok();
        assert_eq!(borg12.out(), "");
    }
    if let Some(b14) = borg14() {
        let b14s = b14.to_string_lossy().into_owned();
        assert_eq!(
            version_against(&env, &repo, &b14s).ok().out(),
            "1.4.5 / 1.4.5\n"
        );
        // borg 1.4.5's own `version` sees hoard's serve as 1.4.5
        let out = env
            .command_for(&b14s)
            .args([
                "version",
                "--remote-path",
                hoard_bin,
                &format!("ssh://localhost{}", repo.display()),
            ])
            .output()
            .expect("borg 1.4.5 version");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1.4.5 / 1.4.5\n");
    }
}

#[test]
fn version_without_repository_is_an_error_as_in_borg() {
    let env = Env::new();
    let r = env.hoard(["version"]).expect_code(2);
    assert!(r.out().is_empty());
}

#[test]
fn no_arguments_and_dash_h_print_help_and_succeed() {
    let env = Env::new();
    let none = env.hoard(Vec::<&str>::new()).ok();
    assert!(none.out().contains("Usage:"), "{}", none.out());
    assert!(none.out().contains("create"), "{}", none.out());
    let h = env.hoard(["-h"]).ok();
    assert!(h.out().contains("Usage:"));
}

#[test]
fn help_topics_and_command_parts() {
    let env = Env::new();
    assert!(env.hoard(["help"]).ok().out().contains("Borg"));
    for (topic, needle) in [
        ("patterns", "Path full-match, selector pf:"),
        ("placeholders", "{reverse-fqdn}"),
        ("compression", "obfuscate,SPEC,C[,L]"),
    ] {
        let out = env.hoard(["help", topic]).ok().out();
        assert!(out.contains(needle), "help {topic}:\n{out}");
    }
    let init = env.hoard(["help", "init"]).ok().out();
    assert!(init.contains("Initialize"), "{init}");
    let epilog = env.hoard(["help", "init", "--epilog-only"]).ok().out();
    assert!(!epilog.contains("Usage:"), "{epilog}");
    assert!(!epilog.contains("REPOSITORY"), "{epilog}");
    let usage = env.hoard(["help", "init", "--usage-only"]).ok().out();
    assert!(usage.contains("Usage:"), "{usage}");
    let bad = env.hoard(["help", "nonsense"]).expect_code(2);
    assert!(
        bad.stderr.contains("No help available on nonsense."),
        "{}",
        bad.stderr
    );
    assert!(bad
        .stderr
        .contains("Topics: compression, patterns, placeholders"));
}

#[test]
fn common_options_are_listed_apart() {
    let env = Env::new();
    let out = env.hoard(["init", "--help"]).ok().out();
    let common_at = out
        .find("Common options:")
        .expect("a Common options section");
    let own = out.find("--encryption").expect("--encryption listed");
    let lock_wait = out.find("--lock-wait").expect("--lock-wait listed");
    assert!(own < common_at && common_at < lock_wait, "{out}");
}
