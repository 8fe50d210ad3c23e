//! The multi-core `create` pipeline writes the same archive as a single worker: two copies of
//! one freshly initialised repository (same key material), one backed up with
//! `HOARD_WORKERS=1`, the other with 4 workers, must hold identical item streams (every field,
//! chunk ids and sizes included), identical archive statistics and the same chunk index totals —
//! for a first backup and for a re-backup with changed, unchanged and new files. The N-worker
//! repository is then verified and extracted by the real borg.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{archive, arg, borg_available, segments, tree, Env, Run};

fn run(mut c: Command) -> Run {
    Run::from(c.output().expect("run")).ok()
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
        format!("{}::{name}", arg(&self.repo))
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
        &["debug", "dump-archive", &side.arch(archive), arg(&out)],
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
    one.hoard(&env, &["init", "-e", "repokey", arg(&one.repo)]);
    // Same key material and repository id: a copy of the freshly initialised repository.
    let st = Command::new("cp")
        .args(["-a", arg(&one.repo), arg(&four.repo)])
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
                arg(&src),
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
    four.borg(&env, &["check", "--verify-data", arg(&four.repo)]);
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

/// The (tag, key, size) of every entry of a repository's segments, in log order: the order in
/// which objects were written (the contents differ between runs only by their counters).
fn segment_entries(repo: &Path) -> Vec<(u8, Vec<u8>, u32)> {
    let segs = segments(repo);
    let mut out = Vec::new();
    for (_, p) in segs {
        let data = std::fs::read(&p).expect("segment");
        assert_eq!(&data[..8], b"BORG_SEG", "{}", p.display());
        let mut i = 8;
        while i + 9 <= data.len() {
            let size = u32::from_le_bytes(data[i + 4..i + 8].try_into().expect("4 bytes"));
            let tag = data[i + 8];
            let key = if tag == 2 {
                Vec::new() // COMMIT
            } else {
                data[i + 9..i + 41].to_vec()
            };
            out.push((tag, key, size));
            i += size as usize;
        }
    }
    out
}

/// The ids of the archives in a repository.
fn archive_ids(env: &Env, side: &Side) -> Vec<Vec<u8>> {
    let r = side.hoard(env, &["list", "--json", arg(&side.repo)]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("list JSON");
    v["archives"]
        .as_array()
        .expect("archives")
        .iter()
        .map(|a| hex::decode(a["id"].as_str().expect("id")).expect("hex id"))
        .collect()
}

/// A large file whose chunks repeat (inside the file and from the previous backup) goes through
/// the chunk workers of one file (and the check that skips encoding chunks already stored): the
/// archive, the chunk index and the order of the objects in the segments are those of a
/// single-worker run; borg 1.2 and 1.4 verify the repository and borg extracts the file.
#[test]
fn a_large_file_is_stored_in_order_by_many_workers() {
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    // 12 MiB: pseudo-random blocks, some of which come back later in the file.
    let mut data = Vec::new();
    for i in 0..24u64 {
        let seed = if i % 5 == 4 { 500 + i - 3 } else { 500 + i };
        data.extend_from_slice(&tree::pseudo_random(512 * 1024, seed));
    }
    std::fs::write(src.join("big"), &data).expect("write");
    std::fs::write(src.join("small"), b"small file").expect("write");
    let sides: Vec<Side> = ["1", "2", "3"]
        .iter()
        .map(|w| Side {
            base: env.path().join(format!("base{w}")),
            repo: env.path().join(format!("repo{w}")),
            workers: w,
        })
        .collect();
    std::fs::create_dir_all(&sides[0].base).expect("mkdir");
    sides[0].hoard(&env, &["init", "-e", "repokey", arg(&sides[0].repo)]);
    for side in &sides[1..] {
        std::fs::create_dir_all(&side.base).expect("mkdir");
        let st = Command::new("cp")
            .args(["-a", arg(&sides[0].repo), arg(&side.repo)])
            .status()
            .expect("cp");
        assert!(st.success());
    }
    let create = |side: &Side, name: &str| {
        side.hoard(
            &env,
            &[
                "create",
                "-C",
                "lz4",
                "--chunker-params",
                "buzhash,12,16,14,4095",
                &side.arch(name),
                arg(&src),
            ],
        );
    };
    for side in &sides {
        create(side, "a1");
    }
    // A changed copy: most chunks are stored already.
    data.splice(3_000_000..3_000_010, *b"0123456789");
    std::fs::write(src.join("big"), &data).expect("write");
    std::fs::write(src.join("big2"), &data[..7_000_000]).expect("write");
    for side in &sides {
        create(side, "a2");
    }
    let reference = segment_entries(&sides[0].repo);
    assert!(reference.len() > 300, "few objects: {}", reference.len());
    for side in &sides[1..] {
        for a in ["a1", "a2"] {
            assert_eq!(
                listing(&env, &sides[0], a),
                listing(&env, side, a),
                "listing of {a} with {} workers",
                side.workers
            );
            assert_eq!(stats(&env, &sides[0], a), stats(&env, side, a));
        }
        let entries = segment_entries(&side.repo);
        assert_eq!(reference.len(), entries.len(), "{} workers", side.workers);
        let (ids0, ids) = (archive_ids(&env, &sides[0]), archive_ids(&env, side));
        for (n, (x, y)) in reference.iter().zip(&entries).enumerate() {
            // the archive metadata objects differ (random TAM salt), and so does the size of
            // the (compressed) manifest that names them; nothing else may
            if x.1 != y.1 && ids0.contains(&x.1) && ids.contains(&y.1) {
                continue;
            }
            if x.0 == 0 && x.1 == [0; 32] && y.0 == 0 && y.1 == [0; 32] {
                continue;
            }
            assert_eq!(x, y, "segment entry {n} with {} workers", side.workers);
        }
    }

    if !borg_available() {
        return;
    }
    let many = &sides[2];
    let mut verifiers = vec![env.borg_cmd()];
    if let Some(b14) = common::borg14() {
        verifiers.push(env.command_for(arg(&b14)));
    }
    for mut c in verifiers {
        c.env("BORG_BASE_DIR", &many.base)
            .args(["check", "--verify-data", arg(&many.repo)]);
        run(c);
    }
    let out = env.path().join("extract");
    std::fs::create_dir_all(&out).expect("mkdir");
    let mut c = env.borg_cmd();
    c.env("BORG_BASE_DIR", &many.base)
        .current_dir(&out)
        .args(["extract", &many.arch("a2")]);
    run(c);
    let rel = src.strip_prefix("/").expect("absolute source");
    tree::assert_same_tree(&src, &out.join(rel));
}

#[test]
fn bad_worker_counts_are_refused() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    std::fs::write(env.path().join("f"), b"x").expect("write");
    let arch = archive(&repo, "a");
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
