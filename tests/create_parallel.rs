//! The multi-core `create` pipeline writes the same archive as a single worker: two copies of
//! one freshly initialised repository (same key material), one backed up with
//! `HOARD_WORKERS=1`, the other with 4 workers, must hold identical item streams (every field,
//! chunk ids and sizes included), identical archive statistics and the same chunk index totals —
//! for a first backup and for a re-backup with changed, unchanged and new files. The N-worker
//! repository is then verified and extracted by the real borg.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{borg_available, tree, Env, Run};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run(mut c: Command) -> Run {
    let out = c.output().expect("run");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    r.ok()
}

/// The two sides: a base dir (cache, security dir) and a repository each.
struct Side {
    base: PathBuf,
    repo: PathBuf,
    workers: &'static str,
}

impl Side {
    fn hoard(&self, env: &Env, args: &[&str]) -> Run {
        let mut c = env.hoard_cmd();
        c.env("BORG_BASE_DIR", &self.base)
            .env("HOARD_WORKERS", self.workers)
            .args(args);
        run(c)
    }

    fn borg(&self, env: &Env, args: &[&str]) -> Run {
        let mut c = env.borg_cmd();
        c.env("BORG_BASE_DIR", &self.base).args(args);
        run(c)
    }

    fn arch(&self, name: &str) -> String {
        format!("{}::{name}", s(&self.repo))
    }
}

/// The full test tree plus many small files (some with equal contents, so that dedup order
/// matters) and multi-chunk files for the small chunker parameters used here.
fn build_source(root: &Path) -> PathBuf {
    let t = tree::build_full_tree(root, true);
    let many = t.join("many");
    std::fs::create_dir_all(&many).expect("mkdir");
    for i in 0..400u64 {
        let data = if i % 7 == 0 {
            b"same content in several files\n".to_vec()
        } else {
            tree::pseudo_random(100 + (i as usize * 37) % 3000, 1000 + i)
        };
        std::fs::write(many.join(format!("f{i:04}")), data).expect("write");
    }
    let multi = t.join("multi");
    std::fs::create_dir_all(&multi).expect("mkdir");
    for i in 0..6u64 {
        let mut data = tree::pseudo_random(600_000 + i as usize * 50_001, 77 + i);
        if i % 2 == 1 {
            // shares a long run with file 0: chunks repeat across files
            data.extend_from_slice(&tree::pseudo_random(400_000, 77));
        }
        std::fs::write(multi.join(format!("m{i}")), data).expect("write");
    }
    t
}

/// Decrypted item stream and metadata as borg dumps them, minus what differs by design
/// (times, command line).
fn dump(env: &Env, side: &Side, archive: &str) -> serde_json::Value {
    let out = env
        .path()
        .join(format!("dump-{}-{archive}.json", side.workers));
    side.borg(
        env,
        &["debug", "dump-archive", &side.arch(archive), s(&out)],
    );
    let text = std::fs::read_to_string(&out).expect("dump");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("dump JSON");
    if let Some(meta) = v.get_mut("_meta").and_then(|m| m.as_object_mut()) {
        // the TAM salt is random per archive
        for k in ["time", "time_end", "cmdline", "tam"] {
            meta.remove(k);
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("_manifest_entry");
    }
    v
}

/// The listing with every per-item field hoard can show, chunk count and content hash.
fn listing(env: &Env, side: &Side, archive: &str) -> String {
    let fmt = "{mode} {user} {group} {uid} {gid} {path} {source} {linktarget} {flags} {size} \
               {csize} {dsize} {dcsize} {num_chunks} {unique_chunks} {mtime} {ctime} {atime} \
               {isomtime} {health} {sha256}{NL}";
    side.hoard(env, &["list", "--format", fmt, &side.arch(archive)])
        .out()
}

/// `info --json` figures that must match. (Left out: the deduplicated size and the
/// `max_archive_size` limit, which count the archive metadata object, whose compressed size
/// varies by a byte or two with its random TAM salt. The statistics stored in the metadata
/// are compared exactly through the dumps.)
fn stats(env: &Env, side: &Side, archive: &str) -> serde_json::Value {
    let r = side.hoard(env, &["info", "--json", &side.arch(archive)]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("info JSON");
    let a = &v["archives"][0];
    let c = &v["cache"]["stats"];
    serde_json::json!({
        "original_size": a["stats"]["original_size"],
        "compressed_size": a["stats"]["compressed_size"],
        "nfiles": a["stats"]["nfiles"],
        "chunker_params": a["chunker_params"],
        "chunks": c["total_chunks"],
        "unique_chunks": c["total_unique_chunks"],
        "all_archives_size": c["total_size"],
    })
}

#[test]
fn one_and_four_workers_write_the_same_archives() {
    let env = Env::new();
    let src = build_source(&env.path().join("src"));
    let one = Side {
        base: env.base(),
        repo: env.path().join("repo1"),
        workers: "1",
    };
    let four = Side {
        base: env.path().join("base4"),
        repo: env.path().join("repo4"),
        workers: "4",
    };
    std::fs::create_dir_all(&four.base).expect("mkdir");
    one.hoard(&env, &["init", "-e", "repokey", s(&one.repo)]);
    // Same key material and repository id: a copy of the freshly initialised repository.
    let st = Command::new("cp")
        .args(["-a", s(&one.repo), s(&four.repo)])
        .status()
        .expect("cp");
    assert!(st.success());

    let create = |side: &Side, name: &str| {
        side.hoard(
            &env,
            &[
                "create",
                "-C",
                "lz4",
                "--chunker-params",
                "buzhash,14,18,15,4095",
                &side.arch(name),
                s(&src),
            ],
        );
    };
    create(&one, "a1");
    create(&four, "a1");

    // second backup: some files changed, one added, the rest unchanged (files cache)
    std::fs::write(src.join("many/f0003"), b"changed").expect("write");
    std::fs::write(src.join("many/new"), tree::pseudo_random(900_000, 5)).expect("write");
    let mut m1 = std::fs::read(src.join("multi/m1")).expect("read");
    m1.extend_from_slice(b"appended");
    std::fs::write(src.join("multi/m1"), m1).expect("write");
    create(&one, "a2");
    create(&four, "a2");

    for a in ["a1", "a2"] {
        let (l1, l4) = (listing(&env, &one, a), listing(&env, &four, a));
        assert!(l1.lines().count() > 400, "listing too short:\n{l1}");
        assert_eq!(l1, l4, "listing of {a} differs");
        assert_eq!(
            stats(&env, &one, a),
            stats(&env, &four, a),
            "statistics of {a} differ"
        );
    }

    if !borg_available() {
        return;
    }
    for a in ["a1", "a2"] {
        let (d1, d4) = (dump(&env, &one, a), dump(&env, &four, a));
        let items = d1["_items"].as_array().expect("items");
        assert!(items.len() > 400, "few items: {}", items.len());
        assert!(
            items
                .iter()
                .any(|i| i["chunks"].as_array().is_some_and(|c| c.len() > 3)),
            "no multi-chunk file in the test tree"
        );
        let items4 = d4["_items"].as_array().expect("items");
        assert_eq!(items.len(), items4.len(), "item counts of {a} differ");
        for (x, y) in items.iter().zip(items4) {
            assert_eq!(x, y, "an item of {a} differs");
        }
        assert_eq!(d1["_meta"], d4["_meta"], "metadata of {a} differs");
        assert_eq!(d1, d4, "dump of {a} differs");
    }
    four.borg(&env, &["check", "--verify-data", s(&four.repo)]);
    let out = env.path().join("extract4");
    std::fs::create_dir_all(&out).expect("mkdir");
    let mut c = env.borg_cmd();
    c.env("BORG_BASE_DIR", &four.base)
        .current_dir(&out)
        .args(["extract", &four.arch("a2")]);
    run(c);
    let rel = src.strip_prefix("/").expect("absolute source");
    tree::assert_same_tree(&src, &out.join(rel));
}

#[test]
fn bad_worker_counts_are_refused() {
    let env = Env::new();
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "none", s(&repo)]).ok();
    std::fs::write(env.path().join("f"), b"x").expect("write");
    let arch = format!("{}::a", s(&repo));
    let mut c = env.hoard_cmd();
    c.env("HOARD_WORKERS", "many").args(["create", &arch, "f"]);
    let out = c.output().expect("run");
    assert_ne!(out.status.code(), Some(0));
    common::assert_one_line_error(&String::from_utf8_lossy(&out.stderr), "HOARD_WORKERS");
    let r = env.hoard(["--workers", "0", "create", &arch, "f"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // --workers wins over the environment; the archive is written
    let mut c = env.hoard_cmd();
    c.env("HOARD_WORKERS", "many")
        .args(["--workers", "3", "create", &arch, "f"]);
    run(c);
    let list = env.hoard(["list", "--short", &arch]).ok();
    assert_eq!(list.out(), "f\n");
}
