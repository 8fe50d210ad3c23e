//! `export-tar --tar-format GNU|PAX|BORG` (a hoard extension with borg 2's meaning; borg
//! 1.4.5 writes GNU only) and `import-tar` reading PAX and BORG tarballs back: GNU stays byte
//! for byte borg 1.4.5's output; GNU tar extracts the PAX output with xattrs, ACLs and
//! nanosecond mtimes; Python's `tarfile` reads the pax records (and writes the same header
//! bytes for them); export and import round-trip xattrs and ACLs (PAX) or whole items (BORG).

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::tree::{self, Entry};
use common::{archive, arg, borg14, Env, Run};

/// Runs `program` (hoard when None) in `dir`.
fn run_in(env: &Env, program: Option<&Path>, dir: &Path, args: &[&str]) -> Run {
    let mut c = match program {
        None => env.hoard_cmd(),
        Some(p) => env.command_at(p),
    };
    Run::from(c.current_dir(dir).args(args).output().expect("run"))
}

/// The full test tree (every file type, long and odd names, xattrs, ACLs, ns mtimes) below
/// `env/src/tree`, plus an ACL with a mask that hides permissions, a named user (`nobody`) and
/// an id without a name; returns `env/src`.
fn source(env: &Env) -> PathBuf {
    let src = env.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    let t = tree::build_full_tree(&src, false);
    let _ = Command::new("setfacl")
        .args(["-m", "u:nobody:rwx,u:4242:r-x,m::r--"])
        .arg(t.join("hello.txt"))
        .status();
    tree::set_xattr(&t.join("dir/readonly"), "user.odd=name%", b"\xff\x00binary");
    // setfacl changed ctime only; restore the mtimes the tree builder chose
    tree::set_mtime_ns(&t.join("hello.txt"), 1_600_000_000_123_456_789);
    tree::set_mtime_ns(&t.join("dir/readonly"), 1_600_000_000_987_654_321);
    src
}

/// Whether the source tree really got user xattrs and ACLs (some file systems refuse them).
fn has_xattrs_and_acls(src: &Path) -> (bool, bool) {
    let x = tree::xattrs(&src.join("tree/hello.txt"));
    (
        x.contains_key(b"user.mime_type".as_slice()),
        x.contains_key(b"system.posix_acl_access".as_slice()),
    )
}

/// `scan` of `root`, with only what `keep` says of xattrs: all, ACLs only, or none.
fn scan(root: &Path, xattrs: bool, acls: bool) -> BTreeMap<OsString, Entry> {
    let mut m = tree::scan(root);
    for e in m.values_mut() {
        e.xattrs.retain(|k, _| {
            let acl = k.starts_with(b"system.posix_acl_");
            (acl && acls) || (!acl && xattrs)
        });
    }
    m
}

/// Asserts two scans are equal, entry by entry; `mtime_slack_ns` allows times read back
/// through a double.
fn assert_same(
    a: &BTreeMap<OsString, Entry>,
    b: &BTreeMap<OsString, Entry>,
    mtime_slack_ns: i128,
    what: &str,
) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: names"
    );
    for (k, ea) in a {
        let mut eb = b[k].clone();
        if (ea.mtime_ns - eb.mtime_ns).abs() <= mtime_slack_ns {
            eb.mtime_ns = ea.mtime_ns;
        }
        assert_eq!(ea, &eb, "{what}: {}", k.to_string_lossy());
    }
}

/// A hoard repository (no encryption) with archive `a` of `src/tree`; returns `REPO::a`.
fn hoard_archive(env: &Env, src: &Path) -> String {
    let repo = env.init_repo("repo", "none");
    let arch = archive(&repo, "a");
    run_in(env, None, src, &["create", &arch, "tree"]).ok();
    arch
}

fn gnu_tar_extract(tarball: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    let out = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--acls", "-xpf"])
        .arg(tarball)
        .arg("-C")
        .arg(dest)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .expect("run GNU tar");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "GNU tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn export_tar_gnu_stays_byte_identical_to_borg14() {
    let Some(b14) = borg14() else { return };
    let env = Env::new();
    let src = source(&env);
    let repo = env.path().join("repo");
    run_in(
        &env,
        Some(&b14),
        env.path(),
        &["init", "-e", "repokey", arg(&repo)],
    )
    .ok();
    let arch = archive(&repo, "a");
    run_in(&env, Some(&b14), &src, &["create", &arch, "tree"]).ok();
    let w = env.path();
    let cases: [(&[&str], &str); 4] = [
        (&[], "plain"),
        (&["--strip-components", "1"], "strip"),
        (&["tree/dir", "tree/links/second"], "paths"),
        (&["-e", "*.bin", "-e", "tree/links/master"], "excl"),
    ];
    for (extra, name) in cases {
        let mut outputs = Vec::new();
        for (who, program, format) in [
            ("borg 1.4.5", Some(b14.as_path()), None),
            ("hoard", None, None),
            ("hoard --tar-format GNU", None, Some("GNU")),
        ] {
            let file = format!("{name}-{}.tar", outputs.len());
            let mut args = vec!["export-tar", "--list"];
            if let Some(f) = format {
                args.extend(["--tar-format", f]);
            }
            args.extend([arch.as_str(), file.as_str()]);
            args.extend(extra);
            let r = run_in(&env, program, w, &args).ok();
            outputs.push((who, r.stderr, std::fs::read(w.join(&file)).expect("tar")));
        }
        let (_, borg_list, borg_tar) = &outputs[0];
        assert!(
            !borg_list.is_empty() && borg_tar.len() >= 10_240,
            "{name}: borg wrote {} bytes",
            borg_tar.len()
        );
        for (who, list, tar) in &outputs[1..] {
            assert_eq!(list, borg_list, "{name}: --list of {who}");
            assert!(
                tar == borg_tar,
                "{name}: {who}'s tar differs from borg 1.4.5's"
            );
        }
    }
}

#[test]
fn export_tar_pax_extracts_with_gnu_tar_keeping_xattrs_acls_and_ns_mtimes() {
    let env = Env::new();
    let src = source(&env);
    let (xattrs, acls) = has_xattrs_and_acls(&src);
    if !xattrs {
        eprintln!("the file system refuses user xattrs: skipping the xattr assertions");
    }
    if !acls {
        eprintln!("no POSIX ACLs on this file system (or no setfacl): skipping the ACL assertions");
    }
    let arch = hoard_archive(&env, &src);
    let tarball = env.path().join("pax.tar");
    env.hoard(["export-tar", "--tar-format", "PAX", &arch, arg(&tarball)])
        .ok();
    let data = std::fs::read(&tarball).expect("tar");
    assert!(data.windows(14).any(|w| w == b"././@PaxHeader"));
    let out = env.path().join("untar");
    gnu_tar_extract(&tarball, &out);
    // everything GNU tar restores: names, types, modes, owners, contents, links, devices,
    // mtimes to the nanosecond (symlinks too), xattrs and ACLs
    assert_same(
        &scan(&src.join("tree"), xattrs, acls),
        &scan(&out.join("tree"), xattrs, acls),
        0,
        "GNU tar extraction of the PAX export",
    );
    if acls {
        let x = tree::xattrs(&out.join("tree/dir/sub"));
        assert!(
            x.contains_key(b"system.posix_acl_default".as_slice()),
            "default ACL"
        );
    }
}

/// Python (3.11's `tarfile`) reads every member of `tarball`: one JSON line per member with
/// its name (hex), type, mtime, the pax records (values hex) and whether `tobuf(PAX_FORMAT)`
/// of what it read gives the same header bytes (`same`, `differs`, or `binary` for records
/// that are not UTF-8, where Python adds a `hdrcharset` record hoard does not write).
const PYTHON_READER: &str = r#"
import json, sys, tarfile
raw = open(sys.argv[1], 'rb').read()
with tarfile.open(sys.argv[1], 'r:', format=tarfile.PAX_FORMAT) as t:
    for m in t:
        def b(x):
            return x.encode('utf-8', 'surrogateescape').hex()
        utf8 = True
        for k, v in m.pax_headers.items():
            try:
                v.encode('utf-8', 'strict')
            except UnicodeEncodeError:
                utf8 = False
        rebuilt = m.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')
        same = rebuilt == raw[m.offset:m.offset_data]
        print(json.dumps({
            'name': b(m.name), 'type': m.type.decode(), 'mtime': repr(m.mtime),
            'linkname': b(m.linkname), 'uid': m.uid,
            'pax': [[b(k), b(v)] for k, v in m.pax_headers.items()],
            'rebuilt': 'same' if same else ('binary' if not utf8 else 'differs'),
        }))
"#;

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
        .collect()
}

/// One member as Python read it: name, type, mtime text, pax records, rebuilt state.
struct PyMember {
    name: Vec<u8>,
    typeflag: String,
    mtime: String,
    pax: BTreeMap<Vec<u8>, Vec<u8>>,
    rebuilt: String,
}

fn python_read(tarball: &Path) -> Option<Vec<PyMember>> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_READER)
        .arg(tarball)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "python3 tarfile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    Some(
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                PyMember {
                    name: unhex(v["name"].as_str().expect("name")),
                    typeflag: v["type"].as_str().expect("type").to_string(),
                    mtime: v["mtime"].as_str().expect("mtime").to_string(),
                    pax: v["pax"]
                        .as_array()
                        .expect("pax")
                        .iter()
                        .map(|kv| {
                            (
                                unhex(kv[0].as_str().expect("k")),
                                unhex(kv[1].as_str().expect("v")),
                            )
                        })
                        .collect(),
                    rebuilt: v["rebuilt"].as_str().expect("rebuilt").to_string(),
                }
            })
            .collect(),
    )
}

#[test]
fn python_tarfile_reads_the_pax_and_borg_records() {
    let env = Env::new();
    let src = source(&env);
    let (xattrs, acls) = has_xattrs_and_acls(&src);
    let arch = hoard_archive(&env, &src);
    for format in ["PAX", "BORG"] {
        let tarball = env.path().join(format!("{format}.tar"));
        env.hoard(["export-tar", "--tar-format", format, &arch, arg(&tarball)])
            .ok();
        let Some(members) = python_read(&tarball) else {
            eprintln!("no python3: skipping");
            return;
        };
        let by_name = |n: &[u8]| {
            members
                .iter()
                .find(|m| m.name == n)
                .unwrap_or_else(|| panic!("{format}: no member {}", String::from_utf8_lossy(n)))
        };
        assert!(members.len() > 20, "{format}: {} members", members.len());
        for m in &members {
            let what = format!("{format} {}", String::from_utf8_lossy(&m.name));
            assert_ne!(
                m.rebuilt, "differs",
                "{what}: Python writes other header bytes"
            );
            // every member carries its exact mtime
            assert!(m.pax.contains_key(b"mtime".as_slice()), "{what}");
            assert_eq!(
                m.pax.contains_key(b"BORG.item.meta".as_slice()),
                format == "BORG",
                "{what}"
            );
        }
        let hello = by_name(b"tree/hello.txt");
        assert_eq!(hello.pax[b"mtime".as_slice()], b"1600000000.123456789");
        assert_eq!(hello.mtime, "1600000000.1234567", "Python's float of it");
        assert!(hello.pax.contains_key(b"ctime".as_slice()));
        if xattrs {
            assert_eq!(
                hello.pax[b"SCHILY.xattr.user.mime_type".as_slice()],
                b"text/plain"
            );
            assert_eq!(hello.pax[b"SCHILY.xattr.user.empty".as_slice()], b"");
            let ro = by_name(b"tree/dir/readonly");
            assert_eq!(
                ro.pax[b"SCHILY.xattr.user.odd%3Dname%25".as_slice()],
                b"\xff\x00binary"
            );
            assert_eq!(ro.rebuilt, "binary");
        }
        if acls {
            assert_eq!(
                String::from_utf8_lossy(&hello.pax[b"SCHILY.acl.access".as_slice()]),
                "user::rw-\nuser:4242:r-x\nuser:nobody:rwx\ngroup::r--\nmask::r--\nother::r--\n"
            );
            let sub = by_name(b"tree/dir/sub");
            assert_eq!(sub.typeflag, "5");
            assert_eq!(
                String::from_utf8_lossy(&sub.pax[b"SCHILY.acl.default".as_slice()]),
                "user::rwx\nuser:daemon:rwx\ngroup::---\nmask::rwx\nother::---\n"
            );
        }
        // long and non-ASCII names are pax `path` records; the hardlink keeps its target
        let long = format!("tree/{}", "n".repeat(250));
        assert_eq!(
            by_name(long.as_bytes()).pax[b"path".as_slice()],
            long.as_bytes()
        );
        let uni = "tree/unicode-äöü-日本.txt";
        assert_eq!(
            by_name(uni.as_bytes()).pax[b"path".as_slice()],
            uni.as_bytes()
        );
        assert_eq!(by_name(b"tree/links/second").typeflag, "1");
        if format == "BORG" {
            let meta = &hello.pax[b"BORG.item.meta".as_slice()];
            assert_eq!(hello.pax[b"BORG.item.version".as_slice()], b"1");
            assert!(meta
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
        }
    }
}

/// The items of `repo::name` as borg 1.4.5 lists them, with every field `list` can show of
/// what a tar carries.
fn listing(env: &Env, b14: &Path, arch: &str) -> String {
    const FORMAT: &str = "{mode} {user} {group} {uid} {gid} {size} {isomtime} {isoctime} \
                          {path} -> {source} {health}{NL}";
    run_in(
        env,
        Some(b14),
        env.path(),
        &["list", "--format", FORMAT, arch],
    )
    .ok()
    .out()
}

#[test]
fn export_tar_round_trips_through_import_tar() {
    let env = Env::new();
    let src = source(&env);
    let (xattrs, acls) = has_xattrs_and_acls(&src);
    if !xattrs {
        eprintln!("the file system refuses user xattrs: skipping the xattr assertions");
    }
    let arch = hoard_archive(&env, &src);
    let repo = arch.trim_end_matches("::a").to_string();
    let b14 = borg14();
    for (format, slack) in [("PAX", 1_000), ("BORG", 0)] {
        let tarball = env.path().join(format!("rt-{format}.tar"));
        env.hoard(["export-tar", "--tar-format", format, &arch, arg(&tarball)])
            .ok();
        let imported = format!("{repo}::{format}");
        env.hoard(["import-tar", &imported, arg(&tarball)]).ok();
        // extracted by borg 1.4.5 where at hand (the ACL text is in borg 1.x's form), else by
        // hoard: the tree comes back with its xattrs, ACLs and mtimes
        let dest = env.path().join(format!("x-{format}"));
        std::fs::create_dir_all(&dest).expect("mkdir");
        run_in(&env, b14.as_deref(), &dest, &["extract", &imported]).ok();
        assert_same(
            &scan(&src.join("tree"), xattrs, acls),
            &scan(&dest.join("tree"), xattrs, acls),
            slack,
            &format!("{format} round trip"),
        );
        if let Some(b) = &b14 {
            let (want, got) = (listing(&env, b, &arch), listing(&env, b, &imported));
            if format == "BORG" {
                // the items themselves come back: ctime too
                assert_eq!(got, want, "BORG round trip listing");
            } else {
                assert_eq!(got.lines().count(), want.lines().count());
            }
            run_in(&env, Some(b), env.path(), &["check", &repo]).ok();
        }
    }
}

#[test]
fn tar_format_option_is_documented_and_checked() {
    let env = Env::new();
    let help = env.hoard(["export-tar", "--help"]).ok().out();
    assert!(help.contains("--tar-format <FMT>"), "{help}");
    assert!(
        help.contains("select tar format: BORG, PAX or GNU"),
        "{help}"
    );
    assert!(help.contains("SCHILY.xattr"), "{help}");
    let r = env.hoard(["export-tar", "--tar-format", "USTAR", "repo::a", "x.tar"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("USTAR"), "{}", r.stderr);
}
