//! Builds test trees with every file type and compares two trees by walking them with the
//! operating system, never trusting hoard's own view.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// Sets an extended attribute on `p` (not following symlinks).
pub fn set_xattr(p: &Path, name: &str, value: &[u8]) -> bool {
    let c = cpath(p);
    let n = CString::new(name).expect("name");
    // SAFETY: valid C strings and a buffer of the given length.
    unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            0,
        ) == 0
    }
}

/// All extended attributes of `p` (not following symlinks), sorted by name.
pub fn xattrs(p: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let c = cpath(p);
    let mut out = BTreeMap::new();
    // SAFETY: buffers are sized from the kernel's answers.
    unsafe {
        let n = libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0);
        if n <= 0 {
            return out;
        }
        let mut names = vec![0u8; n as usize];
        let n = libc::llistxattr(
            c.as_ptr(),
            names.as_mut_ptr() as *mut libc::c_char,
            names.len(),
        );
        if n <= 0 {
            return out;
        }
        names.truncate(n as usize);
        for name in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
            let cn = CString::new(name).expect("name");
            let len = libc::lgetxattr(c.as_ptr(), cn.as_ptr(), std::ptr::null_mut(), 0);
            if len < 0 {
                continue;
            }
            let mut buf = vec![0u8; len as usize];
            let len = libc::lgetxattr(
                c.as_ptr(),
                cn.as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            );
            if len >= 0 {
                buf.truncate(len as usize);
                out.insert(name.to_vec(), buf);
            }
        }
    }
    out
}

fn mkfifo(p: &Path) -> bool {
    let c = cpath(p);
    // SAFETY: valid path.
    unsafe { libc::mkfifo(c.as_ptr(), 0o644) == 0 }
}

fn mknod(p: &Path, mode: u32, dev: u64) -> bool {
    let c = cpath(p);
    // SAFETY: valid path.
    unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev as libc::dev_t) == 0 }
}

/// Sets mtime (and atime) of `p` without following symlinks, in nanoseconds.
pub fn set_mtime_ns(p: &Path, ns: i64) {
    let c = cpath(p);
    let ts = libc::timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000),
    };
    let times = [ts, ts];
    // SAFETY: valid path and two timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        );
    }
}

/// Deterministic pseudo-random bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// True when running as root (devices, ownership).
pub fn is_root() -> bool {
    // SAFETY: trivial libc call.
    unsafe { libc::geteuid() == 0 }
}

/// Builds the "every file type" tree under `root/name`; returns that directory.
/// With `big` the multi-chunk file is a few MiB, else ~300 KiB.
pub fn build_full_tree(root: &Path, big: bool) -> PathBuf {
    let t = root.join("tree");
    let w = |rel: &str, data: &[u8]| {
        let p = t.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("write");
        p
    };
    std::fs::create_dir_all(t.join("dir/sub/deeper")).expect("mkdir");
    w("empty", b"");
    w("hello.txt", b"hello borg\n");
    w("dir/sub/deeper/leaf.txt", b"leaf\n");
    let size = if big {
        5 * 1024 * 1024 + 12345
    } else {
        300 * 1024 + 7
    };
    w("big.bin", &pseudo_random(size, 1));
    w("zeros.bin", &vec![0u8; 200_000]);
    // sparse: a hole in the middle and at the end
    {
        use std::io::{Seek, SeekFrom, Write};
        let p = t.join("sparse.img");
        let mut f = std::fs::File::create(&p).expect("sparse");
        f.write_all(&pseudo_random(4096, 2)).expect("w");
        f.seek(SeekFrom::Start(3 * 1024 * 1024)).expect("seek");
        f.write_all(&pseudo_random(4096, 3)).expect("w");
        f.set_len(5 * 1024 * 1024).expect("len");
    }
    // long and odd names
    w(&"n".repeat(250), b"long name\n");
    let nonutf8 = t.join(OsStr::from_bytes(b"bad-\xff\xfe-name"));
    std::fs::write(&nonutf8, b"non utf8 name\n").expect("write");
    w("unicode-äöü-日本.txt", b"unicode\n");
    w("with space and 'quote'", b"space\n");
    // permissions
    let script = w("dir/script.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    let ro = w("dir/readonly", b"ro\n");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    std::fs::set_permissions(t.join("dir/sub"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    // hardlinks (a group of three) and symlinks (relative, absolute, dangling)
    let master = w("links/master", b"linked content\n");
    std::fs::hard_link(&master, t.join("links/second")).expect("link");
    std::fs::hard_link(&master, t.join("dir/third-link")).expect("link");
    symlink("../hello.txt", t.join("links/rel-symlink")).expect("symlink");
    symlink("/nonexistent/target", t.join("links/dangling")).expect("symlink");
    symlink("dir", t.join("dir-symlink")).expect("symlink");
    // fifo and devices
    assert!(mkfifo(&t.join("fifo")), "mkfifo");
    if is_root() {
        mknod(
            &t.join("chardev"),
            libc::S_IFCHR | 0o644,
            libc::makedev(1, 3),
        );
        mknod(
            &t.join("blockdev"),
            libc::S_IFBLK | 0o600,
            libc::makedev(7, 200),
        );
    }
    // xattrs (user namespace) incl. an empty value; an ACL if setfacl exists
    set_xattr(&t.join("hello.txt"), "user.mime_type", b"text/plain");
    set_xattr(&t.join("hello.txt"), "user.empty", b"");
    set_xattr(&t.join("dir"), "user.comment", b"dir xattr value");
    let _ = std::process::Command::new("setfacl")
        .args(["-m", "u:daemon:rw-,g:daemon:r--"])
        .arg(t.join("dir/script.sh"))
        .status();
    let _ = std::process::Command::new("setfacl")
        .args(["-d", "-m", "u:daemon:rwx"])
        .arg(t.join("dir/sub"))
        .status();
    // fixed, distinct mtimes (ns precision) on everything, children before parents
    let mut all: Vec<PathBuf> = Vec::new();
    collect(&t, &mut all);
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        set_mtime_ns(p, 1_600_000_000_123_456_789 + i as i64 * 1_000_003);
    }
    set_mtime_ns(&t, 1_600_000_000_000_000_001);
    t
}

fn collect(d: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.clone());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect(&p, out);
            }
        }
    }
}

/// What the comparator records for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// st_mode (type and permission bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// mtime in ns (directories included).
    pub mtime_ns: i128,
    /// Size for regular files.
    pub size: u64,
    /// Content hash (sha256 hex) for regular files.
    pub sha256: Option<String>,
    /// Symlink target.
    pub link: Option<OsString>,
    /// Extended attributes, ACLs included (as `system.posix_acl_*`).
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Device number for devices.
    pub rdev: u64,
    /// Index of the hardlink group (by first path), for files with nlink > 1.
    pub link_group: Option<OsString>,
}

fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    let data = std::fs::read(p).expect("read");
    hex::encode(sha2::Sha256::digest(&data))
}

/// Walks `root` and records every entry by relative path.
pub fn scan(root: &Path) -> BTreeMap<OsString, Entry> {
    let mut paths = Vec::new();
    collect(root, &mut paths);
    paths.sort();
    let mut groups: BTreeMap<(u64, u64), OsString> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for p in paths {
        let md = std::fs::symlink_metadata(&p).expect("lstat");
        let rel = p
            .strip_prefix(root)
            .expect("prefix")
            .as_os_str()
            .to_os_string();
        let ft = md.file_type();
        let link_group = if ft.is_file() && md.nlink() > 1 {
            Some(
                groups
                    .entry((md.dev(), md.ino()))
                    .or_insert_with(|| rel.clone())
                    .clone(),
            )
        } else {
            None
        };
        let entry = Entry {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            size: if ft.is_file() { md.len() } else { 0 },
            sha256: ft.is_file().then(|| sha256_file(&p)),
            link: ft
                .is_symlink()
                .then(|| std::fs::read_link(&p).expect("readlink").into_os_string()),
            xattrs: xattrs(&p),
            rdev: md.rdev(),
            link_group,
        };
        out.insert(rel, entry);
    }
    out
}

/// Compares two trees; returns a list of differences (empty when identical).
/// `ignore_mtime_of_symlinks` is for tools that cannot set symlink times.
pub fn diff(a: &Path, b: &Path) -> Vec<String> {
    let sa = scan(a);
    let sb = scan(b);
    let mut d = Vec::new();
    for (k, ea) in &sa {
        match sb.get(k) {
            None => d.push(format!("missing in second: {}", k.to_string_lossy())),
            Some(eb) if ea != eb => d.push(format!(
                "differs: {}\n  first:  {ea:?}\n  second: {eb:?}",
                k.to_string_lossy()
            )),
            _ => {}
        }
    }
    for k in sb.keys() {
        if !sa.contains_key(k) {
            d.push(format!("extra in second: {}", k.to_string_lossy()));
        }
    }
    d
}

/// Panics with a readable report if the trees differ.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let d = diff(a, b);
    assert!(d.is_empty(), "trees differ:\n{}", d.join("\n"));
}

/// Converts raw bytes to an OsString path component.
pub fn os(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}
