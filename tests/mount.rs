//! `hoard mount` / `hoard umount`: archives made by hoard and by borg browsed through FUSE and
//! compared with their source trees, large files read at random offsets, repository and
//! `versions` views (checked against the real `borg mount` when its llfuse is installed),
//! damaged files, remounting, the memory bound, and bad input.
//!
//! These tests need `/dev/fuse` and `fusermount3` (Debian package `fuse3`); without them they
//! fail with a clear message unless `HOARD_SKIP_FUSE=1` is set.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fuse_available, tree, Env};

/// True when the real `borg mount` can run (borg's interpreter has llfuse).
fn borg_mount_available() -> bool {
    let python = std::fs::read_to_string(
        Command::new("sh")
            .args(["-c", "command -v borg"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
    )
    .ok()
    .and_then(|s| {
        s.lines()
            .next()
            .and_then(|l| l.strip_prefix("#!"))
            .map(|l| l.split_whitespace().next().unwrap_or("python3").to_string())
    })
    .unwrap_or_else(|| "python3".into());
    Command::new(python)
        .args(["-c", "import llfuse"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn is_mounted(p: &Path) -> bool {
    let canon = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(canon.to_str().unwrap_or("")))
}

/// Unmounts (lazily) on drop, so a failing test leaves no mount behind.
struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.0).status();
        }
    }
}

fn run_in(env: &Env, dir: &Path, program: &str, args: &[&str]) -> common::Run {
    let mut cmd = if program == "hoard" {
        env.hoard_cmd()
    } else {
        env.borg_cmd()
    };
    let out = cmd
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run program");
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mkdir(env: &Env, name: &str) -> PathBuf {
    let d = env.path().join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Mounts (daemonized) and returns a guard; asserts the mountpoint is ready on return.
/// The mountpoint goes where `args` has `MNT`, else last.
fn mount(env: &Env, args: &[&str], mnt: &Path) -> Guard {
    let mut all = vec!["mount"];
    all.extend(args.iter().map(|a| if *a == "MNT" { s(mnt) } else { a }));
    if !args.contains(&"MNT") {
        all.push(s(mnt));
    }
    env.hoard(&all).ok();
    assert!(
        is_mounted(mnt),
        "{} is not a mountpoint when `hoard mount` returned",
        mnt.display()
    );
    Guard(mnt.to_path_buf())
}

fn umount(env: &Env, mnt: &Path) {
    env.hoard(["umount", s(mnt)]).ok();
    assert!(!is_mounted(mnt), "still mounted after hoard umount");
    let left: Vec<_> = std::fs::read_dir(mnt).expect("readdir").collect();
    assert!(left.is_empty(), "mountpoint not empty after umount");
}

/// The source tree's view as the mount can show it: borg mount exposes xattrs but not ACLs.
fn scan_without_acls(root: &Path) -> BTreeMap<OsString, tree::Entry> {
    let mut m = tree::scan(root);
    for e in m.values_mut() {
        e.xattrs.retain(|k, _| !k.starts_with(b"system.posix_acl_"));
    }
    m
}

fn assert_mount_matches(src: &Path, mounted: &Path) {
    let a = scan_without_acls(src);
    let b = tree::scan(mounted);
    let mut diffs = Vec::new();
    for (k, ea) in &a {
        match b.get(k) {
            None => diffs.push(format!("missing in mount: {}", k.to_string_lossy())),
            Some(eb) if ea != eb => diffs.push(format!(
                "differs: {}\n  source: {ea:?}\n  mount:  {eb:?}",
                k.to_string_lossy()
            )),
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            diffs.push(format!("extra in mount: {}", k.to_string_lossy()));
        }
    }
    assert!(diffs.is_empty(), "mount differs:\n{}", diffs.join("\n"));
    // link counts: the group of three hardlinks
    for p in ["links/master", "links/second", "dir/third-link"] {
        let md = std::fs::symlink_metadata(mounted.join(p)).expect("lstat");
        assert_eq!(md.nlink(), 3, "link count of {p}");
    }
    let ino = |p: &str| {
        std::fs::symlink_metadata(mounted.join(p))
            .expect("lstat")
            .ino()
    };
    assert_eq!(ino("links/master"), ino("dir/third-link"));
    assert_eq!(
        std::fs::read_link(mounted.join("links/rel-symlink")).expect("readlink"),
        Path::new("../hello.txt")
    );
    assert_eq!(
        tree::xattrs(&mounted.join("hello.txt")).get(&b"user.empty"[..]),
        Some(&Vec::new())
    );
}

fn check_archive_made_by(program: &str) {
    if !fuse_available() || (program == "borg" && !common::borg_available()) {
        return;
    }
    let env = Env::new();
    let src = mkdir(&env, "src");
    tree::build_full_tree(&src, true);
    let repo = env.path().join("repo");
    run_in(&env, &src, program, &["init", "-e", "repokey", s(&repo)]).ok();
    let arch = format!("{}::a", repo.display());
    run_in(&env, &src, program, &["create", &arch, "tree"]).ok();
    let mnt = mkdir(&env, "mnt");
    let _g = mount(&env, &[&arch], &mnt);
    assert_mount_matches(&src.join("tree"), &mnt.join("tree"));
    // the mount is read-only
    assert!(std::fs::write(mnt.join("tree/new"), b"x").is_err());
    umount(&env, &mnt);
}

#[test]
fn mounted_hoard_archive_matches_the_source_tree() {
    check_archive_made_by("hoard");
}

#[test]
fn mounted_borg_archive_matches_the_source_tree() {
    check_archive_made_by("borg");
}

/// xorshift64*: deterministic offsets and lengths.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn large_file_reads_at_random_offsets_match() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let src = mkdir(&env, "src");
    let size: usize = 100 * 1024 * 1024;
    let data = tree::pseudo_random(size, 42);
    std::fs::create_dir_all(src.join("tree")).expect("mkdir");
    std::fs::write(src.join("tree/big.bin"), &data).expect("write");
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "repokey", s(&repo)]).ok();
    let arch = format!("{}::big", repo.display());
    run_in(&env, &src, "hoard", &["create", &arch, "tree"]).ok();
    let mnt = mkdir(&env, "mnt");
    let _g = mount(&env, &[&arch], &mnt);
    let f = std::fs::File::open(mnt.join("tree/big.bin")).expect("open through mount");
    assert_eq!(f.metadata().expect("stat").len(), size as u64);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let off = (rng.next() % size as u64) as usize;
        let len = 1 + (rng.next() % (3 * 1024 * 1024)) as usize;
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, off as u64).expect("pread");
        let want = &data[off..(off + len).min(size)];
        assert_eq!(n.min(want.len()), n, "read past the end at {off}");
        assert!(n > 0, "short read at {off}");
        assert!(
            buf[..n] == want[..n],
            "content differs at offset {off} len {n}"
        );
    }
    // the last bytes and a read past the end
    let mut tail = vec![0u8; 10];
    assert_eq!(f.read_at(&mut tail, size as u64 - 5).expect("pread"), 5);
    assert_eq!(&tail[..5], &data[size - 5..]);
    assert_eq!(f.read_at(&mut tail, size as u64 + 5).expect("pread"), 0);
    drop(f);
    umount(&env, &mnt);
}

fn names_below(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn rec(d: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).expect("readdir").flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rec(&p, root, out);
            }
        }
    }
    rec(root, root, &mut out);
    out.sort();
    out
}

/// A repository with three archives in which files change, stay, appear and are hardlinked.
fn versioned_repo(env: &Env) -> PathBuf {
    let src = mkdir(env, "src");
    let t = src.join("tree");
    std::fs::create_dir_all(t.join("d")).expect("mkdir");
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "repokey", s(&repo)]).ok();
    let write = |rel: &str, data: &[u8]| std::fs::write(t.join(rel), data).expect("write");
    write("d/notes.txt", b"first\n");
    write("same", b"never changes\n");
    write("archive.tar.gz", b"v1");
    std::os::unix::fs::symlink("same", t.join("link")).expect("symlink");
    run_in(
        env,
        &src,
        "hoard",
        &["create", &format!("{}::a1", repo.display()), "tree"],
    )
    .ok();
    write("d/notes.txt", b"second\n");
    write("archive.tar.gz", b"v2");
    write(".hidden", b"dot file\n");
    std::fs::hard_link(t.join("same"), t.join("d/same-hl")).expect("hardlink");
    run_in(
        env,
        &src,
        "hoard",
        &["create", &format!("{}::a2", repo.display()), "tree"],
    )
    .ok();
    write("d/notes.txt", b"first\n");
    run_in(
        env,
        &src,
        "hoard",
        &["create", &format!("{}::a3", repo.display()), "tree"],
    )
    .ok();
    repo
}

#[test]
fn repository_mount_lists_archives_and_honours_selection_and_owner_options() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let repo = versioned_repo(&env);
    let mnt = mkdir(&env, "mnt");
    let g = mount(&env, &[s(&repo)], &mnt);
    assert_eq!(
        names_below(&mnt)
            .iter()
            .filter(|n| !n.contains('/'))
            .count(),
        3
    );
    let mut top: Vec<String> = std::fs::read_dir(&mnt)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["a1", "a2", "a3"]);
    assert_eq!(
        std::fs::read(mnt.join("a1/tree/d/notes.txt")).expect("read"),
        b"first\n"
    );
    assert_eq!(
        std::fs::read(mnt.join("a2/tree/d/notes.txt")).expect("read"),
        b"second\n"
    );
    assert_eq!(
        std::fs::symlink_metadata(mnt.join("a2/tree/same"))
            .expect("lstat")
            .nlink(),
        2
    );
    umount(&env, &mnt);
    drop(g);

    // --glob-archives and --last select the top-level directories
    let g = mount(
        &env,
        &["--glob-archives", "a[12]", "--last", "1", s(&repo)],
        &mnt,
    );
    let top: Vec<String> = std::fs::read_dir(&mnt)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["a2"]);
    umount(&env, &mnt);
    drop(g);

    // uid=/gid= override every owner; umask clears mode bits; paths and strip-components
    let arch = format!("{}::a2", repo.display());
    let g = mount(
        &env,
        &[
            "-o",
            "uid=1234,gid=5678,umask=0077",
            "--strip-components",
            "1",
            &arch,
            "MNT",
            "tree/d/notes.txt",
            "tree/same",
        ],
        &mnt,
    );
    assert_eq!(names_below(&mnt), ["d", "d/notes.txt", "same"]);
    let md = std::fs::symlink_metadata(mnt.join("d/notes.txt")).expect("lstat");
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o777), (1234, 5678, 0o600));
    // `same` is a hardlink slave (hoard walks `d/` first, so `d/same-hl` is the master): the
    // selected slave takes over the unselected master's contents
    assert_eq!(
        std::fs::read(mnt.join("same")).expect("read"),
        b"never changes\n"
    );
    umount(&env, &mnt);
    drop(g);
}

const EXPECTED_VERSIONS: &[&str] = &[
    "tree",
    "tree/.hidden",
    "tree/.hidden/.hidden.00001",
    "tree/archive.tar.gz",
    "tree/archive.tar.gz/archive.tar.00001.gz",
    "tree/archive.tar.gz/archive.tar.00002.gz",
    "tree/d",
    "tree/d/notes.txt",
    "tree/d/notes.txt/notes.00001.txt",
    "tree/d/notes.txt/notes.00002.txt",
    "tree/d/notes.txt/notes.00003.txt",
    "tree/d/same-hl",
    "tree/d/same-hl/same-hl.00001",
    "tree/link",
    "tree/link/link",
    "tree/same",
    "tree/same/same.00001",
];

#[test]
fn versions_view_names_versions_like_borg() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let repo = versioned_repo(&env);
    let mnt = mkdir(&env, "mnt");
    let g = mount(&env, &["-o", "versions", s(&repo)], &mnt);
    let ours = names_below(&mnt);
    // borg's rule (fuse.py make_versioned_name / file_version): a file becomes a directory of
    // its versions, `stem.NNNNN.ext`, the number growing whenever the chunk-id list changes
    // (back to the first contents still counts as a new version).
    assert_eq!(ours, EXPECTED_VERSIONS);
    assert_eq!(
        std::fs::read(mnt.join("tree/d/notes.txt/notes.00002.txt")).expect("read"),
        b"second\n"
    );
    assert_eq!(
        std::fs::read(mnt.join("tree/d/notes.txt/notes.00003.txt")).expect("read"),
        b"first\n"
    );
    umount(&env, &mnt);
    drop(g);

    // the versions view of one archive is refused, as borg does
    let arch = format!("{}::a1", repo.display());
    let run = env.hoard(["mount", "-o", "versions", &arch, s(&mnt)]);
    assert_eq!(run.code, 2);
    common::assert_one_line_error(
        &run.stderr,
        "for versions view, do not specify a single archive",
    );

    if !common::borg_available() {
        return;
    }
    if !borg_mount_available() {
        eprintln!(
            "borg's llfuse is not installed: versions names checked against borg's rule only"
        );
        return;
    }
    let bmnt = mkdir(&env, "bmnt");
    env.borg(["mount", "-o", "versions", s(&repo), s(&bmnt)])
        .ok();
    let _bg = Guard(bmnt.clone());
    let theirs = names_below(&bmnt);
    env.borg(["umount", s(&bmnt)]).ok();
    assert_eq!(ours, theirs, "versions view differs from borg mount's");
}

#[test]
fn damaged_files_need_allow_damaged_files() {
    if !fuse_available() || !common::borg_available() {
        return;
    }
    let env = Env::new();
    let src = mkdir(&env, "src");
    std::fs::create_dir_all(src.join("tree")).expect("mkdir");
    let content = b"this chunk will go missing\n";
    std::fs::write(src.join("tree/victim.txt"), content).expect("write");
    std::fs::write(src.join("tree/fine.txt"), b"fine\n").expect("write");
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "repokey", s(&repo)]).ok();
    let arch = format!("{}::a", repo.display());
    run_in(&env, &src, "hoard", &["create", &arch, "tree"]).ok();
    // find the file's chunk id with borg's own dump, delete that object, and let
    // `check --repair` replace it by an all-zero chunk (the item gets `chunks_healthy`)
    let dump = env.path().join("dump.json");
    env.borg(["debug", "dump-archive", &arch, s(&dump)]).ok();
    let dumped: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dump).expect("dump")).expect("json");
    let id = dumped["_items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["path"] == "tree/victim.txt")
        .and_then(|i| i["chunks"][0][0].as_str())
        .expect("victim chunk id")
        .trim_start_matches('\u{7f}')
        .to_string();
    env.borg(["debug", "delete-obj", s(&repo), &id]).ok();
    let mut repair = env.hoard_cmd();
    repair
        .env("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "YES")
        .args(["check", "--repair", s(&repo)]);
    let out = repair.output().expect("hoard check --repair");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Replacing with all-zero chunk"),
        "repair did not patch the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mnt = mkdir(&env, "mnt");
    let g = mount(&env, &[&arch], &mnt);
    let err = std::fs::read(mnt.join("tree/victim.txt")).expect_err("damaged file must not read");
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert_eq!(
        std::fs::read(mnt.join("tree/fine.txt")).expect("read"),
        b"fine\n"
    );
    umount(&env, &mnt);
    drop(g);
    let g = mount(&env, &["-o", "allow_damaged_files", &arch], &mnt);
    let data = std::fs::read(mnt.join("tree/victim.txt")).expect("read with allow_damaged_files");
    assert_eq!(
        data,
        vec![0u8; content.len()],
        "replacement chunk reads as zeros"
    );
    umount(&env, &mnt);
    drop(g);
}

#[test]
fn umount_leaves_an_empty_dir_and_a_second_mount_works() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let src = mkdir(&env, "src");
    std::fs::create_dir_all(src.join("tree")).expect("mkdir");
    std::fs::write(src.join("tree/f"), b"content\n").expect("write");
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "repokey", s(&repo)]).ok();
    let arch = format!("{}::a", repo.display());
    run_in(&env, &src, "hoard", &["create", &arch, "tree"]).ok();
    let mnt = mkdir(&env, "mnt");
    for _ in 0..2 {
        let g = mount(&env, &[&arch], &mnt);
        assert_eq!(
            std::fs::read(mnt.join("tree/f")).expect("read"),
            b"content\n"
        );
        umount(&env, &mnt);
        drop(g);
    }
    // the daemon let go of the repository lock: a writer gets it
    run_in(
        &env,
        &src,
        "hoard",
        &[
            "--lock-wait",
            "60",
            "create",
            &format!("{}::b", repo.display()),
            "tree",
        ],
    )
    .ok();
}

#[test]
fn reading_a_1gb_file_keeps_the_daemon_under_200mb() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let src = mkdir(&env, "src");
    std::fs::create_dir_all(src.join("tree")).expect("mkdir");
    let size: u64 = 1024 * 1024 * 1024;
    let want = {
        use sha2::Digest;
        use std::io::Write;
        let mut f = std::fs::File::create(src.join("tree/huge.bin")).expect("create");
        let mut h = sha2::Sha256::new();
        let block = 8 * 1024 * 1024;
        for i in 0..(size / block as u64) {
            let b = tree::pseudo_random(block, 1000 + i);
            h.update(&b);
            f.write_all(&b).expect("write");
        }
        hex::encode(h.finalize())
    };
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "repokey", s(&repo)]).ok();
    let arch = format!("{}::huge", repo.display());
    run_in(
        &env,
        &src,
        "hoard",
        &["create", "--compression", "none", &arch, "tree"],
    )
    .ok();
    std::fs::remove_file(src.join("tree/huge.bin")).expect("rm");
    let mnt = mkdir(&env, "mnt");
    // foreground, so the serving process is our child and its VmHWM can be read
    let mut child = env
        .hoard_cmd()
        .args(["mount", "-f", &arch, s(&mnt)])
        .spawn()
        .expect("spawn hoard mount -f");
    let _g = Guard(mnt.clone());
    let mut waited = 0;
    while !is_mounted(&mnt) {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "hoard mount -f exited before mounting"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
        assert!(waited < 600, "not mounted after a minute");
    }
    let got = {
        use sha2::Digest;
        use std::io::Read;
        let mut f = std::fs::File::open(mnt.join("tree/huge.bin")).expect("open");
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        hex::encode(h.finalize())
    };
    assert_eq!(got, want, "1 GB file read through the mount differs");
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("proc status");
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    eprintln!("mount daemon peak RSS (VmHWM) after reading 1 GiB: {hwm_kb} kB");
    env.hoard(["umount", s(&mnt)]).ok();
    let st = child.wait().expect("wait");
    assert!(st.success(), "hoard mount -f ended with {st}");
    assert!(
        hwm_kb < 200 * 1024,
        "peak memory {hwm_kb} kB is not under 200 MB"
    );
}

#[test]
fn bad_input_gives_one_error_line() {
    if !fuse_available() {
        return;
    }
    let mut env = Env::new();
    let src = mkdir(&env, "src");
    std::fs::create_dir_all(src.join("tree")).expect("mkdir");
    std::fs::write(src.join("tree/f"), b"x").expect("write");
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "repokey", s(&repo)]).ok();
    run_in(
        &env,
        &src,
        "hoard",
        &["create", &format!("{}::a", repo.display()), "tree"],
    )
    .ok();
    let mnt = mkdir(&env, "mnt");

    let missing = env.path().join("missing");
    let run = env.hoard(["mount", s(&repo), s(&missing)]);
    assert_eq!(run.code, 2);
    common::assert_one_line_error(&run.stderr, "Mountpoint must be a writable directory");

    let run = env.hoard(["mount", s(&repo), s(&src)]);
    assert_eq!(run.code, 2);
    common::assert_one_line_error(&run.stderr, "Mountpoint must be an empty directory");

    let run = env.hoard(["mount", &format!("{}::nope", repo.display()), s(&mnt)]);
    assert_eq!(run.code, 2);
    common::assert_one_line_error(&run.stderr, "Archive nope does not exist");
    assert!(!is_mounted(&mnt));

    let run = env.hoard(["mount", "-o", "uid=abc", s(&repo), s(&mnt)]);
    assert_eq!(run.code, 2);
    common::assert_one_line_error(&run.stderr, "unsupported value in option: uid=abc");

    env.set("HOARD_FUSE_DEVICE", s(&env.path().join("no-fuse-here")));
    let run = env.hoard(["mount", s(&repo), s(&mnt)]);
    assert_eq!(run.code, 2);
    common::assert_one_line_error(&run.stderr, "hoard mount not available: no FUSE support");
    assert!(!is_mounted(&mnt));
}
