//! borg 1.4.5 as the oracle for `upgrade --tam | --check-tam | --disable-tam` (and the legacy
//! `upgrade [-n] [--inplace] [--force]`), `compact --dry-run` and `diff --sort-by`: the same
//! repository state must give the same output and exit codes, and borg must see the state
//! hoard leaves as the one it leaves itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, Run};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn run_with(env: &Env, program: &Path, args: &[&str]) -> Run {
    let out = env
        .command_for(program.to_str().unwrap())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn hoard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hoard"))
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Runs `steps` (`true`: the program under test, `false`: borg 1.4.5) on the saved state,
/// restoring repository and base dir first; returns (code, stdout, stderr) per step.
fn sequence(
    env: &Env,
    program: &Path,
    b14: &Path,
    steps: &[(bool, Vec<String>)],
) -> Vec<(i32, String, String)> {
    let repo = env.path().join("repo");
    copy_dir(&env.path().join("repo.saved"), &repo);
    copy_dir(&env.path().join("base.saved"), &env.base());
    steps
        .iter()
        .map(|(under_test, args)| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = run_with(env, if *under_test { program } else { b14 }, &args);
            (r.code, r.out(), r.stderr)
        })
        .collect()
}

fn tam_steps(repo: &str) -> Vec<(bool, Vec<String>)> {
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (true, v(&["upgrade", "--check-tam", repo])),
        (true, v(&["upgrade", "--disable-tam", repo])),
        (false, v(&["upgrade", "--check-tam", repo])),
        (true, v(&["upgrade", "--check-tam", repo])),
        (true, v(&["upgrade", "--disable-tam", repo])),
        (false, v(&["list", "--short", repo])),
        (true, v(&["list", "--short", repo])),
        (true, v(&["upgrade", "--tam", repo])),
        (false, v(&["upgrade", "--check-tam", repo])),
        (true, v(&["upgrade", "--check-tam", repo])),
        (true, v(&["upgrade", "--tam", repo])),
        (true, v(&["upgrade", "--force", "--check-tam", repo])),
        (true, v(&["upgrade", "-n", repo])),
        (true, v(&["upgrade", "--inplace", "--force", repo])),
        (false, v(&["list", "--short", repo])),
    ]
}

fn tam_oracle(mode: &str) {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    let repo = env.path().join("repo");
    let data = env.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), b"contents").unwrap();
    run_with(&env, &b14, &["init", "-e", mode, &s(&repo)]).ok();
    run_with(
        &env,
        &b14,
        &["create", &format!("{}::a1", s(&repo)), "data"],
    )
    .ok();
    copy_dir(&repo, &env.path().join("repo.saved"));
    copy_dir(&env.base(), &env.path().join("base.saved"));
    let steps = tam_steps(&s(&repo));
    let want = sequence(&env, &b14, &b14, &steps);
    let got = sequence(&env, &hoard_bin(), &b14, &steps);
    for (i, ((w, g), step)) in want.iter().zip(&got).zip(&steps).enumerate() {
        assert_eq!(
            g,
            w,
            "step {i} ({} {:?}): hoard (left) differs from borg 1.4.5 (right)",
            if step.0 { "under test" } else { "borg 1.4.5" },
            step.1
        );
    }
    // the oracle itself: the sequence does see the switches
    assert_eq!(want[2].0, 1, "borg --check-tam after --disable-tam warns");
    assert!(want[7].1.contains("Manifest contents:"));
}

#[test]
fn upgrade_tam_switches_match_borg14_repokey() {
    tam_oracle("repokey");
}

#[test]
fn upgrade_tam_switches_match_borg14_keyfile() {
    tam_oracle("keyfile");
}

#[test]
fn compact_dry_run_changes_nothing_like_borg14() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    let repo = env.path().join("repo");
    let data = env.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), common::tree::pseudo_random(300_000, 7)).unwrap();
    run_with(&env, &b14, &["init", "-e", "repokey", &s(&repo)]).ok();
    run_with(
        &env,
        &b14,
        &["create", &format!("{}::a1", s(&repo)), "data"],
    )
    .ok();
    run_with(&env, &b14, &["delete", &format!("{}::a1", s(&repo))]).ok();
    let before = common::snapshot_dir(&repo);
    for program in [b14.clone(), hoard_bin()] {
        let r = run_with(&env, &program, &["compact", "--dry-run", &s(&repo)]).ok();
        assert_eq!((r.out(), r.stderr.as_str()), (String::new(), ""));
        let r = run_with(&env, &program, &["compact", "-n", "-v", &s(&repo)]).ok();
        assert_eq!(r.out(), "");
        assert!(
            common::snapshot_dir(&repo) == before,
            "{program:?} -n changed the repository"
        );
    }
    env.hoard(["compact", &s(&repo)]).ok();
    assert!(
        common::snapshot_dir(&repo) != before,
        "a real compact frees the deleted archive's space"
    );
    run_with(&env, &b14, &["check", &s(&repo)]).ok();
}

#[test]
fn diff_sort_by_orders_like_borg14() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    let repo = env.path().join("repo");
    let data = env.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let put = |name: &str, len: usize, seed: u64, mtime_s: i64| {
        let p = data.join(name);
        std::fs::write(&p, common::tree::pseudo_random(len, seed)).unwrap();
        common::tree::set_mtime_ns(&p, mtime_s * 1_000_000_000);
    };
    put("a", 100, 1, 1_000);
    put("b", 5_000, 2, 2_000);
    put("c", 300, 3, 3_000);
    put("d", 10, 4, 4_000);
    run_with(&env, &b14, &["init", "-e", "repokey", &s(&repo)]).ok();
    run_with(
        &env,
        &b14,
        &["create", &format!("{}::a1", s(&repo)), "data"],
    )
    .ok();
    put("a", 2_000, 11, 9_000);
    std::fs::remove_file(data.join("b")).unwrap();
    put("d", 20, 14, 500);
    put("e", 700, 15, 6_000);
    put("f", 50, 16, 7_000);
    // (a file rewritten with the same contents is left out: borg 1.4.5 hides its "+0 B -0 B"
    // content change, borg 1.2.4 and hoard show it; the diff_tar tests pin the 1.2.4 text)
    run_with(
        &env,
        &b14,
        &["create", &format!("{}::a2", s(&repo)), "data"],
    )
    .ok();
    let arch = format!("{}::a1", s(&repo));
    for spec in [
        "path",
        ">path",
        "size_added",
        ">size_added,path",
        "size_removed,>path",
        ">size_diff",
        "size",
        ">size,<path",
        "mtime",
        ">mtime_diff",
        "ctime_diff,path",
        "user,>path",
        "uid,gid,>group",
    ] {
        let args = ["diff", "--sort-by", spec, &arch, "a2"];
        let want = run_with(&env, &b14, &args);
        let got = env.hoard(args);
        assert_eq!(want.code, 0, "{}", want.stderr);
        assert_eq!(
            (got.code, got.out()),
            (want.code, want.out()),
            "--sort-by {spec}: {}",
            got.stderr
        );
    }
    let bad = ["diff", "--sort-by", "size,bogus", &arch, "a2"];
    let want = run_with(&env, &b14, &bad);
    let got = env.hoard(bad);
    assert_eq!((got.code, want.code), (2, 2));
    assert!(want.stderr.contains("unsupported sort field: bogus"));
    assert!(
        got.stderr.contains("unsupported sort field: bogus"),
        "{}",
        got.stderr
    );
}

fn repo_id(repo: &Path) -> String {
    let cfg = std::fs::read_to_string(repo.join("config")).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix("id = "))
        .unwrap()
        .trim()
        .to_string()
}

/// Names (relative paths) of everything below `dir`, sorted, with the link count of each file.
fn tree_links(dir: &Path) -> Vec<(String, Option<u64>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = s(p.strip_prefix(dir).unwrap());
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                todo.push(p);
                out.push((rel, None));
            } else {
                out.push((rel, Some(md.nlink())));
            }
        }
    }
    out.sort();
    out
}

/// The `REPO.before-upgrade-*` siblings of `repo`.
fn backups(repo: &Path) -> Vec<PathBuf> {
    let name = format!(
        "{}.before-upgrade-",
        repo.file_name().unwrap().to_string_lossy()
    );
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&name))
        .collect();
    v.sort();
    v
}

#[test]
fn plain_upgrade_makes_a_hardlink_copy_like_borg14() {
    let Some(b14) = common::borg14() else { return };
    for program in [b14.clone(), hoard_bin()] {
        let env = Env::new();
        let repo = env.path().join("repo");
        std::fs::create_dir_all(env.path().join("data")).unwrap();
        std::fs::write(env.path().join("data/f"), b"contents").unwrap();
        run_with(&env, &b14, &["init", "-e", "repokey", &s(&repo)]).ok();
        run_with(&env, &b14, &["create", &format!("{}::a", s(&repo)), "data"]).ok();
        let before = tree_links(&repo);
        // -n and --inplace make no copy
        for args in [&["upgrade", "-n"][..], &["upgrade", "--inplace"][..]] {
            let mut a = args.to_vec();
            let r = s(&repo);
            a.push(&r);
            let out = run_with(&env, &program, &a).ok();
            assert_eq!(
                out.stderr, "no key file found for repository\nno key file found for repository\n",
                "{program:?} {args:?}"
            );
            assert!(backups(&repo).is_empty(), "{program:?} {args:?}");
        }
        let out = run_with(&env, &program, &["upgrade", &s(&repo)]).ok();
        assert_eq!(
            out.stderr, "no key file found for repository\nno key file found for repository\n",
            "{program:?}"
        );
        let made = backups(&repo);
        assert_eq!(made.len(), 1, "{program:?}: {made:?}");
        let stamp = made[0]
            .to_string_lossy()
            .rsplit("before-upgrade-")
            .next()
            .unwrap()
            .to_string();
        assert!(
            chrono::NaiveDateTime::parse_from_str(&stamp, "%Y-%m-%d-%H:%M:%S").is_ok(),
            "{program:?}: {stamp}"
        );
        // the copy holds every file of the repository, linked (the README was written anew
        // in the repository, so only the copy's is unlinked)
        let copy = tree_links(&made[0]);
        let names = |t: &[(String, Option<u64>)]| t.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&copy), names(&before), "{program:?}");
        for (name, links) in &copy {
            let want = if name == "README" {
                Some(1)
            } else {
                links.map(|_| 2)
            };
            assert_eq!(
                *links,
                want.filter(|_| links.is_some()),
                "{program:?} {name}"
            );
        }
        // both are valid repositories for borg 1.4.5
        for r in [&repo, &made[0]] {
            run_with(&env, &b14, &["check", &s(r)]).ok();
        }
    }
}

#[test]
fn manifest_load_sets_the_security_tam_flag_like_borg14() {
    let Some(b14) = common::borg14() else { return };
    for program in [b14.clone(), hoard_bin()] {
        let env = Env::new();
        let repo = env.path().join("repo");
        run_with(&env, &b14, &["init", "-e", "repokey", &s(&repo)]).ok();
        let flag = env
            .base()
            .join(".config/borg/security")
            .join(repo_id(&repo))
            .join("tam_required");
        assert!(flag.is_file(), "init sets it");
        // a TAM-verified manifest that requires a TAM brings the flag back
        std::fs::remove_file(&flag).unwrap();
        run_with(&env, &program, &["list", &s(&repo)]).ok();
        assert!(flag.is_file(), "{program:?}: flag restored");
        // one that does not require it (after --disable-tam) removes a stray flag
        run_with(&env, &b14, &["upgrade", "--disable-tam", &s(&repo)]).ok();
        std::fs::write(&flag, b"").unwrap();
        run_with(&env, &program, &["list", &s(&repo)]).ok();
        assert!(!flag.exists(), "{program:?}: flag removed");
    }
}

/// Takes the TAM out of the manifest of `repo` (as a borg before 1.0.9 wrote it) and, if
/// given, out of archive `unauthenticated` (re-stored under its new id), through the library.
fn strip_manifest_and_archive_tam(env: &Env, repo: &Path, unauthenticated: Option<&str>) {
    use hoard::msgpack::{decode_all, Limits, Value};
    let without_tam = |plain: &[u8]| {
        let Value::Map(entries) = decode_all(plain, Limits::UNLIMITED).unwrap() else {
            panic!("not a map")
        };
        let kept: Vec<(Value, Value)> = entries
            .into_iter()
            .filter(|(k, _)| k.as_bytes() != Some(b"tam".as_slice()))
            .collect();
        Value::Map(kept).to_bytes()
    };
    let (_guard, mut opened) = common::craft::open(env, repo, true);
    if let Some(name) = unauthenticated {
        let old = opened.manifest.archives[name.as_bytes()].clone();
        let plain = opened.store.get(&old.id, None).unwrap();
        let (new_id, _) = opened.store.put(&without_tam(&plain)).unwrap();
        opened.store.repo.delete(&old.id).unwrap();
        opened
            .manifest
            .archives
            .get_mut(name.as_bytes())
            .unwrap()
            .id = new_id;
    }
    let plain = opened.manifest.to_plaintext(&opened.store.key);
    opened.store.put_manifest(&without_tam(&plain)).unwrap();
    opened.store.repo.commit(false, 0.1).unwrap();
}

/// Archive ids as `upgrade --archives-tam` prints them (`[id]`): the id of an archive given a
/// TAM depends on the TAM's random salt, so it differs from run to run.
fn without_ids(text: &str) -> String {
    regex::Regex::new(r"\[[0-9a-f]{64}\]")
        .unwrap()
        .replace_all(text, "[ID]")
        .into_owned()
}

/// `upgrade --archives-tam --force` and `--check-archives-tam --force` on a repository whose
/// manifest has no TAM although the key requires one (and, with `archive_too`, archive `a2`
/// has none either): without `--force` borg 1.4.5 refuses to load it (`TAMRequiredError`,
/// modern code 98); with it, it warns "Manifest authentication DISABLED.", treats the archives
/// as usual (adding the TAM an archive lacks), and `--archives-tam` writes the manifest
/// again, with a TAM, even when no archive changed, so the repository is usable again;
/// `--check-archives-tam` changes nothing. hoard must do the same, step for step.
fn archives_tam_force_oracle(archive_too: bool) {
    let Some(b14) = common::borg14() else { return };
    let mut env = Env::new();
    let repo = env.path().join("repo");
    let data = env.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), b"contents").unwrap();
    run_with(&env, &b14, &["init", "-e", "repokey", &s(&repo)]).ok();
    for name in ["a1", "a2"] {
        run_with(
            &env,
            &b14,
            &["create", &format!("{}::{name}", s(&repo)), "data"],
        )
        .ok();
    }
    strip_manifest_and_archive_tam(&env, &repo, archive_too.then_some("a2"));
    copy_dir(&repo, &env.path().join("repo.saved"));
    copy_dir(&env.base(), &env.path().join("base.saved"));
    let r = s(&repo);
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let steps = vec![
        (true, v(&["upgrade", "--archives-tam", &r])),
        (true, v(&["upgrade", "--check-archives-tam", "--force", &r])),
        (false, v(&["list", "--short", &r])),
        (true, v(&["upgrade", "--archives-tam", "--force", &r])),
        (false, v(&["list", "--short", &r])),
        (false, v(&["upgrade", "--check-archives-tam", &r])),
        (false, v(&["upgrade", "--check-tam", &r])),
        (true, v(&["upgrade", "--archives-tam", &r])),
        (false, v(&["check", &r])),
    ];
    for mode in ["legacy", "modern"] {
        env.set("BORG_EXIT_CODES", mode);
        let want = sequence(&env, &b14, &b14, &steps);
        let got = sequence(&env, &hoard_bin(), &b14, &steps);
        // stderr: its first line (borg follows an error with a traceback, hoard does not)
        let norm = |x: &[(i32, String, String)]| {
            x.iter()
                .map(|(c, o, e)| {
                    let first = e.lines().next().unwrap_or_default().to_string();
                    (*c, without_ids(o), first)
                })
                .collect::<Vec<_>>()
        };
        let (want, got) = (norm(&want), norm(&got));
        for (i, ((w, g), step)) in want.iter().zip(&got).zip(&steps).enumerate() {
            assert_eq!(
                g,
                w,
                "{mode} step {i} ({} {:?}): hoard (left) differs from borg 1.4.5 (right)",
                if step.0 { "under test" } else { "borg 1.4.5" },
                step.1
            );
        }
        // the oracle itself: the TAM-less manifest is refused, --force loads it and warns,
        // the check changes nothing, the upgrade authenticates manifest and archive
        let refused = if mode == "modern" { 98 } else { 2 };
        assert_eq!(want[0].0, refused, "{}", want[0].2);
        assert!(want[1].2.contains("Manifest authentication DISABLED."));
        assert_eq!(
            want[1].1.contains("Archive TAM missing: a2 "),
            archive_too,
            "{}",
            want[1].1
        );
        assert_eq!(want[2].0, refused, "the check wrote nothing");
        assert_eq!(
            want[3].1.contains("Added archive TAM:   a2 "),
            archive_too,
            "{}",
            want[3].1
        );
        assert!(
            want[3].1.contains("Archive TAM present: a1 "),
            "{}",
            want[3].1
        );
        assert_eq!(want[4].0, 0, "{}", want[4].2);
        assert_eq!(want[4].1, "a1\na2\n");
        assert_eq!(want[5].0, 0, "{}", want[5].2);
    }
}

#[test]
fn upgrade_archives_tam_force_matches_borg14_manifest_and_archive() {
    archives_tam_force_oracle(true);
}

#[test]
fn upgrade_archives_tam_force_matches_borg14_manifest_only() {
    archives_tam_force_oracle(false);
}
