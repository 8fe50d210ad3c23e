//! `hoard import-tar` (and `export-tar` read back) with borg 1.4.5 as the oracle: the same
//! tarball imported by both gives the same listing and the same extracted files.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{archive, arg, borg14, tree, Env, Run};

/// Every field `import-tar` sets, in borg 1.4's `list --format`.
const FORMAT: &str =
    "{mode} {user} {group} {uid} {gid} {size} {isomtime} {path} -> {source} {health}{NL}";

/// Runs GNU tar in `dir`.
fn gnu_tar(dir: &Path, args: &[&str]) {
    let st = Command::new("tar")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .expect("run tar");
    assert!(st.success(), "tar {args:?} failed");
}

/// A source tree with every member type tar carries, ns mtimes, long names.
fn source(env: &Env) -> PathBuf {
    let src = env.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    let t = tree::build_full_tree(&src, false);
    tree::set_mtime_ns(&t.join("hello.txt"), 1_600_000_000_123_456_789);
    src
}

/// Imports `tarball` into a fresh repository with hoard and with borg 1.4; returns both
/// listings and the repositories.
fn import_both(
    env: &Env,
    borg: &Path,
    tarball: &Path,
    extra: &[&str],
    tag: &str,
) -> (String, String, PathBuf, PathBuf) {
    let hrepo = env.path().join(format!("h-{tag}"));
    let brepo = env.path().join(format!("b-{tag}"));
    for r in [&hrepo, &brepo] {
        env.run_at(borg, ["init", "-e", "none", arg(r)]).ok();
    }
    let mut args = vec!["import-tar"];
    args.extend_from_slice(extra);
    let ha = archive(&hrepo, "t");
    let ba = archive(&brepo, "t");
    let h = env
        .hoard(args.iter().copied().chain([ha.as_str(), arg(tarball)]))
        .ok();
    let b = env
        .run_at(
            borg,
            args.iter()
                .copied()
                .chain([ba.as_str(), arg(tarball)])
                .collect::<Vec<_>>(),
        )
        .ok();
    assert_eq!(h.out(), b.out(), "import-tar stdout differs");
    // --list lines (stderr) in borg's order, with borg's names (./ kept except for files)
    assert_eq!(h.stderr, b.stderr, "import-tar stderr differs");
    let hl = env
        .run_at(borg, ["list", "--format", FORMAT, &ha])
        .ok()
        .out();
    let bl = env
        .run_at(borg, ["list", "--format", FORMAT, &ba])
        .ok()
        .out();
    (hl, bl, hrepo, brepo)
}

/// Relative path, kind, mode, size, mtime (s), link target and content of every entry.
fn snapshot(root: &Path) -> Vec<String> {
    fn walk(d: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(d)
            .expect("read_dir")
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(root).expect("prefix").display().to_string();
            let ft = md.file_type();
            let extra = if ft.is_file() {
                format!(
                    "{:x?}",
                    &std::fs::read(&p).expect("read")[..md.len().min(64) as usize]
                ) + &format!(" nlink={}", md.nlink())
            } else if ft.is_symlink() {
                std::fs::read_link(&p)
                    .expect("readlink")
                    .display()
                    .to_string()
            } else {
                format!("rdev={}", md.rdev())
            };
            out.push(format!(
                "{rel} {:o} {} {} {extra}",
                md.mode(),
                md.len(),
                md.mtime()
            ));
            if ft.is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

fn extract(env: &Env, borg: &Path, archive: &str, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    let out = env
        .command_at(borg)
        .current_dir(dest)
        .args(["extract", archive])
        .output()
        .expect("extract");
    Run::from(out).ok();
}

#[test]
fn import_tar_matches_borg14_for_gnu_pax_and_dotslash_tars() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    let src = source(&env);
    let tars = env.path().join("tars");
    std::fs::create_dir(&tars).expect("mkdir");
    let cases: [(&str, &[&str]); 6] = [
        ("gnu.tar", &["--format=gnu", "-cf"]),
        ("pax.tar", &["--format=pax", "--xattrs", "-cf"]),
        ("ustar.tar", &["--format=ustar", "-cf"]),
        ("v7.tar", &["--format=v7", "-cf"]),
        ("gnu-sparse.tar", &["--format=gnu", "--sparse", "-cf"]),
        ("pax-sparse.tar", &["--format=pax", "--sparse", "-cf"]),
    ];
    for (i, (name, flags)) in cases.iter().enumerate() {
        let tarball = tars.join(name);
        let mut args: Vec<&str> = flags.to_vec();
        args.push(arg(&tarball));
        // the ./ prefixed variant for the pax tar
        args.push(if i == 1 { "./tree" } else { "tree" });
        // ustar and v7 cannot hold everything; GNU tar then warns and exits 2 but writes the rest
        let _ = Command::new("tar")
            .current_dir(&src)
            .args(&args)
            .stderr(Stdio::null())
            .status();
        assert!(tarball.exists(), "{name} not written");
        let (hl, bl, hrepo, brepo) = import_both(&env, &borg, &tarball, &["--list"], name);
        assert!(hl.lines().count() > 15, "{name}: listing too short:\n{hl}");
        assert_eq!(hl, bl, "{name}: listings differ");
        // paths lose a ./ prefix; hardlink sources keep it, as in borg
        assert!(
            hl.lines()
                .all(|l| !l.split(" -> ").next().unwrap_or("").contains(" ./")),
            "{name}: ./ prefix kept:\n{hl}"
        );
        let hout = env.path().join(format!("x-h-{name}"));
        let bout = env.path().join(format!("x-b-{name}"));
        extract(&env, &borg, &archive(&hrepo, "t"), &hout);
        extract(&env, &borg, &archive(&brepo, "t"), &bout);
        assert_eq!(
            snapshot(&hout),
            snapshot(&bout),
            "{name}: extracted trees differ"
        );
        env.run_at(&borg, ["check", "--verify-data", arg(&hrepo)])
            .ok();
    }
    // the pax tar carries the nanosecond mtime; the GNU one whole seconds
    let (hl, _, _, _) = import_both(&env, &borg, &tars.join("pax.tar"), &[], "pax-again");
    assert!(
        hl.contains("2020-09-13T12:26:40.123457 tree/hello.txt"),
        "{hl}"
    );
}

#[test]
fn import_tar_compressed_stdin_and_ignore_zeros_like_borg14() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("d")).expect("mkdir");
    std::fs::write(src.join("file1"), b"one\n").expect("w");
    std::fs::write(src.join("d/file2"), vec![7u8; 100_000]).expect("w");
    gnu_tar(&src, &["cf", "../a.tar", "file1"]);
    gnu_tar(&src, &["cf", "../b.tar", "d"]);
    gnu_tar(&src, &["czf", "../all.tar.gz", "."]);
    let mut cat = std::fs::read(env.path().join("a.tar")).expect("r");
    cat.extend(std::fs::read(env.path().join("b.tar")).expect("r"));
    let cat_path = env.path().join("cat.tar");
    std::fs::write(&cat_path, &cat).expect("w");

    // without --ignore-zeros the first end-of-archive marker ends the import
    let (hl, bl, _, _) = import_both(&env, &borg, &cat_path, &["--list"], "cat");
    assert_eq!(hl, bl);
    assert!(hl.contains("file1") && !hl.contains("file2"), "{hl}");
    let (hl, bl, _, _) = import_both(
        &env,
        &borg,
        &cat_path,
        &["--list", "--ignore-zeros"],
        "cat-iz",
    );
    assert_eq!(hl, bl);
    assert!(hl.contains("d/file2"), "{hl}");
    // gzip chosen by the suffix
    let (hl, bl, _, _) = import_both(&env, &borg, &env.path().join("all.tar.gz"), &[], "gz");
    assert_eq!(hl, bl);
    assert!(hl.contains("d/file2"), "{hl}");

    // stdin ("-") with an explicit filter
    let repo = env.init_repo("stdin-repo", "none");
    let out = env
        .hoard_cmd()
        .args([
            "import-tar",
            "--tar-filter",
            "gzip -d",
            "--quick-stats",
            &archive(&repo, "s"),
            "-",
        ])
        .stdin(std::fs::File::open(env.path().join("all.tar.gz")).expect("open"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("This archive:") && !err.contains("All archives:"),
        "{err}"
    );
    let l = env
        .run_at(&borg, ["list", "--short", &archive(&repo, "s")])
        .ok()
        .out();
    assert!(l.contains("d/file2"), "{l}");
}

#[test]
fn import_tar_of_hoard_export_tar_matches_borg14() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    let src = source(&env);
    let repo = env.init_repo("repo", "none");
    let out = env
        .hoard_cmd()
        .current_dir(&src)
        .args(["create", &archive(&repo, "a"), "tree"])
        .output()
        .expect("create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tarball = env.path().join("export.tar");
    env.hoard(["export-tar", &archive(&repo, "a"), arg(&tarball)])
        .ok();
    let (hl, bl, _, _) = import_both(&env, &borg, &tarball, &[], "export");
    assert_eq!(hl, bl);
    // the hardlinked group survives: one master, two links to it
    assert_eq!(
        hl.matches("-> tree/links/master").count() + hl.matches("-> tree/dir/third-link").count(),
        2,
        "{hl}"
    );
}

#[test]
fn import_tar_bad_input_fails_with_one_line_like_borg14() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("f"), vec![1u8; 5000]).expect("w");
    gnu_tar(&src, &["cf", "../good.tar", "f"]);
    let good = std::fs::read(env.path().join("good.tar")).expect("r");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", vec![b'x'; 2048]),
        // the member's data ends early
        ("truncated", good[..512 + 1000].to_vec()),
    ];
    for (name, data) in cases {
        let p = env.path().join(format!("{name}.tar"));
        std::fs::write(&p, &data).expect("w");
        let hrepo = env.path().join(format!("h-{name}"));
        env.hoard(["init", "-e", "none", arg(&hrepo)]).ok();
        let h = env.hoard(["import-tar", &archive(&hrepo, "t"), arg(&p)]);
        let brepo = env.path().join(format!("b-{name}"));
        env.run_at(&borg, ["init", "-e", "none", arg(&brepo)]).ok();
        let b = env.run_at(&borg, ["import-tar", &archive(&brepo, "t"), arg(&p)]);
        assert_eq!(
            h.code, b.code,
            "{name}: exit codes differ\nhoard: {}\nborg: {}",
            h.stderr, b.stderr
        );
        assert_eq!(h.code, 2, "{name}");
        assert_eq!(
            h.stderr.lines().filter(|l| !l.trim().is_empty()).count(),
            1,
            "{name}: {}",
            h.stderr
        );
        // no archive is left behind
        let l = env.hoard(["list", arg(&hrepo)]).ok().out();
        assert!(l.trim().is_empty(), "{name}: {l}");
    }
}

#[test]
fn import_tar_of_a_dot_tar_extracts_cleanly() {
    // `tar cf x.tar .` makes a `.` member; borg 1.4 imports it as the item `.`, and
    // extracting it must not fail ("Path should be relative and local" before the fix)
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("d")).expect("mkdir");
    std::fs::write(src.join("d/f"), b"content\n").expect("w");
    gnu_tar(&src, &["cf", "../dot.tar", "."]);
    let (hl, bl, hrepo, _) =
        import_both(&env, &borg, &env.path().join("dot.tar"), &["--list"], "dot");
    assert_eq!(hl, bl);
    assert!(hl.lines().any(|l| l.contains(" . -> ")), "{hl}");
    let out = env.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let r = env
        .hoard_cmd()
        .current_dir(&out)
        .args(["extract", &archive(&hrepo, "t")])
        .output()
        .expect("extract");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(std::fs::read(out.join("d/f")).expect("read"), b"content\n");
}
