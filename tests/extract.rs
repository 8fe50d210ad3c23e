//! `hoard extract`: vectors, round trips through the real borg, options, safety and damage.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::craft::{self, file_item, Content};
use common::{tree, Env};

fn sha256(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).expect("read")))
}

/// Every file below `root` with its relative path.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn rec(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).expect("readdir").flatten() {
            let p = e.path();
            out.push(p.clone());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rec(&p, out);
            }
        }
    }
    rec(root, &mut out);
    out.sort();
    out
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .expect("prefix")
        .to_string_lossy()
        .into_owned()
}

/// Compares an extracted directory with one archive's entry of `expected.json`.
fn check_expected(dest: &Path, files: &serde_json::Map<String, serde_json::Value>) {
    let found: Vec<String> = walk(dest).iter().map(|p| rel(dest, p)).collect();
    let mut want: Vec<String> = files.keys().cloned().collect();
    want.sort();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(found_sorted, want, "extracted paths differ");
    let mut inodes: BTreeMap<String, u64> = BTreeMap::new();
    for (name, e) in files {
        let p = dest.join(name);
        let md = std::fs::symlink_metadata(&p).expect("lstat");
        let mode = e["mode"].as_str().expect("mode");
        assert_eq!(format!("0o{:o}", md.mode()), mode, "mode of {name}");
        let mtime = md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128;
        assert_eq!(
            mtime,
            e["mtime_ns"].as_i64().expect("mtime") as i128,
            "mtime of {name}"
        );
        if let Some(size) = e.get("size") {
            assert_eq!(md.len(), size.as_u64().expect("size"), "size of {name}");
        }
        if let Some(h) = e.get("sha256") {
            assert_eq!(sha256(&p), h.as_str().expect("sha"), "content of {name}");
        }
        if let Some(t) = e.get("symlink_target") {
            assert_eq!(
                std::fs::read_link(&p).expect("readlink").to_string_lossy(),
                t.as_str().expect("target"),
                "target of {name}"
            );
        }
        let xattrs: BTreeMap<String, String> = tree::xattrs(&p)
            .into_iter()
            .filter(|(k, _)| k.starts_with(b"user."))
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let want_x: BTreeMap<String, String> = e
            .get("xattrs")
            .and_then(|x| x.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(xattrs, want_x, "xattrs of {name}");
        if let Some(g) = e.get("inode_group") {
            let first = g[0].as_str().expect("group").to_string();
            let ino = *inodes.entry(first).or_insert(md.ino());
            assert_eq!(md.ino(), ino, "hardlink group of {name}");
        }
    }
}

#[test]
fn every_vector_extracts_as_expected() {
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::vectors_dir().join("repos/expected.json")).expect("expected"),
    )
    .expect("json");
    for (name, v) in expected.as_object().expect("map") {
        let (env, repo) = common::vector_env(name);
        for (archive, a) in v["archives"].as_object().expect("archives") {
            let dest = env.path().join(format!("out-{archive}"));
            std::fs::create_dir(&dest).expect("mkdir");
            let run = env
                .hoard_cmd()
                .current_dir(&dest)
                .args(["extract", "--numeric-ids"])
                .arg(format!("{}::{archive}", repo.display()))
                .output()
                .expect("run");
            assert!(
                run.status.success(),
                "{name}::{archive}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            check_expected(&dest, a["files"].as_object().expect("files"));
        }
    }
}

fn init_repo(env: &Env) -> PathBuf {
    let repo = env.path().join("repo");
    env.borg(["init", "-e", "repokey", repo.to_str().expect("utf8")])
        .ok();
    repo
}

fn borg_repo_with_tree(env: &Env, big: bool) -> (String, PathBuf) {
    let src = env.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    tree::build_full_tree(&src, big);
    let repo = init_repo(env);
    let run = env
        .borg_cmd()
        .current_dir(&src)
        .arg("create")
        .arg(format!("{}::a", repo.display()))
        .arg("tree")
        .output()
        .expect("borg create");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    (format!("{}::a", repo.display()), src)
}

fn hoard_in(env: &Env, dir: &Path, args: &[&str]) -> common::Run {
    let out = env
        .hoard_cmd()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run hoard");
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn fresh(env: &Env, name: &str) -> PathBuf {
    let d = env.path().join(name);
    std::fs::create_dir(&d).expect("mkdir");
    d
}

#[test]
fn round_trip_through_borg_keeps_everything() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let (arch, src) = borg_repo_with_tree(&env, true);
    let dest = fresh(&env, "dest");
    hoard_in(&env, &dest, &["extract", &arch]).ok();
    tree::assert_same_tree(&src.join("tree"), &dest.join("tree"));

    // --sparse keeps the holes (borg's sparse extraction works per chunk: use a fixed chunker)
    let repo = env.path().join("repo");
    let run = env
        .borg_cmd()
        .current_dir(&src)
        .args(["create", "--chunker-params", "fixed,65536"])
        .arg(format!("{}::fixed", repo.display()))
        .arg("tree")
        .output()
        .expect("borg create");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let fixed = format!("{}::fixed", repo.display());
    let sp = fresh(&env, "sparse");
    hoard_in(&env, &sp, &["extract", "--sparse", &fixed]).ok();
    tree::assert_same_tree(&src.join("tree"), &sp.join("tree"));
    let dn = fresh(&env, "dense");
    hoard_in(&env, &dn, &["extract", &fixed]).ok();
    let blocks = |p: &Path| std::fs::metadata(p).expect("md").blocks();
    for f in ["tree/sparse.img", "tree/zeros.bin"] {
        let dense = blocks(&dn.join(f));
        let sparse = blocks(&sp.join(f));
        assert!(
            sparse < dense,
            "{f}: sparse extract should allocate fewer blocks ({sparse} vs {dense})"
        );
    }
    // the source's holes are kept exactly where the chunks are all zero
    assert!(blocks(&sp.join("tree/sparse.img")) <= blocks(&src.join("tree/sparse.img")) + 512);
}

#[test]
fn options_strip_paths_stdout_dry_run() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let (arch, src) = borg_repo_with_tree(&env, false);
    let t = src.join("tree");

    // --strip-components 1 with a PATH selection
    let d = fresh(&env, "strip");
    hoard_in(
        &env,
        &d,
        &["extract", "--strip-components", "1", &arch, "tree/dir"],
    )
    .ok();
    let got: Vec<String> = walk(&d).iter().map(|p| rel(&d, p)).collect();
    assert!(got.iter().all(|p| p.starts_with("dir")), "{got:?}");
    assert_eq!(
        std::fs::read(d.join("dir/sub/deeper/leaf.txt")).expect("leaf"),
        b"leaf\n"
    );
    // dir/third-link is a hardlink slave whose master (links/master) was not extracted
    assert_eq!(
        std::fs::read(d.join("dir/third-link")).expect("third"),
        b"linked content\n"
    );
    assert_eq!(
        std::fs::metadata(d.join("dir/sub")).expect("md").mode() & 0o7777,
        0o700
    );

    // PATH selection of two hardlinked files: both exist and share an inode
    let d2 = fresh(&env, "links");
    hoard_in(
        &env,
        &d2,
        &["extract", &arch, "tree/links/second", "tree/dir/third-link"],
    )
    .ok();
    let a = std::fs::metadata(d2.join("tree/links/second")).expect("second");
    let b = std::fs::metadata(d2.join("tree/dir/third-link")).expect("third");
    assert_eq!(a.ino(), b.ino());
    assert!(!d2.join("tree/links/master").exists());

    // a PATH that never matches: warning, exit 1
    let d3 = fresh(&env, "nomatch");
    let r = hoard_in(&env, &d3, &["extract", &arch, "tree/nope"]).expect_code(1);
    assert!(
        r.stderr
            .contains("Include pattern 'tree/nope' never matched."),
        "{}",
        r.stderr
    );

    // --stdout: the file contents, nothing written
    let d4 = fresh(&env, "stdout");
    let r = hoard_in(&env, &d4, &["extract", "--stdout", &arch, "tree/hello.txt"]).ok();
    assert_eq!(r.stdout, b"hello borg\n");
    assert!(walk(&d4).is_empty());
    let r = hoard_in(&env, &d4, &["extract", "--stdout", &arch, "tree/big.bin"]).ok();
    assert_eq!(r.stdout, std::fs::read(t.join("big.bin")).expect("big"));

    // --dry-run --list writes nothing and lists like borg
    let r = hoard_in(&env, &d4, &["extract", "--dry-run", "--list", &arch]).ok();
    assert!(walk(&d4).is_empty());
    let b = env
        .borg_cmd()
        .current_dir(&d4)
        .args(["extract", "--dry-run", "--list", &arch])
        .output()
        .expect("borg");
    assert_eq!(r.stderr, String::from_utf8_lossy(&b.stderr));
    assert!(walk(&d4).is_empty());
}

#[test]
fn existing_files_are_replaced() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let (arch, src) = borg_repo_with_tree(&env, false);
    let d = fresh(&env, "dest");
    std::fs::create_dir_all(d.join("tree/links")).expect("mkdir");
    std::fs::write(d.join("tree/hello.txt"), b"old content that is longer").expect("w");
    std::os::unix::fs::symlink("/etc/hostname", d.join("tree/empty")).expect("symlink");
    // an empty directory, a symlink to a file outside the target and a file where a hardlink
    // goes: each is removed (nothing is written through the symlink)
    std::fs::create_dir(d.join("tree/big.bin")).expect("mkdir");
    let outside = env.path().join("outside.txt");
    std::fs::write(&outside, b"must stay").expect("w");
    std::os::unix::fs::symlink(&outside, d.join("tree/zeros.bin")).expect("symlink");
    std::fs::write(d.join("tree/links/second"), b"in the way").expect("w");
    hoard_in(&env, &d, &["extract", &arch]).ok();
    tree::assert_same_tree(&src.join("tree"), &d.join("tree"));
    assert_eq!(std::fs::read(&outside).expect("read"), b"must stay");
    // a directory with contents cannot be replaced: the file is reported, the rest extracted
    let d = fresh(&env, "dest2");
    std::fs::create_dir_all(d.join("tree/hello.txt/inner")).expect("mkdir");
    let run = hoard_in(&env, &d, &["extract", &arch]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let hello = d.join("tree/hello.txt");
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "tree/hello.txt: open: [Errno 21] Is a directory: '{}'",
            hello.display()
        )
    );
    assert!(hello.join("inner").is_dir());
    assert_eq!(
        std::fs::read(d.join("tree/dir/sub/deeper/leaf.txt")).expect("read"),
        b"leaf\n"
    );
}

/// Writes archive `evil` with hand-made items into a new repository (see `common::craft`).
fn write_archive(env: &Env, items: Vec<(hoard::archive::item::Item, Option<Vec<u8>>)>) -> String {
    let repo = craft::init_repo(env, "repo");
    let items = items
        .into_iter()
        .map(|(item, data)| (item, data.map_or(Content::Keep, Content::Bytes)))
        .collect();
    craft::write_archive(env, &repo, "evil", items)
}

#[test]
fn malicious_paths_are_refused() {
    let env = Env::new();
    let outside = env.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let target_dir = env.path().join("victim");
    std::fs::create_dir(&target_dir).expect("mkdir");
    let mut link = file_item(b"a");
    link.mode = 0o120777;
    link.source = Some(target_dir.as_os_str().as_bytes().to_vec());
    let mut slave = file_item(b"stolen");
    slave.source = Some(b"../outside/secret".to_vec());
    std::fs::write(outside.join("secret"), b"secret").expect("w");
    let arch = write_archive(
        &env,
        vec![
            (file_item(b"ok-before"), Some(b"fine".to_vec())),
            // (a path starting with `../` or `/` ends the extraction, as in borg 1.4.5:
            // hostile_archives.rs, paths_not_relative_and_local_end_the_extraction_like_borg14)
            (file_item(b"x/../../outside/mid"), Some(b"evil3".to_vec())),
            (link, None),
            (file_item(b"a/passwd"), Some(b"evil4".to_vec())),
            (slave, None),
            (file_item(b"ok-after"), Some(b"fine".to_vec())),
        ],
    );
    let dest = fresh(&env, "dest");
    let r = hoard_in(&env, &dest, &["extract", &arch]).expect_code(1);
    for p in ["x/../../outside/mid", "a/passwd", "stolen"] {
        assert!(
            r.stderr.lines().any(|l| l.starts_with(&format!("{p}: "))),
            "no error for {p}:\n{}",
            r.stderr
        );
    }
    assert_eq!(std::fs::read(dest.join("ok-before")).expect("ok"), b"fine");
    assert_eq!(std::fs::read(dest.join("ok-after")).expect("ok"), b"fine");
    let outside_files: Vec<String> = walk(&outside).iter().map(|p| rel(&outside, p)).collect();
    assert_eq!(outside_files, vec!["secret".to_string()]);
    assert!(walk(&target_dir).is_empty(), "wrote through the symlink");
    assert!(!dest.join("stolen").exists());
    assert!(!dest.join("x").exists() || walk(&dest.join("x")).is_empty());
}

#[test]
fn damaged_chunk_is_reported_and_others_extracted() {
    let env = Env::new();
    let arch = write_archive(
        &env,
        vec![
            (file_item(b"one"), Some(b"first file".to_vec())),
            (file_item(b"two"), Some(b"second file, to be lost".to_vec())),
            (file_item(b"three"), Some(b"third file".to_vec())),
        ],
    );
    // delete the chunk of "two" through the repository API
    let repo = env.path().join("repo");
    let id = craft::chunk_id(&env, &repo, b"second file, to be lost");
    craft::delete_object(&repo, &id);
    let dest = fresh(&env, "dest");
    let r = hoard_in(&env, &dest, &["extract", &arch]).expect_code(1);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("two: ") && l.contains("not found")),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(dest.join("one")).expect("one"), b"first file");
    assert_eq!(
        std::fs::read(dest.join("three")).expect("three"),
        b"third file"
    );
}

#[test]
fn progress_and_list_output_match_borg() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let (arch, _src) = borg_repo_with_tree(&env, false);
    let strip_time = |s: &str| -> String {
        s.lines()
            .map(|l| match l.find(", \"time\": ") {
                Some(i) => l[..i].to_string(),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for args in [
        vec!["extract", "--log-json", "-p", "--list"],
        vec!["extract", "-p"],
        vec!["extract", "--log-json", "-p", "--strip-components", "1"],
    ] {
        let hd = fresh(&env, "p-hoard");
        let bd = fresh(&env, "p-borg");
        let mut a = args.clone();
        a.push(&arch);
        let h = hoard_in(&env, &hd, &a).ok();
        let b = env
            .borg_cmd()
            .current_dir(&bd)
            .args(&a)
            .output()
            .expect("borg");
        assert_eq!(
            strip_time(&h.stderr),
            strip_time(&String::from_utf8_lossy(&b.stderr)),
            "{args:?}"
        );
        std::fs::remove_dir_all(&hd).expect("rm");
        std::fs::remove_dir_all(&bd).expect("rm");
    }
}

#[test]
fn patterns_select_like_borg() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let (arch, _src) = borg_repo_with_tree(&env, false);
    let exfile = env.path().join("excludes");
    std::fs::write(&exfile, "*.bin\n# comment\ntree/links/*\n").expect("w");
    let patfile = env.path().join("patterns");
    std::fs::write(
        &patfile,
        "+ tree/dir/sub\n- tree/dir/*\n+ re:\\.txt$\n- *\n",
    )
    .expect("w");
    let ex = format!("--exclude-from={}", exfile.display());
    let pf = format!("--patterns-from={}", patfile.display());
    let cases: Vec<Vec<&str>> = vec![
        vec!["-e", "*.bin", "-e", "tree/dir"],
        vec![&ex],
        vec![&pf],
        vec!["--pattern", "- sh:tree/**/*.txt"],
        vec![&arch, "sh:tree/*.txt", "tree/links"],
        vec!["--strip-components", "2", "-e", "re:leaf"],
    ];
    let d = fresh(&env, "pat");
    for extra in cases {
        let mut args = vec!["extract", "--dry-run", "--list"];
        args.extend(extra.iter().copied());
        if !extra.contains(&arch.as_str()) {
            args.push(&arch);
        }
        let h = hoard_in(&env, &d, &args);
        let b = env
            .borg_cmd()
            .current_dir(&d)
            .args(&args)
            .output()
            .expect("borg");
        assert_eq!(
            h.code,
            b.status.code().unwrap_or(-1),
            "{args:?}: {}",
            h.stderr
        );
        assert_eq!(h.stderr, String::from_utf8_lossy(&b.stderr), "{args:?}");
    }
    // a real extract with an exclude writes exactly the selected files
    hoard_in(
        &env,
        &d,
        &["extract", "-e", "*.bin", "-e", "tree/dir", &arch],
    )
    .ok();
    assert!(d.join("tree/hello.txt").exists());
    assert!(!d.join("tree/big.bin").exists() && !d.join("tree/dir").exists());
}
