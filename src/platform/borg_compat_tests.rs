//! Compare this module's ACL, xattr and flag handling with borg 1.2's own code on real files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::acl::{acl_get, acl_set, AclTexts};
use super::testutil::{getfacl, have_borg, have_tool, hex, require, setfacl, BORG_PYTHON};
use super::xattr::{get_all, Target};

/// Python run by borg's interpreter: for every path in argv print borg's ACL texts (with and
/// without numeric ids) and its xattrs, hex encoded.
const BORG_SCRIPT: &str = r#"
import os, sys
from borg.platform import acl_get
from borg import xattr
h = lambda b: '-' if b is None else b.hex()
for p in sys.argv[1:]:
    st = os.lstat(p)
    for n in (0, 1):
        item = {}
        acl_get(p, item, st, numeric_ids=bool(n))
        print('A', p, n, h(item.get('acl_access')), h(item.get('acl_default')), sep='\t')
    xa = xattr.get_all(p, follow_symlinks=False)
    print('X', p, ','.join('%s=%s' % (k.hex(), h(v)) for k, v in sorted(xa.items())), sep='\t')
"#;

/// Borg's view of a set of paths: ACL texts per (path, numeric) and xattrs per path.
struct BorgView {
    acls: BTreeMap<(String, bool), AclTexts>,
    xattrs: BTreeMap<String, String>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s == "-" {
        return None;
    }
    Some(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect(),
    )
}

fn borg_view(paths: &[PathBuf]) -> BorgView {
    let mut cmd = Command::new(BORG_PYTHON);
    cmd.current_dir("/").arg("-c").arg(BORG_SCRIPT);
    cmd.args(paths);
    let out = cmd.output().expect("run borg's python");
    assert!(
        out.status.success(),
        "borg script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut view = BorgView {
        acls: BTreeMap::new(),
        xattrs: BTreeMap::new(),
    };
    for line in String::from_utf8(out.stdout).expect("utf-8").lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "A" => {
                let texts = AclTexts {
                    access: unhex(f[3]),
                    default: unhex(f[4]),
                };
                view.acls.insert((f[1].to_string(), f[2] == "1"), texts);
            }
            "X" => {
                view.xattrs.insert(f[1].to_string(), f[2].to_string());
            }
            _ => panic!("unexpected line {line}"),
        }
    }
    view
}

fn show(t: &AclTexts) -> String {
    let s = |o: &Option<Vec<u8>>| o.as_ref().map(|v| String::from_utf8_lossy(v).into_owned());
    format!("access={:?} default={:?}", s(&t.access), s(&t.default))
}

fn entry(tag: u16, perm: u16, id: u32) -> super::acl::AclEntry {
    super::acl::AclEntry { tag, perm, id }
}

/// Build a tree of objects with various ACLs.
fn make_acl_tree(root: &Path) -> Vec<PathBuf> {
    let p = |n: &str| root.join(n);
    for f in [
        "plain",
        "named",
        "several",
        "masked",
        "unknown_id",
        "mode770",
    ] {
        fs::write(p(f), b"x").expect("write");
    }
    for d in [
        "dir_plain",
        "dir_default",
        "dir_access",
        "dir_default_min",
        "dir_both",
    ] {
        fs::create_dir(p(d)).expect("mkdir");
    }
    std::os::unix::fs::symlink("named", p("link")).expect("symlink");
    setfacl(&["-m", "u:daemon:rwx,g:daemon:r-x,m::r--"], &p("named"));
    setfacl(
        &["-m", "u:daemon:r--,u:root:rw-,g:root:rw-,g:daemon:r--"],
        &p("several"),
    );
    fs::set_permissions(
        p("mode770"),
        std::os::unix::fs::PermissionsExt::from_mode(0o770),
    )
    .expect("chmod");
    setfacl(&["-m", "g:daemon:rwx,m::r--"], &p("mode770"));
    setfacl(&["-m", "g::rwx,m::r--"], &p("mode770"));
    setfacl(&["-m", "u:daemon:rw-,g:daemon:rw-,m::r-x"], &p("masked"));
    setfacl(&["-m", "u:12345:rw-,g:54321:r--"], &p("unknown_id"));
    setfacl(
        &["-d", "-m", "u:daemon:rwx,g:daemon:r-x"],
        &p("dir_default"),
    );
    setfacl(&["-m", "u:daemon:r-x"], &p("dir_access"));
    setfacl(&["-d", "-m", "u::rwx"], &p("dir_default_min"));
    setfacl(
        &["-m", "u:daemon:rwx", "-d", "-m", "g:daemon:rwx"],
        &p("dir_both"),
    );
    // named entries stored out of order (possible with a raw setxattr): libacl sorts them
    let unsorted = super::acl::to_xattr(&[
        entry(super::acl::TAG_USER_OBJ, 6, u32::MAX),
        entry(super::acl::TAG_USER, 6, 1),
        entry(super::acl::TAG_USER, 4, 0),
        entry(super::acl::TAG_GROUP_OBJ, 4, u32::MAX),
        entry(super::acl::TAG_MASK, 6, u32::MAX),
        entry(super::acl::TAG_OTHER, 4, u32::MAX),
    ]);
    fs::write(p("unsorted"), b"x").expect("write");
    super::xattr::set(
        Target::Path(&p("unsorted")),
        super::acl::XATTR_ACCESS,
        &unsorted,
    )
    .expect("set raw ACL xattr");
    // the ACL xattrs must not show up as xattrs; a normal one must
    super::xattr::set(Target::Path(&p("named")), b"user.k", b"").expect("setxattr");
    let mut all: Vec<PathBuf> = fs::read_dir(root)
        .expect("readdir")
        .map(|e| e.expect("entry").path())
        .collect();
    all.sort();
    all
}

#[test]
fn acl_get_matches_borg() {
    if !require("setfacl", have_tool("setfacl")) || !require("borg (python)", have_borg()) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = make_acl_tree(tmp.path());
    let view = borg_view(&paths);
    let mut checked = 0;
    for path in &paths {
        let key = path.to_str().expect("utf-8").to_string();
        for numeric in [false, true] {
            let ours = acl_get(path, numeric).expect("acl_get");
            let theirs = &view.acls[&(key.clone(), numeric)];
            assert_eq!(
                &ours,
                theirs,
                "{key} numeric={numeric}\n ours:  {}\n borg:  {}",
                show(&ours),
                show(theirs)
            );
            checked += usize::from(ours.access.is_some());
        }
        let ours = get_all(Target::Path(path)).expect("get_all");
        let ours = ours
            .xattrs
            .iter()
            .map(|(k, v)| format!("{}={}", hex(k), v.as_deref().map_or("-".into(), hex)))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(ours, view.xattrs[&key], "xattrs of {key}");
    }
    assert!(checked >= 18, "too few ACLs were compared ({checked})");
}

#[test]
fn acl_set_round_trip_with_getfacl() {
    if !require(
        "setfacl/getfacl",
        have_tool("setfacl") && have_tool("getfacl"),
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    let paths = make_acl_tree(&src);
    for numeric in [false, true] {
        let dst = tmp.path().join(format!("dst{}", u8::from(numeric)));
        fs::create_dir(&dst).expect("mkdir");
        for path in &paths {
            let md = fs::symlink_metadata(path).expect("lstat");
            if md.file_type().is_symlink() {
                continue;
            }
            let target = dst.join(path.file_name().expect("name"));
            if md.is_dir() {
                fs::create_dir(&target).expect("mkdir");
            } else {
                fs::write(&target, b"x").expect("write");
            }
            let perm = std::os::unix::fs::PermissionsExt::from_mode(
                std::os::unix::fs::PermissionsExt::mode(&md.permissions()),
            );
            fs::set_permissions(&target, perm).expect("chmod");
            let texts = acl_get(path, numeric).expect("acl_get");
            acl_set(
                &target,
                texts.access.as_deref(),
                texts.default.as_deref(),
                numeric,
            )
            .expect("acl_set");
            assert_eq!(
                getfacl(&target),
                getfacl(path),
                "getfacl differs for {} (numeric={numeric}), texts {}",
                path.display(),
                show(&texts)
            );
        }
    }
}
