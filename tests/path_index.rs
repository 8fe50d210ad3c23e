//! The per-archive path index of the client cache: `list ARCHIVE PATH` and `extract ARCHIVE
//! PATH` read only the item-stream chunks it names, give exactly the output of a full read, and
//! never trust an index that is missing, corrupt or made for another archive.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::Env;

/// A tree whose item stream spans several chunks: 40 directories of 250 empty files, a
/// hardlinked pair, a symlink.
fn setup() -> (Env, String) {
    let env = Env::new();
    let data = env.path().join("data");
    for d in 0..40 {
        let dir = data.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..250 {
            fs::write(
                dir.join(format!("file-with-a-longish-name-{d:02}-{f:04}")),
                b"",
            )
            .unwrap();
        }
    }
    let hl = data.join("hl");
    fs::create_dir_all(&hl).unwrap();
    fs::write(hl.join("master"), b"hardlinked content\n").unwrap();
    fs::hard_link(hl.join("master"), hl.join("slave")).unwrap();
    std::os::unix::fs::symlink("master", hl.join("link")).unwrap();
    let repo = env.path().join("repo").to_string_lossy().into_owned();
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    env.hoard(["create", &format!("{repo}::a"), "data"]).ok();
    env.hoard(["create", &format!("{repo}::b"), "data/d05", "data/hl"])
        .ok();
    (env, repo)
}

fn index_dir(env: &Env) -> PathBuf {
    let cache = env.base().join(".cache/borg");
    let repo_dir = fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("config").is_file())
        .expect("repository cache dir");
    repo_dir.join("hoard-paths.d")
}

fn index_files(env: &Env) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(index_dir(env))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn list(env: &Env, repo: &str, archive: &str, paths: &[&str], extra: &[&str]) -> (String, String) {
    let mut args = vec!["list".to_string(), "--debug".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(format!("{repo}::{archive}"));
    args.extend(paths.iter().map(|s| s.to_string()));
    let r = env.hoard(&args).ok();
    (r.out(), r.stderr)
}

/// The listing a full read gives (a pattern option that excludes nothing keeps the index out).
fn full_list(env: &Env, repo: &str, archive: &str, paths: &[&str]) -> String {
    let (out, err) = list(
        env,
        repo,
        archive,
        paths,
        &["--exclude", "no-such-path-anywhere"],
    );
    assert!(!err.contains("path index:"), "{err}");
    out
}

const SELECTIONS: [&[&str]; 7] = [
    &["data/d03"],
    &["data/d17/file-with-a-longish-name-17-0123"],
    &["data/d01", "data/d33", "data/hl"],
    &["data/d0"],
    &["nothing/here"],
    &["data/hl/slave"],
    &["./data/d07/"],
];

#[test]
fn index_is_built_then_used_with_identical_output() {
    let (env, repo) = setup();
    assert!(index_files(&env).is_empty());
    for sel in SELECTIONS {
        let want = full_list(&env, &repo, "a", sel);
        let (first, _) = list(&env, &repo, "a", sel, &[]);
        assert_eq!(first, want, "{sel:?}");
        let files = index_files(&env);
        assert_eq!(files.len(), 1, "one index, for archive a");
        let before = fs::read(&files[0]).unwrap();
        let (second, err) = list(&env, &repo, "a", sel, &[]);
        assert_eq!(second, want, "{sel:?}");
        assert!(err.contains("path index: reading"), "{sel:?}: {err}");
        assert_eq!(
            fs::read(&files[0]).unwrap(),
            before,
            "a hit does not rewrite"
        );
    }
    // The selection reads less than the whole stream.
    let (_, err) = list(
        &env,
        &repo,
        "a",
        &["data/d17/file-with-a-longish-name-17-0123"],
        &[],
    );
    let line = err
        .lines()
        .find(|l| l.contains("path index: reading"))
        .unwrap();
    let nums: Vec<usize> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        nums.len() == 2 && nums[0] < nums[1] && nums[1] > 2,
        "{line}"
    );
    // Sanity: the selections do select something.
    assert_eq!(want_lines(&env, &repo, &["data/d03"]), 251);
    assert_eq!(want_lines(&env, &repo, &["data/hl/slave"]), 1);
}

fn want_lines(env: &Env, repo: &str, sel: &[&str]) -> usize {
    full_list(env, repo, "a", sel).lines().count()
}

#[test]
fn deleted_corrupt_and_foreign_indexes_are_rebuilt() {
    let (env, repo) = setup();
    let sel: &[&str] = &["data/d22"];
    let want = full_list(&env, &repo, "a", sel);
    list(&env, &repo, "a", sel, &[]);
    let file = index_files(&env).remove(0);
    let good = fs::read(&file).unwrap();

    // deleted: rebuilt by the next query
    fs::remove_file(&file).unwrap();
    let (out, err) = list(&env, &repo, "a", sel, &[]);
    assert_eq!(out, want);
    assert!(!err.contains("path index: reading"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), good);

    // corrupt (one bit anywhere, or cut short): ignored and rebuilt
    for at in [10, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x04;
        fs::write(&file, &bad).unwrap();
        let (out, err) = list(&env, &repo, "a", sel, &[]);
        assert_eq!(out, want, "flip at {at}");
        assert!(!err.contains("path index: reading"), "{err}");
        assert_eq!(fs::read(&file).unwrap(), good, "rebuilt after flip at {at}");
    }
    fs::write(&file, &good[..good.len() - 9]).unwrap();
    assert_eq!(list(&env, &repo, "a", sel, &[]).0, want);
    assert_eq!(fs::read(&file).unwrap(), good);

    // another archive's index under this archive's name: refused, and this one rebuilt
    let want_b = full_list(&env, &repo, "b", sel);
    let (_, _) = list(&env, &repo, "b", &["data/hl"], &[]);
    let files = index_files(&env);
    assert_eq!(files.len(), 2);
    let other = files.iter().find(|p| **p != file).unwrap().clone();
    let b_index = fs::read(&other).unwrap();
    fs::write(&other, &good).unwrap();
    let (out, err) = list(&env, &repo, "b", sel, &[]);
    assert_eq!(out, want_b);
    assert!(!err.contains("path index: reading"), "{err}");
    assert_eq!(fs::read(&other).unwrap(), b_index);

    // deleting an archive drops its index at the next save
    env.hoard(["delete", &format!("{repo}::b")]).ok();
    fs::remove_file(&file).unwrap();
    list(&env, &repo, "a", sel, &[]);
    assert_eq!(index_files(&env), vec![file]);
}

fn extract(env: &Env, repo: &str, dest: &str, paths: &[&str]) -> String {
    let d = env.path().join(dest);
    fs::create_dir_all(&d).unwrap();
    let mut args = vec![
        "extract".to_string(),
        "--debug".into(),
        format!("{repo}::a"),
    ];
    args.extend(paths.iter().map(|s| s.to_string()));
    let mut c = env.hoard_cmd();
    c.current_dir(&d).args(&args);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tree_of(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.push((rel, b"dir".to_vec()));
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                out.push((
                    rel,
                    fs::read_link(&path)
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes()
                        .to_vec(),
                ));
            } else {
                out.push((rel, fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn extract_of_one_path_uses_the_index_and_restores_the_same() {
    let (env, repo) = setup();
    extract(&env, &repo, "x1", &["data/d09"]);
    assert_eq!(index_files(&env).len(), 1);
    let err = extract(&env, &repo, "x2", &["data/d09"]);
    assert!(err.contains("path index: reading"), "{err}");
    let t1 = tree_of(&env.path().join("x1"));
    assert_eq!(t1.len(), 252); // data, data/d09, 250 files
    assert_eq!(t1, tree_of(&env.path().join("x2")));

    // A hardlink slave needs its master, which may lie outside the selection: full read.
    let err = extract(&env, &repo, "x3", &["data/hl"]);
    assert!(!err.contains("path index: reading"), "{err}");
    for f in ["master", "slave"] {
        assert_eq!(
            fs::read(env.path().join("x3/data/hl").join(f)).unwrap(),
            b"hardlinked content\n"
        );
    }
    let err = extract(&env, &repo, "x4", &["data/hl/link"]);
    assert!(err.contains("path index: reading"), "{err}");
    assert_eq!(
        fs::read_link(env.path().join("x4/data/hl/link")).unwrap(),
        Path::new("master")
    );
}
