//! `hoard create`: archives that the real borg extracts to an identical tree and verifies,
//! interleaving with borg on one repository, the files cache, `--json` against borg's, and
//! bad input (existing archive, unreadable and missing files, bad patterns).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{archive, arg, assert_one_line_error, borg_available, snapshot_dir, tree, Env, Run};

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}):\n{}\n{}", run.out(), run.stderr))
}

/// A tree under `<env>/src/tree` with every file type; returns the relative path `src/tree`.
fn source_tree(env: &Env) -> &'static str {
    tree::build_full_tree(&env.path().join("src"), false);
    "src/tree"
}

/// `borg extract` of `archive` into a fresh directory; returns that directory.
fn borg_extract(env: &Env, repo: &Path, archive: &str) -> PathBuf {
    let out = env.path().join(format!("extract-{archive}"));
    std::fs::create_dir_all(&out).expect("mkdir");
    let r = env
        .borg_cmd()
        .current_dir(&out)
        .args(["extract", &format!("{}::{archive}", arg(repo))])
        .output()
        .expect("run borg");
    assert!(
        r.status.success(),
        "borg extract failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    out
}

fn round_trip(mode: &str, compression: &str, init_with_borg: bool) {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.path().join("repo");
    if init_with_borg {
        env.borg(["init", "-e", mode, arg(&repo)]).ok();
    } else {
        env.hoard(["init", "-e", mode, arg(&repo)]).ok();
    }
    let src = source_tree(&env);
    let arch = archive(&repo, "a1");
    env.hoard(["create", "-C", compression, &arch, src]).ok();
    let out = borg_extract(&env, &repo, "a1");
    tree::assert_same_tree(&env.path().join(src), &out.join(src));
    env.borg(["check", "--verify-data", arg(&repo)]).ok();
}

#[test]
fn round_trip_none_via_borg_extract() {
    round_trip("none", "lz4", false);
}

#[test]
fn round_trip_repokey_via_borg_extract() {
    round_trip("repokey", "zstd,3", true);
}

#[test]
fn round_trip_keyfile_blake2_via_borg_extract() {
    round_trip("keyfile-blake2", "auto,lzma", true);
}

#[test]
fn sparse_fixed_chunking_round_trips_and_matches_borgs_chunks() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.borg_init_repo("repo", "repokey");
    let src = source_tree(&env);
    let opts = ["--sparse", "--chunker-params", "fixed,1048576"];
    let mut h = vec!["create"];
    h.extend(opts);
    let ha = archive(&repo, "h");
    h.extend([ha.as_str(), src]);
    env.hoard(&h).ok();
    let mut b = vec!["create"];
    b.extend(opts);
    let ba = archive(&repo, "b");
    b.extend([ba.as_str(), src]);
    env.borg(&b).ok();
    let out = borg_extract(&env, &repo, "h");
    tree::assert_same_tree(&env.path().join(src), &out.join(src));
    // Same chunks as borg's: the second archive added no file data.
    let fmt = "{path} {num_chunks} {unique_chunks}{NL}";
    let list = |a: &str| {
        env.borg(["list", "--format", fmt, &format!("{}::{a}", arg(&repo))])
            .ok()
            .out()
    };
    assert_eq!(list("h"), list("b"));
    env.borg(["check", "--verify-data", arg(&repo)]).ok();
}

#[test]
fn items_match_borgs_for_the_same_tree() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.borg_init_repo("repo", "repokey");
    let src = source_tree(&env);
    env.borg(["create", &archive(&repo, "b"), src]).ok();
    env.hoard(["create", &archive(&repo, "h"), src]).ok();
    let list = |a: &str| {
        env.borg([
            "list",
            "--format",
            "{mode} {user} {group} {uid} {gid} {size} {mtime} {ctime} {source} {linktarget} {flags} {xxh64} {path}{NL}",
            &format!("{}::{a}", arg(&repo)),
        ])
        .ok()
        .out()
    };
    assert_eq!(list("h"), list("b"));
    env.borg(["check", arg(&repo)]).ok();
}

/// The extended metadata fields of every item, by path, from `borg debug dump-archive`.
fn ext_metadata(env: &Env, repo: &Path, archive: &str) -> Vec<(String, serde_json::Value)> {
    let out = env.path().join(format!("dump-{archive}.json"));
    env.borg([
        "debug",
        "dump-archive",
        &format!("{}::{archive}", arg(repo)),
        arg(&out),
    ])
    .ok();
    let text = std::fs::read_to_string(&out).expect("dump");
    let v: serde_json::Value = serde_json::from_str(&text).expect("dump JSON");
    let items = v["_items"].as_array().expect("items");
    items
        .iter()
        .map(|i| {
            let keys = [
                "mode",
                "user",
                "group",
                "bsdflags",
                "xattrs",
                "acl_access",
                "acl_default",
            ];
            let picked: serde_json::Map<String, serde_json::Value> = keys
                .iter()
                .filter_map(|k| i.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            (i["path"].to_string(), serde_json::Value::Object(picked))
        })
        .collect()
}

#[test]
fn flags_xattrs_and_acls_match_borgs_with_one_and_many_workers() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.borg_init_repo("repo", "repokey");
    let src = source_tree(&env);
    env.borg(["create", &archive(&repo, "b"), src]).ok();
    for (name, workers) in [
        ("h1", "1"),
        ("h4", "4"),
        ("h4-again", "4"),
        ("h1-again", "1"),
    ] {
        env.hoard([
            "--workers",
            workers,
            "create",
            &format!("{}::{name}", arg(&repo)),
            src,
        ])
        .ok();
    }
    let borgs = ext_metadata(&env, &repo, "b");
    let has_acl = std::process::Command::new("setfacl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_acl {
        let with_acl = |k: &str| borgs.iter().filter(|(_, m)| m.get(k).is_some()).count();
        assert!(with_acl("acl_access") > 0, "no access ACL in the test tree");
        assert!(
            with_acl("acl_default") > 0,
            "no default ACL in the test tree"
        );
    }
    assert!(borgs.iter().any(|(_, m)| m.get("xattrs").is_some()));
    for name in ["h1", "h4", "h4-again", "h1-again"] {
        let ours = ext_metadata(&env, &repo, name);
        assert_eq!(ours.len(), borgs.len(), "item count of {name}");
        for (o, b) in ours.iter().zip(&borgs) {
            assert_eq!(o, b, "archive {name}");
        }
    }
}

#[test]
fn interleaved_with_borg_and_deduplicated() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.borg_init_repo("repo", "repokey-blake2");
    let src = source_tree(&env);
    let a = |n: &str| format!("{}::{n}", arg(&repo));
    env.borg(["create", &a("borg1"), src]).ok();
    let h1 = json(&env.hoard(["create", "--json", &a("hoard1"), src]).ok());
    env.borg(["create", &a("borg2"), src]).ok();
    let h2 = json(&env.hoard(["create", "--json", &a("hoard2"), src]).ok());
    env.borg(["check", "--verify-data", arg(&repo)]).ok();
    // Everything but the archive's own metadata was already in the repository.
    for h in [&h1, &h2] {
        let dedup = h["archive"]["stats"]["deduplicated_size"]
            .as_u64()
            .expect("dedup");
        assert!(dedup < 3000, "unchanged tree stored {dedup} new bytes");
    }
    let list = env.borg(["list", "--short", arg(&repo)]).ok().out();
    assert_eq!(list, "borg1\nhoard1\nborg2\nhoard2\n");
    let out = borg_extract(&env, &repo, "hoard2");
    tree::assert_same_tree(&env.path().join(src), &out.join(src));
}

#[test]
fn json_matches_borgs_structure_and_totals() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let src = source_tree(&env);
    let (rb, rh) = (env.path().join("rb"), env.path().join("rh"));
    env.borg(["init", "-e", "none", arg(&rb)]).ok();
    env.borg(["init", "-e", "none", arg(&rh)]).ok();
    // No compression: lz4 implementations may differ by a few bytes, stored sizes must not.
    let b = json(
        &env.borg(["create", "--json", "-C", "none", &archive(&rb, "x"), src])
            .ok(),
    );
    let h = json(
        &env.hoard(["create", "--json", "-C", "none", &archive(&rh, "x"), src])
            .ok(),
    );
    fn shape(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
            }
            serde_json::Value::Array(_) => "array".into(),
            serde_json::Value::Number(n) if n.is_f64() => "float".into(),
            serde_json::Value::Number(_) => "int".into(),
            serde_json::Value::String(_) => "string".into(),
            other => other.clone(),
        }
    }
    assert_eq!(shape(&h), shape(&b));
    assert_eq!(
        h["archive"]["stats"]["nfiles"],
        b["archive"]["stats"]["nfiles"]
    );
    assert_eq!(h["archive"]["name"], "x");
    // The archives' own totals are the file data only: identical.
    assert_eq!(
        h["cache"]["stats"]["total_size"],
        b["cache"]["stats"]["total_size"]
    );
    assert_eq!(
        h["cache"]["stats"]["total_csize"],
        b["cache"]["stats"]["total_csize"]
    );
    let (ho, bo) = (
        h["archive"]["stats"]["original_size"]
            .as_i64()
            .expect("size"),
        b["archive"]["stats"]["original_size"]
            .as_i64()
            .expect("size"),
    );
    // borg 1.2 counts the item stream and the metadata object in "This archive"; hoard, as
    // borg 1.4, the file data only (tests/create_options.rs compares with borg 1.4.5 exactly).
    assert!(bo > ho && bo - ho < 2000, "original_size {ho} vs borg {bo}");
    assert_eq!(h["encryption"], b["encryption"]);
}

#[test]
fn stats_block_has_borgs_layout() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let src = source_tree(&env);
    let r = env
        .hoard(["create", "--stats", &archive(&repo, "s1"), src])
        .ok();
    let lines: Vec<&str> = r.stderr.lines().collect();
    let dashes = "-".repeat(78);
    assert_eq!(lines.len(), 17, "{}", r.stderr);
    assert_eq!(lines[16], dashes);
    assert_eq!(lines[0], dashes);
    assert_eq!(lines[1], format!("Repository: {}", repo.display()));
    assert_eq!(lines[2], "Archive name: s1");
    assert!(lines[3].starts_with("Archive fingerprint: "));
    assert!(lines[4].starts_with("Time (start): "));
    assert!(lines[5].starts_with("Time (end):   "));
    assert!(lines[6].starts_with("Duration: ") && lines[6].ends_with(" seconds"));
    assert_eq!(lines[7], "Number of files: 13");
    assert_eq!(lines[8], "Utilization of max. archive size: 0%");
    assert_eq!(lines[9], dashes);
    assert_eq!(
        lines[10],
        "                       Original size      Compressed size    Deduplicated size"
    );
    assert!(lines[11].starts_with("This archive:   "));
    assert!(lines[12].starts_with("All archives:   "));
    assert_eq!(lines[13], "");
    assert_eq!(
        lines[14],
        "                       Unique chunks         Total chunks"
    );
    assert!(lines[15].starts_with("Chunk index:    "));
}

#[test]
fn list_statuses_and_files_cache_within_borg_rules() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let src = source_tree(&env);
    let r = env
        .hoard(["create", "--list", &archive(&repo, "l1"), src])
        .ok();
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(lines.contains(&"A src/tree/hello.txt"), "{}", r.stderr);
    assert!(lines.contains(&"d src/tree/dir"));
    assert!(lines.contains(&"s src/tree/links/rel-symlink"));
    assert!(lines.contains(&"f src/tree/fifo"));
    assert_eq!(lines.last(), Some(&"d src/tree"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("h ")).count(),
        2,
        "two hardlink slaves: {}",
        r.stderr
    );
    // --filter keeps only the given letters
    let r = env
        .hoard([
            "create",
            "--list",
            "--filter",
            "d",
            &archive(&repo, "l2"),
            src,
        ])
        .ok();
    assert!(
        r.stderr.lines().all(|l| l.starts_with("d ")),
        "{}",
        r.stderr
    );
}

/// A second run must not re-read unchanged files (`U`), a modified one is read again (`M`),
/// with the same letters as borg gives for the same sequence on its own repository.
#[test]
fn unchanged_files_are_not_read_again_and_modified_ones_are() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let (rh, rb) = (env.path().join("rh"), env.path().join("rb"));
    env.hoard(["init", "-e", "none", arg(&rh)]).ok();
    env.borg(["init", "-e", "none", arg(&rb)]).ok();
    let src = source_tree(&env);
    // The files cache never keeps the newest ctime (borg's rule for coarse timestamps): make
    // sure that is a file of its own.
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::fs::write(env.path().join(src).join("zz-newest"), b"new\n").expect("write");
    let both = |n: &str| -> String {
        let h = env
            .hoard(["create", "--list", &format!("{}::{n}", arg(&rh)), src])
            .ok();
        let b = env
            .borg(["create", "--list", &format!("{}::{n}", arg(&rb)), src])
            .ok();
        assert_eq!(h.stderr, b.stderr, "hoard vs borg letters in {n}");
        h.stderr
    };
    both("c1");
    let second = both("c2");
    assert!(
        second.lines().any(|l| l == "U src/tree/hello.txt"),
        "{second}"
    );
    assert!(
        second.lines().any(|l| l == "U src/tree/big.bin"),
        "{second}"
    );
    std::fs::write(env.path().join(src).join("hello.txt"), b"changed\n").expect("write");
    let third = both("c3");
    assert!(
        third.lines().any(|l| l == "M src/tree/hello.txt"),
        "{third}"
    );
    env.borg(["check", arg(&rh)]).ok();
}

#[test]
fn second_run_of_unchanged_tree_stores_only_metadata() {
    let env = Env::new();
    let repo = env.init_repo("repo", "repokey");
    let src = source_tree(&env);
    let first = json(
        &env.hoard(["create", "--json", &archive(&repo, "d1"), src])
            .ok(),
    );
    let second = json(
        &env.hoard(["create", "--json", &archive(&repo, "d2"), src])
            .ok(),
    );
    let d1 = first["archive"]["stats"]["deduplicated_size"]
        .as_u64()
        .expect("d1");
    let d2 = second["archive"]["stats"]["deduplicated_size"]
        .as_u64()
        .expect("d2");
    assert!(d1 > 300_000, "first run stored {d1}");
    assert!(d2 < 3000, "second run stored {d2}");
    assert_eq!(
        first["archive"]["stats"]["nfiles"],
        second["archive"]["stats"]["nfiles"]
    );
}

#[test]
fn stdin_is_stored_as_a_file() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let data = tree::pseudo_random(100_000, 9);
    let mut child = env
        .hoard_cmd()
        .args([
            "create",
            "--stdin-name",
            "in/data.bin",
            "--stdin-mode",
            "0640",
            &archive(&repo, "st"),
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&data).expect("write");
    }
    assert!(child.wait().expect("wait").success());
    let r = env
        .borg(["extract", "--stdout", &archive(&repo, "st"), "in/data.bin"])
        .ok();
    assert_eq!(r.stdout, data);
    let l = env
        .borg([
            "list",
            "--format",
            "{mode} {user} {path}{NL}",
            &archive(&repo, "st"),
        ])
        .ok();
    assert_eq!(l.out(), "-rw-r----- root in/data.bin\n");
}

#[test]
fn dry_run_writes_nothing() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let src = source_tree(&env);
    let before = snapshot_dir(&repo);
    let r = env
        .hoard(["create", "-n", "--list", &archive(&repo, "dry"), src])
        .ok();
    assert!(
        r.stderr.lines().any(|l| l == "- src/tree/hello.txt"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.lines().any(|l| l == "- src/tree"), "{}", r.stderr);
    assert_eq!(snapshot_dir(&repo), before);
}

#[test]
fn existing_archive_is_refused() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let src = source_tree(&env);
    env.hoard(["create", &archive(&repo, "dup"), src]).ok();
    let before = snapshot_dir(&repo);
    let r = env
        .hoard(["create", &archive(&repo, "dup"), src])
        .expect_code(2);
    assert_one_line_error(&r.stderr, "Archive dup already exists");
    assert_eq!(snapshot_dir(&repo), before);
}

#[test]
fn missing_path_is_a_warning_like_borgs() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let src = source_tree(&env);
    let r = env
        .hoard(["create", &archive(&repo, "m"), "nope", src])
        .expect_code(1);
    assert_one_line_error(
        &r.stderr,
        "nope: [Errno 2] No such file or directory: 'nope'",
    );
    if borg_available() {
        let b = env
            .borg(["create", &archive(&repo, "mb"), "nope", src])
            .expect_code(1);
        assert_eq!(r.stderr, b.stderr);
        let hl = env.borg(["list", "--short", &archive(&repo, "m")]).ok();
        let bl = env.borg(["list", "--short", &archive(&repo, "mb")]).ok();
        assert_eq!(hl.out(), bl.out());
    }
}

fn chown_tree(p: &Path, uid: u32) {
    let st = std::process::Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(p)
        .status()
        .expect("chown");
    assert!(st.success());
}

#[test]
fn unreadable_file_is_a_warning_and_the_rest_is_saved() {
    if !tree::is_root() {
        eprintln!("needs root to switch to an unprivileged uid; skipped");
        return;
    }
    const NOBODY: u32 = 65534;
    let env = Env::new();
    let repo = env.path().join("repo");
    let src = env.path().join("plain");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("ok.txt"), b"fine\n").expect("write");
    std::fs::write(src.join("secret"), b"hidden\n").expect("write");
    std::fs::write(src.join("sub/also-ok"), b"fine too\n").expect("write");
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    chown_tree(env.path(), NOBODY);
    std::fs::set_permissions(src.join("secret"), std::fs::Permissions::from_mode(0o000))
        .expect("chmod");
    let run_as = |mut c: std::process::Command, args: &[&str]| -> Run {
        Run::from(c.uid(NOBODY).gid(NOBODY).args(args).output().expect("run"))
    };
    run_as(env.hoard_cmd(), &["init", "-e", "none", arg(&repo)]).ok();
    let h = run_as(
        env.hoard_cmd(),
        &[
            "create",
            "--list",
            "--filter",
            "E",
            &archive(&repo, "u"),
            "plain",
        ],
    )
    .expect_code(1);
    let lines: Vec<&str> = h.stderr.lines().collect();
    assert_eq!(
        lines,
        vec![
            "plain/secret: open: [Errno 13] Permission denied: 'secret'",
            "E plain/secret"
        ],
        "{}",
        h.stderr
    );
    if borg_available() {
        let b = run_as(
            env.borg_cmd(),
            &[
                "create",
                "--list",
                "--filter",
                "E",
                &archive(&repo, "ub"),
                "plain",
            ],
        )
        .expect_code(1);
        assert_eq!(h.stderr, b.stderr);
        let list = |a: &str| {
            let mut l: Vec<String> = run_as(
                env.borg_cmd(),
                &["list", "--short", &format!("{}::{a}", arg(&repo))],
            )
            .ok()
            .out()
            .lines()
            .map(str::to_string)
            .collect();
            l.sort();
            l
        };
        assert_eq!(
            list("u"),
            vec!["plain", "plain/ok.txt", "plain/sub", "plain/sub/also-ok"]
        );
        assert_eq!(list("u"), list("ub"));
        run_as(env.borg_cmd(), &["check", arg(&repo)]).ok();
    }
}

#[test]
fn bad_pattern_is_one_line_exit_2() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let before = snapshot_dir(&repo);
    let r = env
        .hoard(["create", "-e", "re:[", &archive(&repo, "p"), "."])
        .expect_code(2);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert_eq!(snapshot_dir(&repo), before);
}

#[test]
fn bad_options_are_one_line_exit_2() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    for args in [
        vec!["create", "-C", "nonsense", "REPO::a", "."],
        vec!["create", "--chunker-params", "1,2", "REPO::a", "."],
        vec!["create", "--timestamp", "not-a-time", "REPO::a", "."],
    ] {
        let args: Vec<String> = args.iter().map(|a| a.replace("REPO", arg(&repo))).collect();
        let r = env.hoard(&args).expect_code(2);
        let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", r.stderr);
    }
}

#[test]
fn patterns_and_exclusion_tags_select_what_borg_selects() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.borg_init_repo("repo", "none");
    let src = source_tree(&env);
    let t = env.path().join(src);
    std::fs::create_dir_all(t.join("cachedir/inner")).expect("mkdir");
    std::fs::write(
        t.join("cachedir/CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55 rest",
    )
    .expect("tag");
    std::fs::write(t.join("dir/sub/.nobackup"), b"").expect("tag");
    std::fs::write(
        env.path().join("patterns.lst"),
        b"- src/tree/big.bin\n+ src/tree/links/second\n- src/tree/links\n",
    )
    .expect("patterns");
    let opts = [
        "--exclude-caches",
        "--exclude-if-present",
        ".nobackup",
        "--keep-exclude-tags",
        "-e",
        "*.img",
        "--pattern",
        "- re:unicode",
        "--patterns-from",
        "patterns.lst",
    ];
    let list = |name: &str| {
        env.borg(["list", "--short", &format!("{}::{name}", arg(&repo))])
            .ok()
            .out()
    };
    let mut args = vec!["create", "--list"];
    args.extend(opts);
    let b_arch = archive(&repo, "b");
    let h_arch = archive(&repo, "h");
    let mut ba = args.clone();
    ba.extend([b_arch.as_str(), src]);
    let mut ha = args.clone();
    ha.extend([h_arch.as_str(), src]);
    let b = env.borg(&ba).ok();
    let h = env.hoard(&ha).ok();
    assert_eq!(list("h"), list("b"));
    // The same decisions, item by item (file letters aside: borg knows the files by now).
    let letters =
        |t: &str| -> Vec<String> { t.lines().map(|l| l.replacen("U ", "A ", 1)).collect() };
    assert_eq!(letters(&h.stderr), letters(&b.stderr));
}

#[test]
fn checkpoint_writes_part_files_and_leaves_no_checkpoint_archive() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let data = tree::pseudo_random(300_000, 5);
    let mut child = env
        .hoard_cmd()
        .args([
            "create",
            "-c",
            "1",
            "--chunker-params",
            "fixed,65536",
            &archive(&repo, "cp"),
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&data[..100_000]).expect("write");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        stdin.write_all(&data[100_000..]).expect("write");
    }
    assert!(child.wait().expect("wait").success());
    // Only the final archive is left; it holds the parts and the complete file.
    let archives = env.borg(["list", "--short", arg(&repo)]).ok().out();
    assert_eq!(archives, "cp\n");
    let items = env
        .borg([
            "list",
            "--consider-part-files",
            "--short",
            &archive(&repo, "cp"),
        ])
        .ok()
        .out();
    assert_eq!(items, "stdin.borg_part_1\nstdin.borg_part_2\nstdin\n");
    let r = env
        .borg(["extract", "--stdout", &archive(&repo, "cp"), "stdin"])
        .ok();
    assert_eq!(r.stdout, data);
    env.borg(["check", "--verify-data", arg(&repo)]).ok();
}

#[test]
fn paths_from_stdin_and_content_from_command_like_borg() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.borg_init_repo("repo", "none");
    source_tree(&env);
    // (no `/./`: borg 1.4 strips the prefix before it, borg 1.2 does not; see create_options.rs)
    let listed = b"src/tree/hello.txt\0src/tree/dir\0src/tree//links/master\0src/tree/missing\0";
    let run = |mut c: std::process::Command, name: &str| -> Run {
        use std::io::Write;
        let mut child = c
            .args([
                "create",
                "--list",
                "--paths-from-stdin",
                "--paths-delimiter",
                "\\0",
                &format!("{}::{name}", arg(&repo)),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(listed)
            .expect("write");
        Run::from(child.wait_with_output().expect("wait"))
    };
    let b = run(env.borg_cmd(), "pb").expect_code(1);
    let h = run(env.hoard_cmd(), "ph").expect_code(1);
    assert_eq!(h.stderr, b.stderr);
    let list = |n: &str| {
        env.borg(["list", "--short", &format!("{}::{n}", arg(&repo))])
            .ok()
            .out()
    };
    assert_eq!(list("ph"), list("pb"));
    // --content-from-command stores the command's output; a failing command is an error.
    env.hoard([
        "create",
        "--content-from-command",
        "--stdin-name",
        "out.txt",
        &archive(&repo, "cc"),
        "--",
        "printf",
        "hello",
    ])
    .ok();
    let r = env
        .borg(["extract", "--stdout", &archive(&repo, "cc"), "out.txt"])
        .ok();
    assert_eq!(r.stdout, b"hello");
    let r = env
        .hoard([
            "create",
            "--content-from-command",
            &archive(&repo, "cf"),
            "--",
            "false",
        ])
        .expect_code(2);
    let b = env
        .borg([
            "create",
            "--content-from-command",
            &archive(&repo, "cf"),
            "--",
            "false",
        ])
        .expect_code(2);
    assert_eq!(r.stderr, b.stderr);
    let archives = env.borg(["list", "--short", arg(&repo)]).ok().out();
    assert!(!archives.contains("cf"), "{archives}");
}
