//! `hoard debug …`, `benchmark crud`, `--debug-profile` and related secrets, with borg 1.4.5 as
//! the oracle: the same dumps byte for byte, objects put by one program read by the other,
//! related repositories that deduplicate against each other and pass borg's `check`.

mod common;

use std::path::{Path, PathBuf};

use common::{borg14, Env};

/// A repository made by hoard with one archive `a` of a small tree (text and random data).
fn repo_with_archive(env: &Env) {
    let input = env.path().join("input");
    std::fs::create_dir_all(input.join("dir")).expect("mkdir");
    std::fs::write(input.join("hello"), b"hello world\n").expect("write");
    let random: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(input.join("dir/random"), random).expect("write");
    env.hoard(["init", "-e", "repokey", "repo"]).ok();
    env.hoard(["create", "repo::a", "input"]).ok();
}

fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

fn fresh_dir(env: &Env, name: &str) -> PathBuf {
    let d = env.path().join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn dumps_equal_borgs_byte_for_byte() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    repo_with_archive(&env);
    // dump-manifest, dump-archive, dump-hints write the same JSON as borg 1.4.5
    for (cmd, target) in [
        ("dump-manifest", "repo"),
        ("dump-archive", "repo::a"),
        ("dump-hints", "repo"),
    ] {
        let h = env.hoard(["debug", cmd, target, "-"]).ok();
        let b = env.run_at(&borg, ["debug", cmd, target, "-"]).ok();
        assert!(!h.stdout.is_empty(), "{cmd}");
        assert_eq!(h.out(), b.out(), "{cmd}");
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &env.hoard(["debug", "dump-manifest", "repo", "-"])
            .ok()
            .stdout,
    )
    .expect("json");
    for k in ["archives", "config", "item_keys", "timestamp", "version"] {
        assert!(manifest.get(k).is_some(), "{k} in {manifest}");
    }
    // dump-repo-objs (with and without --ghost) and dump-archive-items: same files, contents
    // and lines
    for args in [
        &["debug", "dump-repo-objs", "../repo"][..],
        &["debug", "dump-repo-objs", "--ghost", "../repo"][..],
        &[
            "debug",
            "dump-repo-objs",
            "--ghost",
            "--segment",
            "1",
            "../repo",
        ][..],
        &["debug", "dump-archive-items", "../repo::a"][..],
    ] {
        let hd = fresh_dir(&env, "dump-h");
        let bd = fresh_dir(&env, "dump-b");
        let h = env
            .hoard_cmd()
            .args(args)
            .current_dir(&hd)
            .output()
            .expect("hoard");
        let b = env
            .command_for(&borg.to_string_lossy())
            .args(args)
            .current_dir(&bd)
            .output()
            .expect("borg");
        assert!(
            h.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&h.stderr)
        );
        assert!(b.status.success(), "{args:?}");
        assert_eq!(h.stdout, b.stdout, "{args:?}");
        assert!(String::from_utf8_lossy(&h.stdout).ends_with("Done.\n"));
        let hf = files_in(&hd);
        assert!(!hf.is_empty(), "{args:?}");
        assert_eq!(hf, files_in(&bd), "{args:?}");
        std::fs::remove_dir_all(&hd).expect("rm");
        std::fs::remove_dir_all(&bd).expect("rm");
    }
    // search-repo-objs and refcount-obj print what borg prints
    for args in [
        &["debug", "search-repo-objs", "repo", "str:hello"][..],
        &["debug", "search-repo-objs", "repo", "hex:776f726c64"][..],
    ] {
        let h = env.hoard(args).ok();
        assert!(h.out().contains("hello"), "{}", h.out());
        assert_eq!(h.out(), env.run_at(&borg, args).ok().out(), "{args:?}");
    }
    let archive_id = manifest["archives"]["a"]["id"]
        .as_str()
        .expect("id")
        .trim_start_matches('\u{7f}')
        .to_string();
    let zero = "0".repeat(64);
    let args = [
        "debug",
        "refcount-obj",
        "repo",
        &archive_id,
        &zero,
        "124",
        "xyza",
    ];
    let h = env.hoard(args).ok();
    assert_eq!(
        h.out(),
        format!(
            "object {archive_id} has 1 referrers [info from chunks cache].\nobject {zero} not found [info from chunks cache].\nobject id 124 is invalid.\nobject id xyza is invalid.\n"
        )
    );
    assert_eq!(h.out(), env.run_at(&borg, args).ok().out());
}

#[test]
fn objects_put_by_one_program_are_read_by_the_other() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    env.hoard(["init", "-e", "repokey", "repo"]).ok();
    std::fs::write(env.path().join("data"), b"some data").expect("write");
    let id = env.hoard(["debug", "id-hash", "repo", "data"]).ok().out();
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(
        env.run_at(&borg, ["debug", "id-hash", "repo", "data"])
            .ok()
            .out()
            .trim(),
        id
    );
    // hoard puts, borg gets
    let put = env.hoard(["debug", "put-obj", "repo", &id, "data"]).ok();
    assert_eq!(put.out(), format!("object {id} put.\n"));
    let got = env
        .run_at(&borg, ["debug", "get-obj", "repo", &id, "by-borg"])
        .ok();
    assert_eq!(got.out(), format!("object {id} fetched.\n"));
    assert_eq!(
        std::fs::read(env.path().join("by-borg")).expect("read"),
        b"some data"
    );
    // borg puts, hoard gets
    let other = "ab".repeat(32);
    env.run_at(&borg, ["debug", "put-obj", "repo", &other, "data"])
        .ok();
    let got = env
        .hoard(["debug", "get-obj", "repo", &other, "by-hoard"])
        .ok();
    assert_eq!(got.out(), format!("object {other} fetched.\n"));
    assert_eq!(
        std::fs::read(env.path().join("by-hoard")).expect("read"),
        b"some data"
    );
    // delete-obj: deleted, not found, invalid, exit 0 as borg
    let del = env
        .hoard(["debug", "delete-obj", "repo", &id, &other, "invalid"])
        .ok();
    assert_eq!(
        del.out(),
        format!(
            "object {id} deleted.\nobject {other} deleted.\nobject id invalid is invalid.\nDone.\n"
        )
    );
    let again = env.hoard(["debug", "delete-obj", "repo", &id]).ok();
    assert_eq!(again.out(), format!("object {id} not found.\nDone.\n"));
    // the repository is as it was: borg 1.4.5 finds nothing wrong
    env.run_at(&borg, ["check", "repo"]).ok();
}

#[test]
fn bad_ids_missing_objects_and_files_get_borgs_one_line_errors() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    env.hoard(["init", "-e", "repokey", "repo"]).ok();
    std::fs::write(env.path().join("data"), b"x").expect("write");
    let missing = "01".repeat(32);
    for args in [
        &["debug", "get-obj", "repo", "12", "out"][..],
        &["debug", "get-obj", "repo", "xyzz", "out"][..],
        &["debug", "get-obj", "repo", "123", "out"][..],
        &["debug", "get-obj", "repo", &missing, "out"][..],
        &["debug", "put-obj", "repo", "12", "data"][..],
        &["debug", "search-repo-objs", "repo", "nonsense"][..],
    ] {
        let h = env.hoard(args).expect_code(2);
        let b = env.run_at(&borg, args).expect_code(2);
        common::assert_one_line_error(&h.stderr, "");
        assert_eq!(h.stderr.trim(), b.stderr.trim(), "{args:?}");
    }
    assert!(!env.path().join("out").exists());
    // borg 1.4.5 shows a traceback for a missing input file; hoard one line
    let h = env
        .hoard(["debug", "put-obj", "repo", &missing, "no-such-file"])
        .expect_code(2);
    common::assert_one_line_error(&h.stderr, "no-such-file: No such file or directory");
    let h = env
        .hoard(["debug", "dump-archive", "repo::nope", "out"])
        .expect_code(2);
    common::assert_one_line_error(&h.stderr, "Archive nope does not exist");
    assert!(
        !env.path().join("out").exists(),
        "no dump file for a missing archive"
    );
}

#[test]
fn a_corrupt_object_stops_the_dump_with_one_line() {
    let env = Env::new();
    env.hoard(["init", "-e", "repokey", "repo"]).ok();
    std::fs::write(env.path().join("junk"), b"\x03not an encrypted object").expect("write");
    let id = "cd".repeat(32);
    env.hoard(["debug", "put-obj", "repo", &id, "junk"]).ok();
    let out = fresh_dir(&env, "out");
    let r = env
        .hoard_cmd()
        .args(["debug", "dump-repo-objs", "../repo"])
        .current_dir(&out)
        .output()
        .expect("hoard");
    assert_eq!(r.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&r.stderr);
    common::assert_one_line_error(&stderr, "cannot be decoded");
    let r = env
        .hoard(["debug", "search-repo-objs", "repo", "str:x"])
        .expect_code(2);
    common::assert_one_line_error(&r.stderr, "cannot be decoded");
    // a profile that is no msgpack
    std::fs::write(env.path().join("bad.prof"), b"\xc1\xc1").expect("write");
    let r = env
        .hoard(["debug", "convert-profile", "bad.prof", "out.pyprof"])
        .expect_code(2);
    common::assert_one_line_error(&r.stderr, "The profile cannot be decoded");
}

fn python_stats(env: &Env, file: &str) -> String {
    let code = format!(
        "import pstats, marshal\ns = pstats.Stats({file:?}); s.strip_dirs(); s.sort_stats('cumtime')\nd = marshal.load(open({file:?}, 'rb'))\nprint(sorted(k[2] for k in d))"
    );
    let out = env
        .command_for("python3")
        .args(["-c", &code])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pstats could not read {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn debug_profiles_convert_and_load_in_pstats() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    repo_with_archive(&env);
    env.hoard(["create", "repo::b", "input", "--debug-profile=create.prof"])
        .ok();
    env.hoard(["debug", "convert-profile", "create.prof", "create.pyprof"])
        .ok();
    assert_eq!(
        python_stats(&env, "create.pyprof"),
        "['cpu_system', 'cpu_user', 'do_create', 'main']\n"
    );
    // borg's converter reads hoard's profile into the same Python data
    env.run_at(
        &borg,
        ["debug", "convert-profile", "create.prof", "b.pyprof"],
    )
    .ok();
    let code = "import marshal\nprint(marshal.load(open('create.pyprof','rb')) == marshal.load(open('b.pyprof','rb')))";
    let same = env
        .command_for("python3")
        .args(["-c", code])
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&same.stdout), "True\n");
    // .pyprof is written directly in marshal format; hoard converts borg's own profiles
    env.hoard([
        "create",
        "repo::c",
        "input",
        "--debug-profile=direct.pyprof",
    ])
    .ok();
    python_stats(&env, "direct.pyprof");
    env.run_at(&borg, ["list", "repo", "--debug-profile=borg.prof"])
        .ok();
    env.hoard(["debug", "convert-profile", "borg.prof", "borg.pyprof"])
        .ok();
    env.run_at(
        &borg,
        ["debug", "convert-profile", "borg.prof", "borg2.pyprof"],
    )
    .ok();
    let code = "import marshal\nprint(marshal.load(open('borg.pyprof','rb')) == marshal.load(open('borg2.pyprof','rb')))";
    let same = env
        .command_for("python3")
        .args(["-c", code])
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&same.stdout), "True\n");
    // a profile path that cannot be written fails before the command runs
    let r = env
        .hoard([
            "create",
            "repo::d",
            "input",
            "--debug-profile=/nonexistent/x.prof",
        ])
        .expect_code(2);
    common::assert_one_line_error(&r.stderr, "/nonexistent/x.prof");
    let list = env.hoard(["list", "repo", "--short"]).ok().out();
    assert!(!list.contains('d'), "{list}");
}

#[test]
fn related_repository_from_borg_deduplicates_and_checks_clean() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    let input = env.path().join("input");
    std::fs::create_dir_all(&input).expect("mkdir");
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8 ^ (i >> 7) as u8)
        .collect();
    std::fs::write(input.join("file1"), data).expect("write");
    let params = "--chunker-params=buzhash,10,18,14,4095";
    env.run_at(&borg, ["init", "-e", "repokey", "repo1"]).ok();
    env.run_at(&borg, ["create", params, "repo1::a1", "input"])
        .ok();
    env.run_at(
        &borg,
        ["key", "export-related-secrets", "repo1", "secrets.json"],
    )
    .ok();
    // hoard exports the same file from the same repository
    env.hoard(["key", "export-related-secrets", "repo1", "hoard.json"])
        .ok();
    assert_eq!(
        std::fs::read(env.path().join("hoard.json")).expect("read"),
        std::fs::read(env.path().join("secrets.json")).expect("read")
    );
    env.hoard([
        "init",
        "-e",
        "repokey",
        "--import-related-secrets",
        "secrets.json",
        "repo2",
    ])
    .ok();
    env.hoard(["create", params, "repo2::a2", "input"]).ok();
    // the same chunk ids in both archives (more than a few: the file is really chunked)
    let chunks = |target: &str| {
        let dump = env
            .run_at(&borg, ["debug", "dump-archive", target, "-"])
            .ok();
        let v: serde_json::Value = serde_json::from_slice(&dump.stdout).expect("json");
        v["_items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i.get("chunks"))
            .flat_map(|c| c.as_array().cloned().unwrap_or_default())
            .map(|c| c[0].as_str().unwrap_or_default().to_string())
            .collect::<Vec<String>>()
    };
    let c1 = chunks("repo1::a1");
    assert!(c1.len() > 3, "{c1:?}");
    assert_eq!(c1, chunks("repo2::a2"));
    // different encryption keys: the key blobs differ, the related secrets are equal
    env.hoard(["key", "export-related-secrets", "repo2", "repo2.json"])
        .ok();
    assert_eq!(
        std::fs::read(env.path().join("repo2.json")).expect("read"),
        std::fs::read(env.path().join("secrets.json")).expect("read")
    );
    let k1 = env.hoard(["key", "export", "repo1"]).ok().out();
    let k2 = env.hoard(["key", "export", "repo2"]).ok().out();
    assert_ne!(k1.lines().nth(1), k2.lines().nth(1));
    env.run_at(&borg, ["check", "--verify-data", "repo2"]).ok();
    // a BLAKE2b repository cannot share an HMAC-SHA256 id key: refused, nothing created
    let r = env
        .hoard([
            "init",
            "-e",
            "repokey-blake2",
            "--import-related-secrets",
            "secrets.json",
            "repo3",
        ])
        .expect_code(2);
    assert!(
        r.stderr.contains("deduplication will break"),
        "{}",
        r.stderr
    );
    assert!(!env.path().join("repo3").exists());
    // bad secrets files: borg's messages, nothing created
    std::fs::write(env.path().join("bad.json"), b"nojson").expect("write");
    let r = env
        .hoard([
            "init",
            "-e",
            "repokey",
            "--import-related-secrets",
            "bad.json",
            "repo4",
        ])
        .expect_code(2);
    common::assert_one_line_error(&r.stderr, "Invalid JSON in related secrets file: bad.json");
    assert!(!env.path().join("repo4").exists());
}

#[test]
fn benchmark_crud_prints_borgs_lines_and_cleans_up() {
    let mut env = Env::new();
    env.set("_BORG_BENCHMARK_CRUD_TEST", "YES");
    env.hoard(["init", "-e", "repokey", "repo"]).ok();
    let data = fresh_dir(&env, "data");
    let out = env
        .hoard(["benchmark", "crud", "repo", data.to_str().expect("utf-8")])
        .ok()
        .out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    let re = regex::Regex::new(
        r"^[CRUD]-[ZR]-TEST +\d+\.\d\d MB/s \(1 \* 1 B (all-zero|random) files: \d+\.\d\ds\)$",
    )
    .expect("regex");
    for (i, l) in lines.iter().enumerate() {
        assert!(re.is_match(l), "{l}");
        assert_eq!(&l[..1], ["C", "R", "U", "D"][i % 4]);
    }
    assert_eq!(env.hoard(["list", "repo"]).ok().out(), "");
    assert_eq!(std::fs::read_dir(&data).expect("read_dir").count(), 0);
}

#[test]
fn debug_info_names_crc_and_python() {
    let env = Env::new();
    let out = env.hoard(["debug", "info"]).ok().out();
    assert!(out.contains("CRC implementation: crc32fast"), "{out}");
    assert!(out.contains("Python: none (hoard"), "{out}");
    assert!(out.contains("sys.argv: ["), "{out}");
}
