//! The parallel read side: `extract` and `check` give the same trees, messages and exit codes
//! with one worker (`HOARD_WORKERS=1`, decoding inline) and with several, including damaged
//! chunks and `--progress`.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{tree, Env, Run};
use hoard::repo::{LocalRepository, OpenOptions, Repository};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Runs hoard with `HOARD_WORKERS=workers`, in `cwd`.
fn hoard_in(env: &Env, workers: usize, cwd: &Path, args: &[&str]) -> Run {
    let mut c = env.hoard_cmd();
    c.env("HOARD_WORKERS", workers.to_string())
        .current_dir(cwd)
        .args(args);
    let out = c.output().expect("run hoard");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Size of the file whose chunk the damage tests corrupt (unique among the objects).
const VICTIM_SIZE: usize = 333_333;

/// The full test tree plus a 21 MB multi-chunk file, 300 small files and the victim file.
fn build_tree(root: &Path) -> PathBuf {
    let t = tree::build_full_tree(root, true);
    std::fs::write(
        t.join("multi.bin"),
        tree::pseudo_random(21 * 1024 * 1024 + 17, 7),
    )
    .expect("write");
    std::fs::create_dir_all(t.join("many")).expect("mkdir");
    for i in 0..300u64 {
        let data = tree::pseudo_random(100 + (i as usize * 37) % 5000, 1000 + i);
        std::fs::write(t.join(format!("many/f{i:03}")), data).expect("write");
    }
    std::fs::write(
        t.join("many/victim.bin"),
        tree::pseudo_random(VICTIM_SIZE, 99),
    )
    .expect("write");
    // the writes above changed directory mtimes: give them fixed ones again
    tree::set_mtime_ns(&t.join("many"), 1_600_000_001_000_000_000);
    tree::set_mtime_ns(&t, 1_600_000_000_000_000_001);
    t
}

/// A repokey repository with archive `a` of the test tree; returns (repo, tree).
fn make_repo(env: &Env) -> (PathBuf, PathBuf) {
    let src_root = env.path().join("src");
    std::fs::create_dir_all(&src_root).expect("mkdir");
    let t = build_tree(&src_root);
    let repo = env.path().join("repo");
    hoard_in(env, 2, env.path(), &["init", "-e", "repokey", &s(&repo)]).ok();
    // archive paths relative to the tree's parent: "tree/..."
    hoard_in(
        env,
        2,
        &src_root,
        &["create", "-C", "lz4", &format!("{}::a", s(&repo)), "tree"],
    )
    .ok();
    (repo, t)
}

fn extract_into(env: &Env, workers: usize, repo: &Path, dest: &Path, extra: &[&str]) -> Run {
    std::fs::create_dir_all(dest).expect("mkdir");
    let archive = format!("{}::a", s(repo));
    let mut args = vec!["extract"];
    args.extend_from_slice(extra);
    args.push(&archive);
    hoard_in(env, workers, dest, &args)
}

/// The id of the only object whose stored size fits the victim file's chunk.
fn victim_id(repo: &Path) -> [u8; 32] {
    let mut r = LocalRepository::open(repo, &OpenOptions::default()).expect("open repository");
    let ids = r.list(None, None).expect("list");
    let near: Vec<[u8; 32]> = ids
        .into_iter()
        .filter(|id| {
            let n = r.get(id).expect("get").len();
            (VICTIM_SIZE..VICTIM_SIZE + 128).contains(&n)
        })
        .collect();
    r.close().expect("close");
    assert_eq!(near.len(), 1, "exactly one object of the victim's size");
    near[0]
}

/// Rewrites object `id` with one byte flipped (a valid segment entry with a bad MAC).
fn tamper_object(repo: &Path, id: &[u8; 32]) {
    let mut r = common::craft::open_exclusive(repo);
    let mut obj = r.get(id).expect("get");
    let n = obj.len();
    obj[n / 2] ^= 0x40;
    r.put(id, &obj).expect("put");
    r.commit(false, 0.1).expect("commit");
    r.close().expect("close");
}

/// Flips one byte of object `id` inside its segment file (the entry's CRC no longer matches).
fn flip_in_segment(repo: &Path, id: &[u8; 32]) {
    let mut r = LocalRepository::open(repo, &OpenOptions::default()).expect("open repository");
    let obj = r.get(id).expect("get");
    r.close().expect("close");
    let needle = &obj[obj.len() / 2..obj.len() / 2 + 64];
    let mut segments = Vec::new();
    let mut stack = vec![repo.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readdir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                segments.push(p);
            }
        }
    }
    let mut flipped = 0;
    for seg in segments {
        let mut data = std::fs::read(&seg).expect("read segment");
        if let Some(pos) = data.windows(needle.len()).position(|w| w == needle) {
            data[pos + 10] ^= 0x01;
            std::fs::write(&seg, &data).expect("write segment");
            flipped += 1;
        }
    }
    assert_eq!(flipped, 1, "the victim's bytes are in exactly one segment");
}

/// The lines of `stderr` that mention `needle`.
fn lines_with<'a>(stderr: &'a str, needle: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn extract_gives_the_same_tree_with_one_and_four_workers() {
    let env = Env::new();
    let (repo, t) = make_repo(&env);
    for workers in [1, 4] {
        for sparse in [false, true] {
            let dest = env.path().join(format!("x{workers}-{sparse}"));
            let extra: &[&str] = if sparse { &["--sparse"] } else { &[] };
            let r = extract_into(&env, workers, &repo, &dest, extra).ok();
            assert_eq!(r.stderr, "", "workers {workers}");
            tree::assert_same_tree(&t, &dest.join("tree"));
            let md = std::fs::metadata(dest.join("tree/sparse.img")).expect("stat");
            if sparse {
                assert!(
                    md.blocks() * 512 < 1024 * 1024,
                    "sparse.img written sparse with {workers} workers: {} blocks",
                    md.blocks()
                );
            }
        }
    }
    // --stdout concatenates the selected files in archive order
    let out_dir = env.path().join("stdout");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let mut outs = Vec::new();
    for workers in [1, 4] {
        let mut c = env.hoard_cmd();
        c.env("HOARD_WORKERS", workers.to_string())
            .current_dir(&out_dir)
            .args([
                "extract",
                "--stdout",
                &format!("{}::a", s(&repo)),
                "tree/big.bin",
                "tree/multi.bin",
                "tree/hello.txt",
            ]);
        let out = c.output().expect("run hoard");
        assert_eq!(out.status.code(), Some(0), "{:?}", out);
        outs.push(out.stdout);
    }
    // archive order is the walk's (by inode), as `list` shows it
    let listed = hoard_in(
        &env,
        1,
        env.path(),
        &[
            "list",
            "--short",
            &format!("{}::a", s(&repo)),
            "tree/big.bin",
            "tree/multi.bin",
            "tree/hello.txt",
        ],
    )
    .ok();
    let mut want = Vec::new();
    for path in listed.out().lines() {
        want.extend(std::fs::read(t.parent().expect("parent").join(path)).expect("read"));
    }
    assert_eq!(outs[0].len(), want.len());
    assert!(outs[0] == want, "--stdout data in archive order");
    assert!(outs[1] == want, "--stdout data with 4 workers");
}

/// Both kinds of damage: a bad MAC behind a valid entry, and a byte flipped in the segment.
#[test]
fn damaged_chunk_is_reported_for_its_file_only_with_any_worker_count() {
    for segment_flip in [false, true] {
        let env = Env::new();
        let (repo, t) = make_repo(&env);
        let id = victim_id(&repo);
        if segment_flip {
            flip_in_segment(&repo, &id);
        } else {
            tamper_object(&repo, &id);
        }
        let mut stderrs = Vec::new();
        for workers in [1, 4] {
            let dest = env.path().join(format!("x{workers}"));
            let r = extract_into(&env, workers, &repo, &dest, &[]).expect_code(1);
            let victim_lines = lines_with(&r.stderr, "victim.bin");
            assert_eq!(victim_lines.len(), 1, "{}", r.stderr);
            assert!(
                victim_lines[0].starts_with("tree/many/victim.bin: "),
                "{}",
                r.stderr
            );
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
            // every other file came back intact
            let d = tree::diff(&t, &dest.join("tree"));
            assert!(
                d.iter().all(|l| l.contains("many/victim.bin")) && d.len() <= 1,
                "{d:?}"
            );
            stderrs.push(r.stderr);
            let dry = extract_into(&env, workers, &repo, &dest, &["--dry-run"]).expect_code(1);
            assert_eq!(dry.stderr, stderrs[0], "dry-run with {workers} workers");
        }
        assert_eq!(stderrs[0], stderrs[1]);

        let check = |workers: usize| {
            hoard_in(
                &env,
                workers,
                env.path(),
                &["check", "--archives-only", "--verify-data", &s(&repo)],
            )
            .expect_code(1)
        };
        let (c1, c4) = (check(1), check(4));
        assert_eq!(c1.stderr, c4.stderr);
        let victim = hex::encode(id);
        assert_eq!(
            lines_with(&c1.stderr, &format!("chunk {victim}")).len(),
            1,
            "{}",
            c1.stderr
        );
        assert!(
            c1.stderr.contains("with 1 integrity errors."),
            "{}",
            c1.stderr
        );
    }
}

#[test]
fn progress_prints_percentages() {
    let env = Env::new();
    let (repo, _) = make_repo(&env);
    for workers in [1, 4] {
        let r = hoard_in(
            &env,
            workers,
            env.path(),
            &["check", "--progress", "--verify-data", &s(&repo)],
        )
        .ok();
        let pct: Vec<&str> = r
            .stderr
            .split(['\r', '\n'])
            .filter(|l| l.starts_with("Verifying data") && l.ends_with('%'))
            .collect();
        assert!(pct.len() > 10, "{}", r.stderr);
        assert!(
            pct.last()
                .is_some_and(|l| l.contains("100.00%") || l.contains(" 99.")),
            "{pct:?}"
        );
        assert!(r.stderr.contains("Checking archives 0.0%"), "{}", r.stderr);
        let dest = env.path().join(format!("p{workers}"));
        let r = extract_into(&env, workers, &repo, &dest, &["--progress"]).ok();
        let pct: Vec<&str> = r
            .stderr
            .split(['\r', '\n'])
            .filter(|l| l.trim_start().contains('%'))
            .collect();
        assert!(pct.len() > 10, "{}", r.stderr);
    }
}
