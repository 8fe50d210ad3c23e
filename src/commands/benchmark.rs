//! `benchmark crud REPO PATH` (borg 1.4.5): times create, extract, update and delete of
//! archives named `borg-benchmark-crud*` on generated files, and `benchmark cpu`, hoard's
//! measurement of the building blocks (borg 1.4.5 has no `benchmark cpu`; its lines follow
//! borg 2's layout).
//!
//! The commands themselves run through a `run` callback that the CLI supplies (they are CLI
//! commands with their own options), so this module only prepares data, measures and formats.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::RngCore;

use super::common::{CommandError, Result};

/// One data set of `benchmark crud`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrudSet {
    /// borg's label (`Z-BIG`, `R-SMALL`, …).
    pub label: &'static str,
    /// Number of files.
    pub count: usize,
    /// Size of each file in bytes.
    pub size: usize,
    /// Random contents (else all zero).
    pub random: bool,
}

/// borg's data sets; with `_BORG_BENCHMARK_CRUD_TEST` set, the two tiny ones of its test.
pub fn crud_sets(test_mode: bool) -> Vec<CrudSet> {
    let s = |label, count, size, random| CrudSet {
        label,
        count,
        size,
        random,
    };
    if test_mode {
        return vec![s("Z-TEST", 1, 1, false), s("R-TEST", 1, 1, true)];
    }
    vec![
        s("Z-BIG", 10, 100_000_000, false),
        s("R-BIG", 10, 100_000_000, true),
        s("Z-MEDIUM", 1000, 1_000_000, false),
        s("R-MEDIUM", 1000, 1_000_000, true),
        s("Z-SMALL", 10000, 10_000, false),
        s("R-SMALL", 10000, 10_000, true),
    ]
}

/// Seconds each step of one measurement took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrudTimes {
    /// `create --files-cache=disabled` (everything chunked).
    pub create: f64,
    /// `create` again with a files cache and nothing changed.
    pub update: f64,
    /// `extract --dry-run`.
    pub extract: f64,
    /// `delete` of the last archive holding the data.
    pub delete: f64,
}

/// Runs a hoard command line (without the program name) and returns its exit code.
pub type Runner<'a> = &'a mut dyn FnMut(&[String]) -> Result<i32>;

fn step(run: Runner<'_>, argv: &[&str]) -> Result<f64> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let started = Instant::now();
    let rc = run(&argv)?;
    let dt = started.elapsed().as_secs_f64();
    if rc != 0 {
        return Err(CommandError::new(format!(
            "benchmark crud: `{}` ended with exit code {rc}",
            argv.join(" ")
        )));
    }
    Ok(dt)
}

/// borg's `measurement_run` on the files under `path`.
pub fn measure(repo: &str, path: &str, run: Runner<'_>) -> Result<CrudTimes> {
    let archive = format!("{repo}::borg-benchmark-crud");
    let a1 = format!("{archive}1");
    let a2 = format!("{archive}2");
    let a3 = format!("{archive}3");
    let none = "--compression=none";
    let create = step(run, &["create", none, "--files-cache=disabled", &a1, path])?;
    // build the files cache
    step(run, &["create", none, &a2, path])?;
    step(run, &["delete", &a2])?;
    // a no-change update (archive 1 is still there)
    let update = step(run, &["create", none, &a3, path])?;
    step(run, &["delete", &a3])?;
    let extract = step(run, &["extract", "--dry-run", &a1])?;
    let delete = step(run, &["delete", &a1])?;
    Ok(CrudTimes {
        create,
        update,
        extract,
        delete,
    })
}

/// Writes the files of `set` into `<dir>/borg-test-data` (each written and fsynced in 1 MiB
/// blocks, so the big sets need no big buffers) and returns that directory.
pub fn make_files(dir: &Path, set: &CrudSet) -> Result<PathBuf> {
    let root = dir.join("borg-test-data");
    let err = |p: &Path, e: std::io::Error| {
        CommandError::new(format!(
            "{}: {}",
            p.display(),
            crate::platform::strerror(&e)
        ))
    };
    std::fs::create_dir(&root).map_err(|e| err(&root, e))?;
    let mut block = vec![0u8; set.size.min(1 << 20)];
    let mut rng = rand::thread_rng();
    for i in 0..set.count {
        let p = root.join(format!("file_{i}"));
        let mut f = std::fs::File::create(&p).map_err(|e| err(&p, e))?;
        let mut left = set.size;
        while left > 0 {
            let n = left.min(block.len());
            if set.random {
                rng.fill_bytes(&mut block[..n]);
            }
            f.write_all(&block[..n]).map_err(|e| err(&p, e))?;
            left -= n;
        }
        f.sync_all().map_err(|e| err(&p, e))?;
    }
    Ok(root)
}

/// The four result lines of one data set, in borg's format
/// (`C-Z-TEST       0.00 MB/s (1 * 1 B all-zero files: 0.05s)`).
pub fn format_lines(set: &CrudSet, t: &CrudTimes) -> Vec<String> {
    let total_mb = (set.count * set.size) as f64 / 1e6;
    let size = crate::units::format_file_size(set.size as i128, false);
    let content = if set.random { "random" } else { "all-zero" };
    let line = |op: &str, dt: f64| {
        let rate = total_mb / dt.max(1e-9);
        format!(
            "{op}-{:<10} {rate:9.2} MB/s ({} * {size} {content} files: {dt:.2}s)",
            set.label, set.count
        )
    };
    vec![
        line("C", t.create),
        line("R", t.extract),
        line("U", t.update),
        line("D", t.delete),
    ]
}

/// `benchmark crud REPO PATH`: every data set in turn (files made in `PATH`, measured,
/// removed again), four lines each through `say`.
pub fn crud(
    repo: &str,
    path: &Path,
    test_mode: bool,
    run: Runner<'_>,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    for set in crud_sets(test_mode) {
        let made = make_files(path, &set);
        let result = made.and_then(|root| {
            let r = measure(repo, &root.to_string_lossy(), run);
            let _ = std::fs::remove_dir_all(&root);
            r
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(path.join("borg-test-data"));
        }
        for line in format_lines(&set, &result?) {
            say(&line);
        }
    }
    Ok(())
}

/// `benchmark cpu`: throughput of the chunker, id hashes, encryption and compressors on 10 MB
/// of random data, one line each (`<name> <what>: <seconds>s`, borg 2's layout).
pub fn cpu(say: &mut dyn FnMut(&str)) -> Result<()> {
    use crate::compress::{self, Compression};
    use crate::crypto::{Key, KeyType};
    const SIZE: usize = 10 * 1000 * 1000;
    let mut data = vec![0u8; SIZE];
    rand::thread_rng().fill_bytes(&mut data);
    let timed = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    say("Chunkers =======================================================");
    let params = crate::chunker::DEFAULT_CHUNKER_PARAMS;
    let dt = timed(&mut || {
        let _ = crate::chunker::cut_points(&params, 0, &data);
    });
    say(&format!("{:<24} 10MB    {dt:.3}s", params.to_string()));
    say("Non-cryptographic checksums / hashes ===========================");
    let dt = timed(&mut || {
        let _ = crc32fast::hash(&data);
    });
    say(&format!("crc32 (crc32fast)    10MB    {dt:.3}s"));
    let dt = timed(&mut || {
        let _ = xxhash_rust::xxh64::xxh64(&data, 0);
    });
    say(&format!("xxh64                10MB    {dt:.3}s"));
    say("Cryptographic hashes / MACs ====================================");
    for kt in [KeyType::Repokey, KeyType::RepokeyBlake2] {
        let key = Key::generate(kt, [0u8; 32]);
        let dt = timed(&mut || {
            let _ = key.id_hash(&data);
        });
        let name = if kt.uses_blake2() {
            "blake2b-256"
        } else {
            "hmac-sha256"
        };
        say(&format!("{name:<20} 10MB    {dt:.3}s"));
    }
    say("Encryption =====================================================");
    for kt in [KeyType::Repokey, KeyType::RepokeyBlake2] {
        let key = Key::generate(kt, [0u8; 32]);
        let dt = timed(&mut || {
            let _ = key.encrypt(&data, 0);
        });
        let name = if kt.uses_blake2() {
            "aes-256-ctr-blake2b"
        } else {
            "aes-256-ctr-hmac-sha256"
        };
        say(&format!("{name:<24} 10MB    {dt:.3}s"));
    }
    say("Compression ====================================================");
    for spec in ["lz4", "zstd,1", "zstd,3", "zlib,6", "lzma,6"] {
        let c: Compression = spec
            .parse()
            .map_err(|e| CommandError::new(format!("benchmark cpu: {spec}: {e}")))?;
        let dt = timed(&mut || {
            let _ = compress::compress(&c, &data);
        });
        say(&format!("{spec:<12}         10MB    {dt:.3}s"));
    }
    Ok(())
}
