//! Archives and repositories built to escape or exhaust whoever reads them (issue 15, items 7,
//! 10 and 13): `..` and absolute paths, symlinked parents, hardlinks into or through places
//! outside the target, type changes of one path, device nodes and FIFOs, sizes the chunks do
//! not hold, missing chunks, and crafted `hints`/`index`/`config` files. Every case checks
//! that nothing is written (or linked) outside the target, that the error is one line, and the
//! exit code; where borg 1.4.5 is at hand, the same archive is given to it and its exit code
//! (and key words of its message) compared.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::craft::{
    self, dir_item, file_item, init_repo, listing, slave_item, symlink_item, write_archive, Content,
};
use common::{assert_one_line_error, borg14, Env, Run};
use hoard::archive::item::ChunkRef;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Most a run may write to stdout or to a `*.tar` file named in its arguments.
const OUTPUT_LIMIT: u64 = 64 << 20;

/// Runs `program` (hoard when None) in `dir` with `args`, killing it after `limit` or once
/// its stdout or a `*.tar` argument grows past [`OUTPUT_LIMIT`]: a program that writes
/// without end must fail the test, not fill the disk.
fn run_limited(
    env: &Env,
    program: Option<&Path>,
    dir: &Path,
    args: &[&str],
    limit: Duration,
) -> Run {
    let mut cmd = match program {
        None => env.hoard_cmd(),
        Some(p) => env.command_for(s(p)),
    };
    let errf = tempfile::NamedTempFile::new().expect("tmp");
    let outf = tempfile::NamedTempFile::new().expect("tmp");
    let mut child = cmd
        .current_dir(dir)
        .args(args)
        .stdout(outf.reopen().expect("reopen"))
        .stderr(errf.reopen().expect("reopen"))
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    let mut watched: Vec<PathBuf> = args
        .iter()
        .filter(|a| a.ends_with(".tar"))
        .map(|a| dir.join(a))
        .collect();
    watched.push(outf.path().to_path_buf());
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        for w in &watched {
            let len = std::fs::metadata(w).map(|m| m.len()).unwrap_or(0);
            if len > OUTPUT_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(w);
                panic!("{args:?} wrote more than {len} bytes to {}", w.display());
            }
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read(outf.path()).expect("read stdout");
    assert!(
        (stdout.len() as u64) < OUTPUT_LIMIT,
        "{args:?} wrote {} bytes to stdout",
        stdout.len()
    );
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: std::fs::read_to_string(errf.path()).expect("read stderr"),
    }
}

fn hoard_in(env: &Env, dir: &Path, args: &[&str]) -> Run {
    run_limited(env, None, dir, args, Duration::from_secs(60))
}

fn fresh(env: &Env, name: &str) -> PathBuf {
    let d = env.path().join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// A directory outside every target, holding `secret` (one link).
fn outside(env: &Env) -> PathBuf {
    let o = fresh(env, "outside");
    std::fs::write(o.join("secret"), b"outside secret").expect("write");
    o
}

fn assert_outside_untouched(o: &Path) {
    assert_eq!(listing(o), vec!["secret".to_string()], "outside changed");
    let m = std::fs::symlink_metadata(o.join("secret")).expect("secret");
    assert_eq!(m.nlink(), 1, "a hard link to the outside file was made");
    assert_eq!(
        std::fs::read(o.join("secret")).expect("read"),
        b"outside secret"
    );
}

/// Lines of `stderr` that start with `path: `.
fn lines_for<'a>(stderr: &'a str, path: &str) -> Vec<&'a str> {
    stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{path}: ")))
        .collect()
}

// ---- item 7: sizes the chunks do not hold -------------------------------------------------

/// `size` of the hostile item: 2^63 - 1 for five bytes of data.
const HUGE: u64 = i64::MAX as u64;

fn huge_size_archive(env: &Env) -> (PathBuf, String) {
    let repo = init_repo(env, "repo");
    let mut small = file_item(b"small");
    small.size = Some(HUGE);
    let arch = write_archive(
        env,
        &repo,
        "huge",
        vec![
            (file_item(b"before"), Content::Bytes(b"fine".to_vec())),
            (small, Content::Bytes(b"hello".to_vec())),
            (file_item(b"after"), Content::Bytes(b"fine too".to_vec())),
        ],
    );
    (repo, arch)
}

#[test]
fn export_tar_stops_where_the_chunks_end() {
    let env = Env::new();
    let (_repo, arch) = huge_size_archive(&env);
    let tar = env.path().join("out.tar");
    let r = hoard_in(&env, env.path(), &["export-tar", &arch, s(&tar)]).expect_code(2);
    assert_one_line_error(
        &r.stderr,
        "small: unexpected end of data: size 9223372036854775807, chunks size 5",
    );
    let len = std::fs::metadata(&tar).expect("tar").len();
    assert!(len < 64 * 1024, "export-tar wrote {len} bytes");
    // to a pipe too (the report: 35 GB in 10 s)
    let r = hoard_in(&env, env.path(), &["export-tar", &arch, "-"]).expect_code(2);
    assert!(r.stdout.len() < 64 * 1024, "{} bytes", r.stdout.len());
    if let Some(b14) = borg14() {
        let r = run_limited(
            &env,
            Some(&b14),
            env.path(),
            &["export-tar", &arch, "borg.tar"],
            Duration::from_secs(60),
        );
        assert_eq!(r.code, 2, "borg 1.4: {}", r.stderr);
        assert!(r.stderr.contains("unexpected end of data"), "{}", r.stderr);
    }
}

#[test]
fn extract_writes_only_what_the_chunks_hold() {
    let env = Env::new();
    let (_repo, arch) = huge_size_archive(&env);
    for (name, extra) in [("plain", None), ("sparse", Some("--sparse"))] {
        let dest = fresh(&env, name);
        let mut args = vec!["extract", arch.as_str()];
        args.extend(extra);
        let r = hoard_in(&env, &dest, &args).expect_code(1);
        assert_eq!(
            lines_for(&r.stderr, "small"),
            vec!["small: Size inconsistency detected: size 9223372036854775807, chunks size 5"],
            "{}",
            r.stderr
        );
        assert_eq!(std::fs::read(dest.join("small")).expect("small"), b"hello");
        assert_eq!(
            std::fs::read(dest.join("after")).expect("after"),
            b"fine too"
        );
    }
    // --stdout and --progress (whose total is the sum of the sizes) as well
    let dest = fresh(&env, "stdout");
    let r = hoard_in(&env, &dest, &["extract", "--stdout", &arch, "small"]).expect_code(1);
    assert_eq!(r.stdout, b"hello");
    let r = hoard_in(&env, &dest, &["extract", "--progress", &arch]).expect_code(1);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    if let Some(b14) = borg14() {
        let dest = fresh(&env, "borg");
        let r = run_limited(
            &env,
            Some(&b14),
            &dest,
            &["extract", &arch],
            Duration::from_secs(60),
        );
        assert_eq!(r.code, 1, "borg 1.4: {}", r.stderr);
        // borg 1.4.5 says only "small: backup error" here
        assert_eq!(lines_for(&r.stderr, "small").len(), 1, "{}", r.stderr);
        assert_eq!(std::fs::read(dest.join("small")).expect("small"), b"hello");
    }
}

// ---- item 10: a hardlink through a parent replaced by a symlink --------------------------

/// `x/d/f` (a hardlink master) is extracted, then removed by a second item at the same path
/// (a slave of itself, whose link then fails), so `x/d` is empty and becomes a symlink to the outside
/// directory, and the slave `x/s` is linked to the remembered master path `d/f`, which now
/// resolves outside.
fn replaced_parent_archive(env: &Env, outside: &Path) -> String {
    let repo = init_repo(env, "repo");
    let mut master = file_item(b"x/d/f");
    master.hardlink_master = Some(true);
    write_archive(
        env,
        &repo,
        "evil",
        vec![
            // no directory items: borg would re-make `x/d` when it leaves that directory,
            // before `x/s`, which hides the attack from it
            (master, Content::Bytes(b"inside".to_vec())),
            // a slave of itself at the master's path: the path is cleared for it, then its
            // link to the (now removed) master fails
            (slave_item(b"x/d/f", b"x/d/f"), Content::Keep),
            (
                symlink_item(b"x/d", outside.as_os_str().as_encoded_bytes()),
                Content::Keep,
            ),
            (slave_item(b"x/s", b"x/d/f"), Content::Keep),
        ],
    )
}

#[test]
fn partial_extract_never_links_through_a_replaced_parent() {
    let env = Env::new();
    let out = outside(&env);
    std::fs::write(out.join("f"), b"outside f").expect("write");
    let arch = replaced_parent_archive(&env, &out);
    let check_outside = || {
        let m = std::fs::metadata(out.join("f")).expect("f");
        assert_eq!(m.nlink(), 1, "the slave was linked to the outside file");
        assert_eq!(std::fs::read(out.join("f")).expect("f"), b"outside f");
    };
    for (name, args) in [
        ("strip", vec!["--strip-components", "1"]),
        ("paths", vec![]),
    ] {
        let dest = fresh(&env, name);
        let mut all = vec!["extract"];
        all.extend(args.iter().copied());
        all.push(&arch);
        if name == "paths" {
            all.extend(["x/d", "x/s"]);
        }
        let r = hoard_in(&env, &dest, &all).expect_code(1);
        check_outside();
        assert_eq!(
            lines_for(&r.stderr, "x/s"),
            vec![
                "x/s: not extracted, hardlink source path is unsafe (malicious or corrupted archive)"
            ],
            "{}",
            r.stderr
        );
        let slave = if name == "strip" { "s" } else { "x/s" };
        assert!(!dest.join(slave).exists(), "{name}: slave was made");
    }
    check_outside();
    if let Some(b14) = borg14() {
        let dest = fresh(&env, "borg");
        let r = run_limited(
            &env,
            Some(&b14),
            &dest,
            &["extract", "--strip-components", "1", &arch],
            Duration::from_secs(60),
        );
        check_outside();
        assert_eq!(r.code, 1, "borg 1.4: {}", r.stderr);
        assert!(r.stderr.contains("x/s: "), "{}", r.stderr);
    }
}

#[test]
fn partial_extract_still_links_hardlinks() {
    let env = Env::new();
    let repo = init_repo(&env, "repo");
    let mut master = file_item(b"top/a/f");
    master.hardlink_master = Some(true);
    let arch = write_archive(
        &env,
        &repo,
        "links",
        vec![
            (dir_item(b"top"), Content::Keep),
            (dir_item(b"top/a"), Content::Keep),
            (master, Content::Bytes(b"linked".to_vec())),
            (slave_item(b"top/a/g", b"top/a/f"), Content::Keep),
            (slave_item(b"top/h", b"top/a/f"), Content::Keep),
        ],
    );
    for (name, args) in [
        ("full", vec![]),
        ("strip", vec!["--strip-components", "1"]),
        ("paths", vec!["top/a/g", "top/h"]),
    ] {
        let dest = fresh(&env, name);
        let mut all = vec!["extract"];
        if name == "strip" {
            all.extend(args.iter().copied());
            all.push(&arch);
        } else {
            all.push(&arch);
            all.extend(args.iter().copied());
        }
        hoard_in(&env, &dest, &all).expect_code(0);
        let base = if name == "strip" {
            dest.clone()
        } else {
            dest.join("top")
        };
        let g = std::fs::metadata(base.join("a/g")).expect("g");
        let h = std::fs::metadata(base.join("h")).expect("h");
        assert_eq!(g.ino(), h.ino(), "{name}: not one hardlink group");
        assert_eq!(std::fs::read(base.join("h")).expect("h"), b"linked");
        if name != "paths" {
            let f = std::fs::metadata(base.join("a/f")).expect("f");
            assert_eq!((f.ino(), f.nlink()), (g.ino(), 3), "{name}");
        }
    }
}

// ---- item 13: archives built to escape the target ----------------------------------------

#[test]
fn dotdot_absolute_and_symlinked_parents_stay_inside() {
    let env = Env::new();
    let out = outside(&env);
    let repo = init_repo(&env, "repo");
    // (paths starting with `../` or `/` end the extraction: see the next test)
    let arch = write_archive(
        &env,
        &repo,
        "evil",
        vec![
            (file_item(b"ok"), Content::Bytes(b"fine".to_vec())),
            (
                file_item(b"d/../../outside/mid"),
                Content::Bytes(b"2".to_vec()),
            ),
            (
                symlink_item(b"a", out.as_os_str().as_encoded_bytes()),
                Content::Keep,
            ),
            (file_item(b"a/f"), Content::Bytes(b"4".to_vec())),
            (dir_item(b"a/sub"), Content::Keep),
            (file_item(b"a/sub/g"), Content::Bytes(b"5".to_vec())),
            (symlink_item(b"up", b".."), Content::Keep),
            (
                file_item(b"up/outside/viaup"),
                Content::Bytes(b"6".to_vec()),
            ),
            (file_item(b"ok2"), Content::Bytes(b"fine".to_vec())),
        ],
    );
    for (name, strip) in [("plain", "0"), ("strip", "1")] {
        let dest = fresh(&env, &format!("{name}/t"));
        let mut args = vec!["extract", arch.as_str()];
        if strip != "0" {
            // stripping one component turns `d/../../outside/mid` into `../../outside/mid`,
            // which ends the extraction as borg 1.4.5's exception does
            args.extend(["--strip-components", strip]);
        }
        let r = hoard_in(&env, &dest, &args).expect_code(if strip == "0" { 1 } else { 2 });
        assert_outside_untouched(&out);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        for line in r.stderr.lines() {
            assert!(line.contains(": "), "not an item line: {line}");
        }
        if strip == "0" {
            for p in [
                "d/../../outside/mid",
                "a/f",
                "a/sub",
                "a/sub/g",
                "up/outside/viaup",
            ] {
                assert_eq!(lines_for(&r.stderr, p).len(), 1, "{p}:\n{}", r.stderr);
            }
            assert_eq!(std::fs::read(dest.join("ok2")).expect("ok2"), b"fine");
            assert_eq!(
                std::fs::read_link(dest.join("up")).expect("up"),
                Path::new("..")
            );
        }
        assert!(
            !env.path().join(name).join("outside").exists(),
            "wrote beside the target"
        );
    }
    if let Some(b14) = borg14() {
        // borg 1.4 refuses the same items, one warning each, and goes on
        let dest = fresh(&env, "borg");
        let r = run_limited(
            &env,
            Some(&b14),
            &dest,
            &["extract", &arch],
            Duration::from_secs(60),
        );
        assert_outside_untouched(&out);
        assert_eq!(r.code, 1, "borg 1.4: {}", r.stderr);
        assert_eq!(std::fs::read(dest.join("ok2")).expect("ok2"), b"fine");
    }
}

/// An item path starting with `/` or `../` (also after `--strip-components`) is not a
/// per-item warning in borg 1.4.5: `extract_item` raises `Exception('Path should be relative
/// and local')`, which ends the extraction with "Local Exception" and exit code 2 in both
/// exit-code modes (msgid `Exception`); items before it are extracted, items after it not.
#[test]
fn paths_not_relative_and_local_end_the_extraction_like_borg14() {
    let env = Env::new();
    let out = outside(&env);
    let repo = init_repo(&env, "repo");
    let abs = out.join("abs");
    let items = |bad: &[u8]| {
        vec![
            (dir_item(b"d"), Content::Keep),
            (file_item(b"d/ok"), Content::Bytes(b"fine".to_vec())),
            (file_item(bad), Content::Bytes(b"1".to_vec())),
            (file_item(b"after"), Content::Bytes(b"not reached".to_vec())),
        ]
    };
    let dotdot = write_archive(&env, &repo, "dotdot", items(b"../outside/dotdot"));
    let absolute = write_archive(
        &env,
        &repo,
        "absolute",
        items(abs.as_os_str().as_encoded_bytes()),
    );
    // `x/../outside/stripped` loses `x/` to --strip-components 1
    let stripped = write_archive(&env, &repo, "stripped", items(b"x/../outside/stripped"));
    let cases: [(&str, &str, &[&str], String); 3] = [
        ("dotdot", &dotdot, &[], "../outside/dotdot".into()),
        ("absolute", &absolute, &[], abs.display().to_string()),
        (
            "stripped",
            &stripped,
            &["--strip-components", "1"],
            "../outside/stripped".into(),
        ),
    ];
    for (name, arch, extra, bad) in cases {
        for modern in [false, true] {
            let mut runs: Vec<(&str, Option<&Path>)> = vec![("hoard", None)];
            let b14 = borg14();
            if let Some(b) = b14.as_deref() {
                runs.push(("borg", Some(b)));
            }
            for (who, program) in runs {
                let dest = fresh(&env, &format!("{name}-{modern}-{who}/t"));
                let mut args = vec!["--log-json", "extract", "--list"];
                args.extend(extra);
                args.push(arch);
                let mut cmd = match program {
                    None => env.hoard_cmd(),
                    Some(p) => env.command_for(s(p)),
                };
                if modern {
                    cmd.env("BORG_EXIT_CODES", "modern");
                }
                let o = cmd.current_dir(&dest).args(&args).output().expect("run");
                let stderr = String::from_utf8_lossy(&o.stderr);
                let what = format!("{who} {name} modern={modern}: {stderr}");
                assert_eq!(o.status.code(), Some(2), "{what}");
                assert_outside_untouched(&out);
                // the items before it are extracted, the one after it is not
                if name != "stripped" {
                    assert_eq!(std::fs::read(dest.join("d/ok")).expect("d/ok"), b"fine");
                }
                assert!(!dest.join("after").exists(), "{what}");
                let records: Vec<serde_json::Value> = stderr
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("a JSON line"))
                    .collect();
                // --list named the item before the refusal
                assert!(
                    records.iter().any(|r| r["message"] == bad.as_str()),
                    "{what}"
                );
                let errors: Vec<&serde_json::Value> = records
                    .iter()
                    .filter(|r| r["levelname"] == "ERROR")
                    .collect();
                assert_eq!(errors[0]["msgid"], "Exception", "{what}");
                let text = errors
                    .iter()
                    .map(|r| r["message"].as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n");
                assert!(text.starts_with("Local Exception"), "{what}");
                assert!(text.contains("Path should be relative and local"), "{what}");
                assert!(
                    records.iter().all(|r| r["levelname"] != "WARNING"),
                    "no per-item warning: {what}"
                );
            }
        }
    }
    // the one-line text form
    let dest = fresh(&env, "text/t");
    let r = hoard_in(&env, &dest, &["extract", &dotdot]).expect_code(2);
    assert_one_line_error(
        &r.stderr,
        "Local Exception: Path should be relative and local: ../outside/dotdot",
    );
}

#[test]
fn hardlinks_to_outside_or_missing_sources_are_refused() {
    let env = Env::new();
    let out = outside(&env);
    let repo = init_repo(&env, "repo");
    let abs = out.join("secret");
    let arch = write_archive(
        &env,
        &repo,
        "evil",
        vec![
            (slave_item(b"dotdot", b"../outside/secret"), Content::Keep),
            (
                slave_item(b"absolute", abs.as_os_str().as_encoded_bytes()),
                Content::Keep,
            ),
            (
                symlink_item(b"l", out.as_os_str().as_encoded_bytes()),
                Content::Keep,
            ),
            (slave_item(b"vialink", b"l/secret"), Content::Keep),
            (slave_item(b"missing", b"nowhere/none"), Content::Keep),
            (file_item(b"ok"), Content::Bytes(b"fine".to_vec())),
        ],
    );
    for (name, extra) in [
        ("full", vec![]),
        ("strip", vec!["--strip-components", "0"]),
        ("paths", vec!["dotdot", "absolute", "vialink", "missing"]),
    ] {
        let dest = fresh(&env, name);
        let mut args = vec!["extract", arch.as_str()];
        args.extend(extra.iter().copied());
        let r = hoard_in(&env, &dest, &args).expect_code(1);
        assert_outside_untouched(&out);
        for p in ["dotdot", "absolute", "vialink"] {
            if p == "vialink" && name == "paths" {
                // `l` is not selected: the source is simply missing
                assert_eq!(lines_for(&r.stderr, p).len(), 1, "{}", r.stderr);
                continue;
            }
            assert_eq!(
                lines_for(&r.stderr, p),
                vec![format!(
                    "{p}: not extracted, hardlink source path is unsafe (malicious or corrupted archive)"
                )],
                "{name}"
            );
            assert!(!dest.join(p).exists(), "{name}: {p} was made");
        }
        assert_eq!(lines_for(&r.stderr, "missing").len(), 1, "{}", r.stderr);
        assert!(!dest.join("missing").exists());
    }
}

#[test]
fn type_changes_of_one_path_replace_and_never_write_through() {
    let env = Env::new();
    let repo = init_repo(&env, "repo");
    let mut fifo = file_item(b"pipe");
    fifo.mode = 0o010644;
    let arch = write_archive(
        &env,
        &repo,
        "types",
        vec![
            (file_item(b"p"), Content::Bytes(b"a file first".to_vec())),
            (dir_item(b"p"), Content::Keep),
            (file_item(b"p/inner"), Content::Bytes(b"inner".to_vec())),
            (dir_item(b"q"), Content::Keep),
            (file_item(b"q/child"), Content::Bytes(b"child".to_vec())),
            // a file item where a non-empty directory is: refused for that item
            (file_item(b"q"), Content::Bytes(b"file over dir".to_vec())),
            // a FIFO, then a file of the same name: the file replaces it (opening the FIFO
            // for writing would block for ever)
            (fifo, Content::Keep),
            (
                file_item(b"pipe"),
                Content::Bytes(b"not into the fifo".to_vec()),
            ),
        ],
    );
    let dest = fresh(&env, "dest");
    let r = hoard_in(&env, &dest, &["extract", &arch]).expect_code(1);
    assert_eq!(
        std::fs::read(dest.join("p/inner")).expect("inner"),
        b"inner"
    );
    assert!(dest.join("q").is_dir());
    assert_eq!(
        std::fs::read(dest.join("q/child")).expect("child"),
        b"child"
    );
    assert_eq!(lines_for(&r.stderr, "q").len(), 1, "{}", r.stderr);
    let m = std::fs::symlink_metadata(dest.join("pipe")).expect("pipe");
    assert!(m.file_type().is_file());
    assert_eq!(
        std::fs::read(dest.join("pipe")).expect("pipe"),
        b"not into the fifo"
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[test]
fn device_nodes_are_made_as_borg_makes_them() {
    let env = Env::new();
    let repo = init_repo(&env, "repo");
    let mut null = file_item(b"devnull");
    null.mode = 0o020666;
    null.rdev = Some(libc::makedev(1, 3));
    let mut disk = file_item(b"disk");
    disk.mode = 0o060600;
    disk.rdev = Some(libc::makedev(7, 200));
    let arch = write_archive(
        &env,
        &repo,
        "dev",
        vec![
            (null, Content::Keep),
            (disk, Content::Keep),
            // a file over the device: written as a new file, never into the device
            (file_item(b"disk"), Content::Bytes(b"data".to_vec())),
        ],
    );
    let dest = fresh(&env, "dest");
    // SAFETY: plain syscall.
    let root = unsafe { libc::geteuid() } == 0;
    let r = hoard_in(&env, &dest, &["extract", &arch]);
    if root {
        r.expect_code(0);
        let m = std::fs::symlink_metadata(dest.join("devnull")).expect("devnull");
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), libc::makedev(1, 3));
        let d = std::fs::symlink_metadata(dest.join("disk")).expect("disk");
        assert!(d.file_type().is_file());
        assert_eq!(std::fs::read(dest.join("disk")).expect("disk"), b"data");
    } else {
        // borg: mknod fails with EPERM for a non-root user, a warning per device
        let r = r.expect_code(1);
        assert_eq!(lines_for(&r.stderr, "devnull").len(), 1, "{}", r.stderr);
    }
}

#[test]
fn missing_chunks_are_one_line_per_file_or_command() {
    let env = Env::new();
    let repo = init_repo(&env, "repo");
    let arch = write_archive(
        &env,
        &repo,
        "holes",
        vec![
            (file_item(b"one"), Content::Bytes(b"first".to_vec())),
            (
                file_item(b"lost"),
                Content::Bytes(b"this chunk goes".to_vec()),
            ),
            (file_item(b"three"), Content::Bytes(b"third".to_vec())),
        ],
    );
    let id = craft::chunk_id(&env, &repo, b"this chunk goes");
    craft::delete_object(&repo, &id);
    let dest = fresh(&env, "dest");
    let r = hoard_in(&env, &dest, &["extract", &arch]).expect_code(1);
    assert_eq!(lines_for(&r.stderr, "lost").len(), 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(std::fs::read(dest.join("three")).expect("three"), b"third");
    // export-tar makes up no data: it stops, as borg does
    let r = hoard_in(&env, env.path(), &["export-tar", &arch, "out.tar"]).expect_code(2);
    assert_one_line_error(&r.stderr, "lost: ");
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    if let Some(b14) = borg14() {
        let r = run_limited(
            &env,
            Some(&b14),
            env.path(),
            &["export-tar", &arch, "borg.tar"],
            Duration::from_secs(60),
        );
        assert_eq!(r.code, 2, "borg 1.4: {}", r.stderr);
    }
}

#[test]
fn chunk_lists_claiming_huge_sizes_stay_bounded() {
    // a chunk list naming one 4-byte chunk many times with a claimed size of 4 GiB - 1 each
    let env = Env::new();
    let repo = init_repo(&env, "repo");
    let arch0 = write_archive(
        &env,
        &repo,
        "base",
        vec![(file_item(b"seed"), Content::Bytes(b"abcd".to_vec()))],
    );
    let _ = arch0;
    let id = craft::chunk_id(&env, &repo, b"abcd");
    let mut liar = file_item(b"liar");
    liar.chunks = Some(vec![
        ChunkRef {
            id,
            size: u32::MAX,
            csize: 0,
        };
        1000
    ]);
    let arch = write_archive(&env, &repo, "liar", vec![(liar, Content::Keep)]);
    let dest = fresh(&env, "dest");
    let r = hoard_in(&env, &dest, &["extract", &arch]).expect_code(0);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert_eq!(
        std::fs::read(dest.join("liar")).expect("liar"),
        b"abcd".repeat(1000)
    );
    let r = hoard_in(&env, env.path(), &["export-tar", &arch, "out.tar"]).expect_code(2);
    assert_one_line_error(&r.stderr, "liar: unexpected end of data");
    let len = std::fs::metadata(env.path().join("out.tar"))
        .expect("tar")
        .len();
    assert!(len < 1 << 20, "{len}");
}

#[test]
fn mount_shows_hostile_items_without_escaping_or_padding() {
    if !common::fuse_available() {
        return;
    }
    let env = Env::new();
    let (repo, _arch) = huge_size_archive(&env);
    let out = outside(&env);
    let evil = write_archive(
        &env,
        &repo,
        "evil",
        vec![
            (file_item(b"../escape"), Content::Bytes(b"e".to_vec())),
            (file_item(b"d/../../x"), Content::Bytes(b"x".to_vec())),
            (
                symlink_item(b"a", out.as_os_str().as_encoded_bytes()),
                Content::Keep,
            ),
            (file_item(b"a/f"), Content::Bytes(b"f".to_vec())),
            (file_item(b"ok"), Content::Bytes(b"ok".to_vec())),
        ],
    );
    let mnt = fresh(&env, "mnt");
    env.hoard(["mount", s(&repo), s(&mnt)]).ok();
    let unmount = || {
        let _ = Command::new("fusermount3").arg("-uz").arg(&mnt).status();
    };
    let data = std::fs::read(mnt.join("huge/small"));
    let names = listing(&mnt.join("evil"));
    let a = std::fs::read_link(mnt.join("evil/a"));
    unmount();
    assert_eq!(data.expect("read small"), b"hello");
    assert!(
        !names.iter().any(|n| n.split('/').any(|c| c == "..")),
        "{names:?}"
    );
    assert!(names.contains(&"ok".to_string()), "{names:?}");
    // `a` is the archive's symlink (the kernel follows it, as for borg mount); the mount
    // itself never writes
    assert_eq!(a.expect("a is a symlink"), out);
    assert_outside_untouched(&out);
    let _ = evil;
}

// ---- item 13: crafted repository files ---------------------------------------------------

/// The number of the last transaction (the highest `index.N`/`hints.N`).
fn last_tid(repo: &Path) -> u32 {
    std::fs::read_dir(repo)
        .expect("repo")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("hints.")?
                .parse()
                .ok()
        })
        .max()
        .expect("hints file")
}

fn small_repo(env: &Env) -> (PathBuf, String) {
    let repo = init_repo(env, "repo");
    let arch = write_archive(
        env,
        &repo,
        "a",
        vec![(file_item(b"f"), Content::Bytes(b"content".to_vec()))],
    );
    (repo, arch)
}

#[test]
fn hints_with_absurd_counts_are_rebuilt_not_trusted() {
    use hoard::repo::hints::Hints;
    let env = Env::new();
    let (repo, arch) = small_repo(&env);
    let tid = last_tid(&repo);
    let mut h = Hints::default();
    h.segments.insert(1, i64::MAX);
    h.compact.insert(1, i64::MAX);
    h.storage_quota_use = u64::MAX;
    let mut bytes = h.encode();
    // encode() writes what it is given: check the values went in
    assert!(bytes.len() > 30);
    std::fs::write(repo.join(format!("hints.{tid}")), &bytes).expect("write hints");
    let _ = std::fs::remove_file(repo.join(format!("integrity.{tid}")));
    // a write transaction (delete + compact) must neither panic nor trust the counts
    let r = hoard_in(&env, env.path(), &["delete", &arch]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("hints file missing or corrupted"),
        "{}",
        r.stderr
    );
    let r = hoard_in(&env, env.path(), &["compact", s(&repo)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    hoard_in(&env, env.path(), &["check", s(&repo)]).expect_code(0);
    bytes.clear();
}

#[test]
fn index_with_absurd_header_or_locations_gives_one_line() {
    use hoard::repo::index::NsIndex;
    let env = Env::new();
    let (repo, arch) = small_repo(&env);
    let tid = last_tid(&repo);
    let good = std::fs::read(repo.join(format!("index.{tid}"))).expect("index");
    // writes `bytes` as the index of the last transaction, without its integrity data
    let put_index = |bytes: &[u8]| {
        let tid = last_tid(&repo);
        std::fs::write(repo.join(format!("index.{tid}")), bytes).expect("write index");
        let _ = std::fs::remove_file(repo.join(format!("integrity.{tid}")));
    };

    // a header claiming 2^31-1 entries and buckets: refused, rebuilt from the segments
    let mut bad = good[..18].to_vec();
    bad[8..12].copy_from_slice(&i32::MAX.to_le_bytes());
    bad[12..16].copy_from_slice(&i32::MAX.to_le_bytes());
    put_index(&bad);
    let r = hoard_in(&env, env.path(), &["list", &arch]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.out().lines().count(), 1, "{}", r.out());

    // every entry pointing past the end of a segment that does not exist / of segment 1
    let idx = NsIndex::read(&good).expect("parse index");
    for (seg, off) in [(4_000_000u32, 8u32), (1, 0xFFFF_0000)] {
        let mut crafted = NsIndex::new();
        for (k, _) in idx.iter() {
            let mut v = [0u8; 8];
            v[..4].copy_from_slice(&seg.to_le_bytes());
            v[4..].copy_from_slice(&off.to_le_bytes());
            crafted.insert(*k, v);
        }
        put_index(&crafted.write());
        let r = hoard_in(&env, env.path(), &["list", &arch]);
        assert_eq!(
            r.code,
            2,
            "{seg}/{off}: {}{}{:?}",
            r.out(),
            r.stderr,
            listing(&repo)
        );
        assert_one_line_error(&r.stderr, "");
        if let Some(b14) = borg14() {
            let r = run_limited(
                &env,
                Some(&b14),
                env.path(),
                &["list", &arch],
                Duration::from_secs(60),
            );
            assert_eq!(r.code, 2, "borg 1.4: {}", r.stderr);
        }
    }
}

#[test]
fn config_with_absurd_values_gives_one_line() {
    let env = Env::new();
    let (repo, arch) = small_repo(&env);
    let config = std::fs::read_to_string(repo.join("config")).expect("config");
    let id_line = config
        .lines()
        .find(|l| l.starts_with("id = "))
        .expect("id")
        .to_string();
    let cases: Vec<(String, &str)> = vec![
        (
            config.replace("segments_per_dir = 1000", "segments_per_dir = 0"),
            "segments_per_dir",
        ),
        (
            config.replace(
                "segments_per_dir = 1000",
                "segments_per_dir = 99999999999999999999999",
            ),
            "segments_per_dir",
        ),
        (
            config.replace("segments_per_dir = 1000", "segments_per_dir = -5"),
            "segments_per_dir",
        ),
        (
            regex_replace_line(
                &config,
                "max_segment_size",
                "max_segment_size = 18446744073709551615",
            ),
            "max_segment_size",
        ),
        (
            regex_replace_line(&config, "max_segment_size", "max_segment_size = 1E"),
            "max_segment_size",
        ),
        (config.replace(&id_line, "id = zz"), "id"),
        (config.replace(&id_line, "id = 00"), "id"),
    ];
    for (text, what) in cases {
        std::fs::write(repo.join("config"), &text).expect("write config");
        let r = hoard_in(&env, env.path(), &["list", &arch]);
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert_one_line_error(&r.stderr, "");
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    // a huge (but valid) segments_per_dir is a plain setting: everything goes in dir 0
    std::fs::write(
        repo.join("config"),
        config.replace("segments_per_dir = 1000", "segments_per_dir = 4294967295"),
    )
    .expect("write config");
    let r = hoard_in(&env, env.path(), &["list", &arch]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `text` with the line starting with `key` replaced by `line`.
fn regex_replace_line(text: &str, key: &str, line: &str) -> String {
    text.lines()
        .map(|l| if l.starts_with(key) { line } else { l })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
