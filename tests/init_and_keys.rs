//! `init` and keys across programs: repositories and keys made by hoard work in borg and the
//! other way round (every encryption mode, key export/import, paper keys, passphrase changes,
//! `BORG_PASSCOMMAND` and `BORG_PASSPHRASE_FD`).

mod common;

use common::{borg_available, Env};

const MODES: [&str; 7] = [
    "none",
    "authenticated",
    "authenticated-blake2",
    "repokey",
    "keyfile",
    "repokey-blake2",
    "keyfile-blake2",
];

#[test]
fn hoard_init_is_accepted_by_borg_in_every_mode() {
    if !borg_available() {
        return;
    }
    for mode in MODES {
        let env = Env::new();
        let repo = env.path().join(format!("repo-{mode}"));
        let r = env.hoard(["init", "-e", mode, repo.to_str().unwrap()]);
        assert_eq!(r.code, 0, "hoard init -e {mode}: {}", r.stderr);
        let info = env.borg(["info", "--json", repo.to_str().unwrap()]).ok();
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(v["encryption"]["mode"], mode, "borg sees the mode");
        env.borg(["check", repo.to_str().unwrap()]).ok();
        // borg can add an archive, and check stays clean
        std::fs::write(env.path().join("file.txt"), b"some data\n").unwrap();
        env.borg(["create", &format!("{}::first", repo.display()), "file.txt"])
            .ok();
        env.borg(["check", "--verify-data", repo.to_str().unwrap()])
            .ok();
        // hoard still opens it after borg wrote to it
        env.hoard(["info", repo.to_str().unwrap()]).ok();
        env.hoard(["check", "--repository-only", repo.to_str().unwrap()])
            .ok();
    }
}

#[test]
fn borg_init_is_read_by_hoard_in_every_mode() {
    if !borg_available() {
        return;
    }
    for mode in MODES {
        let env = Env::new();
        let repo = env.path().join(format!("repo-{mode}"));
        env.borg(["init", "-e", mode, repo.to_str().unwrap()]).ok();
        let borg_json: serde_json::Value = serde_json::from_slice(
            &env.borg(["info", "--json", repo.to_str().unwrap()])
                .ok()
                .stdout,
        )
        .unwrap();
        let hoard_json: serde_json::Value = serde_json::from_slice(
            &env.hoard(["info", "--json", repo.to_str().unwrap()])
                .ok()
                .stdout,
        )
        .unwrap();
        assert_eq!(
            hoard_json["repository"]["id"],
            borg_json["repository"]["id"]
        );
        assert_eq!(
            hoard_json["repository"]["location"],
            borg_json["repository"]["location"]
        );
        assert_eq!(hoard_json["encryption"], borg_json["encryption"], "{mode}");
        assert_eq!(hoard_json["security_dir"], borg_json["security_dir"]);
        assert_eq!(hoard_json["cache"]["path"], borg_json["cache"]["path"]);
        let r = env
            .hoard(["check", "--repository-only", repo.to_str().unwrap()])
            .ok();
        assert!(r.stderr.is_empty(), "quiet check: {}", r.stderr);
    }
}

#[test]
fn info_text_matches_borg_layout() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.borg_init_repo("r", "keyfile");
    let b = env.borg(["info", repo.to_str().unwrap()]).ok().out();
    let h = env.hoard(["info", repo.to_str().unwrap()]).ok().out();
    assert_eq!(h, b);
}

#[test]
fn every_vector_repository_opens_and_checks() {
    for name in common::VECTORS {
        let (env, repo) = common::vector_env(name);
        let r = env.hoard(["info", "--json", repo.to_str().unwrap()]).ok();
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["repository"]["location"], repo.to_str().unwrap());
        env.hoard(["check", "--repository-only", repo.to_str().unwrap()])
            .ok();
    }
}

#[test]
fn key_export_and_import_interoperate_with_borg() {
    if !borg_available() {
        return;
    }
    for mode in ["repokey", "keyfile", "repokey-blake2", "keyfile-blake2"] {
        let env = Env::new();
        let repo = env.path().join("r");
        let r = repo.to_str().unwrap();
        env.borg(["init", "-e", mode, r]).ok();
        // hoard's export equals borg's byte for byte (key file and paper formats)
        for flags in [&[][..], &["--paper"][..]] {
            let mut a = vec!["key", "export"];
            a.extend_from_slice(flags);
            a.push(r);
            let b = env.borg(&a).ok().stdout;
            let h = env.hoard(&a).ok().stdout;
            assert_eq!(
                String::from_utf8_lossy(&h),
                String::from_utf8_lossy(&b),
                "{mode} export {flags:?}"
            );
        }
        // --qr-html: our own page (borg's template is not ours to copy) carrying the key text
        let keytext = env.hoard(["key", "export", r]).ok().out();
        let html = env.hoard(["key", "export", "--qr-html", r]).ok().out();
        // the form borg's test_key_export_qr checks (borg's template starts in lower case)
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.ends_with("</html>\n"));
        assert!(
            html.contains(keytext.trim_end()),
            "{mode}: key text in the page"
        );
        assert!(html.contains("<svg"), "{mode}: QR code in the page");
        // hoard's export imports into borg after the key is lost
        let exported = env.path().join("exported.key");
        env.hoard(["key", "export", r, exported.to_str().unwrap()])
            .ok();
        lose_key(&env, &repo, mode);
        assert_ne!(env.borg(["info", r]).code, 0, "{mode}: key really gone");
        env.borg(["key", "import", r, exported.to_str().unwrap()])
            .ok();
        env.borg(["info", r]).ok();
        // borg's export imports into hoard
        let exported2 = env.path().join("exported2.key");
        env.borg(["key", "export", r, exported2.to_str().unwrap()])
            .ok();
        lose_key(&env, &repo, mode);
        env.hoard(["key", "import", r, exported2.to_str().unwrap()])
            .ok();
        env.borg(["info", r]).ok();
        env.hoard(["info", r]).ok();
    }
}

/// Removes the key of a repository (the key file, or the `key` line of `config`).
fn lose_key(env: &Env, repo: &std::path::Path, mode: &str) {
    if mode.starts_with("keyfile") {
        let keys = env.base().join(".config/borg/keys");
        for e in std::fs::read_dir(&keys).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    } else {
        let cfg = std::fs::read_to_string(repo.join("config")).unwrap();
        let mut out = String::new();
        let mut skipping = false;
        for line in cfg.lines() {
            if line.starts_with("key = ") {
                out.push_str("key = \n");
                skipping = true;
                continue;
            }
            if skipping && line.starts_with('\t') {
                continue;
            }
            skipping = false;
            out.push_str(line);
            out.push('\n');
        }
        std::fs::write(repo.join("config"), out).unwrap();
    }
}

#[test]
fn paper_key_import_round_trips() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.path().join("r");
    let r = repo.to_str().unwrap();
    env.borg(["init", "-e", "repokey", r]).ok();
    let paper = env.hoard(["key", "export", "--paper", r]).ok().out();
    // feed the id and data lines as typed input
    let typed: String = paper
        .lines()
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("id: ") {
                Some(rest.to_string())
            } else if l.len() > 4 && l.as_bytes()[2] == b':' {
                Some(l[4..].to_string())
            } else {
                None
            }
        })
        .map(|l| l + "\n")
        .collect();
    lose_key(&env, &repo, "repokey");
    let mut child = env
        .hoard_cmd()
        .args(["key", "import", "--paper", r])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(typed.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    env.borg(["info", r]).ok();
}

#[test]
fn change_passphrase_is_seen_by_borg() {
    if !borg_available() {
        return;
    }
    for mode in ["repokey", "keyfile-blake2"] {
        let mut env = Env::new();
        let repo = env.path().join("r");
        let r = repo.to_str().unwrap().to_string();
        env.hoard(["init", "-e", mode, &r]).ok();
        env.set("BORG_NEW_PASSPHRASE", "the-new-one");
        env.hoard(["key", "change-passphrase", &r]).ok();
        env.vars.retain(|(k, _)| k != "BORG_NEW_PASSPHRASE");
        let old = env.borg(["info", &r]);
        assert_eq!(old.code, 2, "old passphrase must fail: {}", old.stderr);
        assert!(old
            .stderr
            .contains("passphrase supplied in BORG_PASSPHRASE"));
        env.passphrase = Some("the-new-one".into());
        env.borg(["info", &r]).ok();
        env.hoard(["info", &r]).ok();
        // and the alias, back to the first one
        env.set("BORG_NEW_PASSPHRASE", "test-passphrase");
        env.hoard(["change-passphrase", &r]).ok();
        env.passphrase = Some("test-passphrase".into());
        env.vars.retain(|(k, _)| k != "BORG_NEW_PASSPHRASE");
        env.borg(["info", &r]).ok();
    }
}

#[test]
fn passcommand_and_passphrase_fd_are_used() {
    let mut env = Env::new();
    let repo = env.path().join("r");
    let r = repo.to_str().unwrap().to_string();
    env.hoard(["init", "-e", "repokey", &r]).ok();
    // multi-line passphrase file: only trailing newlines are stripped
    env.passphrase = None;
    let pwfile = env.path().join("pw");
    std::fs::write(&pwfile, "test-passphrase\n\n").unwrap();
    env.set("BORG_PASSCOMMAND", &format!("cat {}", pwfile.display()));
    env.hoard(["info", &r]).ok();
    std::fs::write(&pwfile, "wrong\n").unwrap();
    let bad = env.hoard(["info", &r]).expect_code(2);
    common::assert_one_line_error(&bad.stderr, "passphrase supplied in BORG_PASSPHRASE");
}
