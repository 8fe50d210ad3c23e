//! `hoard recreate` against borg 1.4.5's `recreate` as the oracle: one repository made by
//! borg is copied twice; borg recreates one copy, hoard the other, with the same arguments.
//! The archives must list the same items (paths, modes, sizes, chunk counts, content
//! hashes), and borg 1.4's `check --verify-data` must be clean on hoard's copy.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{borg14, Env, Run};

/// Two environments with identical copies of a repository borg 1.4 made from `tree` with
/// `create_args` (archives `a` and then `b`, both of `input`).
struct Twin {
    borg: PathBuf,
    b: Env,
    h: Env,
}

impl Twin {
    fn new(borg: PathBuf, tree: impl Fn(&Path), create_args: &[&[&str]], encryption: &str) -> Twin {
        let b = Env::new();
        let h = Env::new();
        tree(&b.path().join("input"));
        b.run_at(&borg, ["init", "-e", encryption, "repo"]).ok();
        for (i, extra) in create_args.iter().enumerate() {
            let name = format!("repo::{}", ["a", "b", "c"][i]);
            let mut args = vec!["create"];
            args.extend_from_slice(extra);
            args.push(&name);
            args.push("input");
            b.run_at(&borg, &args).ok();
        }
        let st = Command::new("cp")
            .arg("-a")
            .arg(b.path().join("repo"))
            .arg(h.path().join("repo"))
            .status()
            .expect("cp");
        assert!(st.success());
        Twin { borg, b, h }
    }

    /// Runs `recreate ARGS` with borg on one copy and hoard on the other; returns both runs.
    fn recreate(&self, args: &[&str]) -> (Run, Run) {
        let mut full = vec!["recreate"];
        full.extend_from_slice(args);
        let rb = self.b.run_at(&self.borg, &full);
        let rh = self.h.hoard(&full);
        (rb, rh)
    }

    /// `list --format` of an archive in both copies (via borg 1.4).
    fn listings(&self, archive: &str, format: &str) -> (String, String) {
        let a = format!("repo::{archive}");
        let lb = self
            .b
            .run_at(&self.borg, ["list", "--format", format, &a])
            .ok();
        let lh = self
            .h
            .run_at(&self.borg, ["list", "--format", format, &a])
            .ok();
        (lb.out(), lh.out())
    }

    /// The archive names of both copies.
    fn archives(&self) -> (String, String) {
        let f = "{archive}{NL}";
        let lb = self
            .b
            .run_at(&self.borg, ["list", "--format", f, "repo"])
            .ok();
        let lh = self
            .h
            .run_at(&self.borg, ["list", "--format", f, "repo"])
            .ok();
        (lb.out(), lh.out())
    }

    /// borg 1.4's `check --verify-data` on hoard's copy.
    fn check_hoard(&self) {
        self.h
            .run_at(&self.borg, ["check", "--verify-data", "repo"])
            .ok();
    }
}

const ITEMS: &str = "{mode} {path} {size} {num_chunks} {sha256} {source}{NL}";

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

/// Makes `root/file1` and the directories `root/dir2` and `root/dir2/sub` so that file1 has
/// the lowest inode number of the three.
///
/// borg walks a directory's entries in inode order (`scandir_inorder`), so the first member
/// of a hardlink group in the walk (the group's master, the one with the chunks) is the one
/// whose parent directory comes first by inode. The file system hands out the lowest free
/// inode, and other processes deleting files leave free inodes anywhere: under load, `dir2`
/// made after `file1` could get a lower inode than it, and then `dir2/sub/hl2` would be the
/// master instead of `file1`. Entries that land in such a hole are moved aside (they keep
/// the hole filled) and the three are made again until the order is right.
fn file1_before_dirs(root: &Path) {
    let aside = root.with_extension("aside");
    let ino = |p: &Path| std::fs::symlink_metadata(p).expect("stat").ino();
    for attempt in 0..1000 {
        write(
            &root.join("file1"),
            &common::tree::pseudo_random(200_000, 1),
        );
        std::fs::create_dir_all(root.join("dir2/sub")).expect("mkdir");
        let f = ino(&root.join("file1"));
        if f < ino(&root.join("dir2")) && f < ino(&root.join("dir2/sub")) {
            return;
        }
        let dst = aside.join(attempt.to_string());
        std::fs::create_dir_all(&dst).expect("mkdir");
        for name in ["file1", "dir2"] {
            std::fs::rename(root.join(name), dst.join(name)).expect("move aside");
        }
    }
    panic!("no inode order with file1 first after 1000 attempts");
}

fn tree(root: &Path) {
    file1_before_dirs(root);
    write(&root.join("dir2/file2"), b"hello");
    write(&root.join("dir2/file3"), &vec![0u8; 300_000]);
    write(
        &root.join("dir2/sub/file4"),
        &common::tree::pseudo_random(5000, 2),
    );
    std::os::unix::fs::symlink("file2", root.join("dir2/link")).expect("symlink");
    // A hardlink group whose master (file1, first in the walk: see file1_before_dirs) is
    // outside dir2.
    std::fs::hard_link(root.join("file1"), root.join("dir2/hl1")).expect("link");
    std::fs::hard_link(root.join("file1"), root.join("dir2/sub/hl2")).expect("link");
    write(
        &root.join("cache/CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55 x",
    );
    write(&root.join("cache/junk"), b"junk");
    write(&root.join("tagged/.NOBACKUP"), b"");
    write(&root.join("tagged/data"), b"data");
}

#[test]
fn recreate_paths_and_excludes_match_borg_and_keep_hardlinks() {
    let Some(borg) = borg14() else { return };
    let t = Twin::new(borg, tree, &[&[]], "repokey");
    let (rb, rh) = t.recreate(&["--list", "repo::a", "input/dir2", "-e", "input/dir2/file3"]);
    rb.ok();
    let rh = rh.ok();
    let (lb, lh) = t.listings("a", ITEMS);
    assert_eq!(lb, lh);
    assert!(lh.contains("input/dir2/hl1 200000"), "{lh}");
    assert!(!lh.contains("input/file1"), "{lh}");
    assert!(rh.stderr.contains("x input/dir2/file3\n"), "{}", rh.stderr);
    assert!(rh.stderr.contains("A input/dir2/hl1\n"), "{}", rh.stderr);
    t.check_hoard();
    // The moved hardlink group still extracts as one inode.
    let out = t.h.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let st =
        t.h.command_for(&t.borg.to_string_lossy())
            .args([
                "extract",
                &format!("{}::a", t.h.path().join("repo").display()),
            ])
            .current_dir(&out)
            .status()
            .expect("extract");
    assert!(st.success());
    let m = std::fs::metadata(out.join("input/dir2/hl1")).expect("hl1");
    assert_eq!(m.nlink(), 2);
    assert_eq!(
        std::fs::read(out.join("input/dir2/sub/hl2")).expect("hl2"),
        common::tree::pseudo_random(200_000, 1)
    );
    // Metadata: times and comment kept, cmdline kept, new id.
    let info = |e: &Env| {
        let r = e.run_at(&t.borg, ["info", "--json", "repo::a"]).ok();
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
        let a = &v["archives"][0];
        (
            a["start"].clone(),
            a["end"].clone(),
            a["comment"].clone(),
            a["command_line"].clone(),
            a["stats"]["nfiles"].clone(),
            a["stats"]["original_size"].clone(),
        )
    };
    let (ib, ih) = (info(&t.b), info(&t.h));
    assert_eq!(ib.0, ih.0);
    assert_eq!(ib.1, ih.1);
    assert_eq!(ib.2, ih.2);
    assert_eq!(ib.4, ih.4);
    assert_eq!(ib.5, ih.5);
    assert_eq!(ih.3[1], "create");
}

#[test]
fn recreate_tag_excludes_match_borg() {
    let Some(borg) = borg14() else { return };
    for args in [
        vec![
            "--exclude-caches",
            "--exclude-if-present",
            ".NOBACKUP",
            "repo::a",
        ],
        vec!["--exclude-if-present", ".NOBACKUP", "repo::a"],
        vec![
            "--exclude-caches",
            "--exclude-if-present",
            ".NOBACKUP",
            "--keep-exclude-tags",
            "repo::a",
        ],
    ] {
        let t = Twin::new(borg.clone(), tree, &[&[]], "none");
        let (rb, rh) = t.recreate(&args);
        rb.ok();
        rh.ok();
        let (lb, lh) = t.listings("a", ITEMS);
        assert_eq!(lb, lh, "{args:?}");
        let caches = args.contains(&"--exclude-caches");
        assert_eq!(lh.contains("input/cache/junk"), !caches, "{args:?}: {lh}");
        assert!(!lh.contains("input/tagged/data"), "{args:?}: {lh}");
        let keep = args.contains(&"--keep-exclude-tags");
        assert_eq!(
            lh.contains("input/tagged/.NOBACKUP"),
            keep,
            "{args:?}: {lh}"
        );
        t.check_hoard();
    }
}

#[test]
fn recreate_recompress_matches_borg() {
    let Some(borg) = borg14() else { return };
    let t = Twin::new(borg, tree, &[&["-C", "none"], &["-C", "none"]], "repokey");
    let (rb, rh) = t.recreate(&["repo", "-C", "zstd,3", "--recompress"]);
    rb.ok();
    let rh = rh.ok();
    assert_eq!(rh.out(), "Processing a\nProcessing b\n");
    for a in ["a", "b"] {
        let (lb, lh) = t.listings(a, ITEMS);
        assert_eq!(lb, lh);
        let (_, csizes) = t.listings(a, "{path} {size} {csize}{NL}");
        let line = csizes
            .lines()
            .find(|l| l.starts_with("input/dir2/file3 "))
            .expect("file3");
        let csize: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("csize");
        assert!(csize < 1000, "{line}");
    }
    t.check_hoard();
}

#[test]
fn recreate_rechunks_as_borg() {
    let Some(borg) = borg14() else { return };
    for cp in ["default", "fixed,4096", "10,12,11,63"] {
        let t = Twin::new(
            borg.clone(),
            tree,
            &[&["--chunker-params", "7,9,8,127"]],
            "repokey",
        );
        let (rb, rh) = t.recreate(&["--chunker-params", cp, "repo"]);
        rb.ok();
        rh.ok();
        let (lb, lh) = t.listings("a", ITEMS);
        assert_eq!(lb, lh, "{cp}");
        t.check_hoard();
        // The same chunker params again: nothing to do, the archive stays as it is.
        let before = t.listings("a", "{path} {num_chunks}{NL}").1;
        let id = |e: &Env| {
            e.run_at(&t.borg, ["list", "--format", "{id}", "repo"])
                .ok()
                .out()
        };
        let id_before = id(&t.h);
        let (_, rh) = t.recreate(&["--chunker-params", cp, "repo"]);
        rh.ok();
        assert_eq!(id(&t.h), id_before, "{cp}");
        assert_eq!(t.listings("a", "{path} {num_chunks}{NL}").1, before);
    }
}

#[test]
fn recreate_target_comment_timestamp_match_borg() {
    let Some(borg) = borg14() else { return };
    let t = Twin::new(borg, tree, &[&[]], "repokey");
    let args = [
        "repo::a",
        "input/dir2",
        "--target",
        "new",
        "--comment",
        "recreated",
        "--timestamp",
        "2020-01-02T03:04:05",
    ];
    let (rb, rh) = t.recreate(&args);
    rb.ok();
    rh.ok();
    let (ab, ah) = t.archives();
    assert_eq!(ab, ah);
    assert_eq!(ah, "new\na\n");
    assert_eq!(t.listings("new", ITEMS).0, t.listings("new", ITEMS).1);
    assert_eq!(t.listings("a", ITEMS).0, t.listings("a", ITEMS).1);
    let fmt = "{archive}|{comment}|{time}{NL}";
    let get = |e: &Env| {
        e.run_at(&t.borg, ["list", "--format", fmt, "repo"])
            .ok()
            .out()
    };
    assert_eq!(get(&t.b), get(&t.h));
    assert!(get(&t.h).contains("new|recreated|Thu, 2020-01-02 03:04:05"));
    t.check_hoard();
}

#[test]
fn recreate_dry_run_changes_nothing() {
    let Some(borg) = borg14() else { return };
    let t = Twin::new(borg, tree, &[&[]], "repokey");
    let ids = |e: &Env| {
        e.run_at(&t.borg, ["list", "--format", "{archive} {id}{NL}", "repo"])
            .ok()
            .out()
    };
    let before = ids(&t.h);
    let (rb, rh) = t.recreate(&["-n", "--list", "repo", "-e", "input/file1"]);
    rb.ok();
    let rh = rh.ok();
    assert_eq!(ids(&t.h), before);
    assert!(rh.stderr.contains("x input/file1\n"), "{}", rh.stderr);
    assert!(rh.stderr.contains("- input/dir2/file2\n"), "{}", rh.stderr);
    assert_eq!(t.archives().0, t.archives().1);
    t.check_hoard();
}

#[test]
fn recreate_refusals_match_borg() {
    let Some(borg) = borg14() else { return };
    let t = Twin::new(borg, tree, &[&[]], "repokey");
    for (args, needle) in [
        (
            vec!["repo", "--target=x"],
            "--target: Need to specify single archive",
        ),
        (vec!["repo::a"], "Nothing to do. Archive was not processed."),
        (vec!["repo::nope", "-e", "x"], "Archive nope does not exist"),
    ] {
        let (rb, rh) = t.recreate(&args);
        assert_eq!(rb.code, 2, "{args:?}: {}", rb.stderr);
        assert_eq!(rh.code, 2, "{args:?}: {}", rh.stderr);
        assert!(rb.stderr.contains(needle), "{}", rb.stderr);
        assert!(rh.stderr.contains(needle), "{args:?}: {}", rh.stderr);
    }
    // A temporary archive of an interrupted recreate is refused.
    t.h.hoard(["rename", "repo::a", "a.recreate"]).ok();
    let r = t.h.hoard(["recreate", "repo::a.recreate", "-e", "x"]);
    assert_eq!(r.code, 2);
    assert!(r
        .stderr
        .contains("Refusing to work on temporary archive of prior recreate: a.recreate"));
    // ... and skipped in whole-repository runs.
    let r = t.h.hoard(["recreate", "repo", "-e", "x"]).ok();
    assert_eq!(r.out(), "");
}

#[test]
fn recreate_parallel_recompress_equals_sequential_and_borg() {
    let Some(borg) = borg14() else { return };
    let mut t = Twin::new(
        borg,
        tree,
        &[&["-C", "none", "--chunker-params", "7,9,8,127"]],
        "repokey",
    );
    // A third copy, recreated by hoard on one thread.
    let mut seq = Env::new();
    let st = Command::new("cp")
        .arg("-a")
        .arg(t.h.path().join("repo"))
        .arg(seq.path().join("repo"))
        .status()
        .expect("cp");
    assert!(st.success());
    seq.set("HOARD_WORKERS", "1");
    t.h.set("HOARD_WORKERS", "3");
    let args = ["recreate", "repo", "-C", "zstd,3", "--recompress=always"];
    seq.hoard(args).ok();
    let (rb, rh) = t.recreate(&args[1..]);
    rb.ok();
    rh.ok();
    let (lb, lh) = t.listings("a", ITEMS);
    assert_eq!(lb, lh);
    let fmt = "{path} {size} {csize} {num_chunks} {sha256}{NL}";
    let par =
        t.h.run_at(&t.borg, ["list", "--format", fmt, "repo::a"])
            .ok();
    let one = seq
        .run_at(&t.borg, ["list", "--format", fmt, "repo::a"])
        .ok();
    assert_eq!(par.out(), one.out());
    assert!(par.out().contains("input/file1 200000 "), "{}", par.out());
    t.check_hoard();
    seq.run_at(&t.borg, ["check", "--verify-data", "repo"]).ok();
}
