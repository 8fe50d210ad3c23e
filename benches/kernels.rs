//! Throughput benchmarks of hoard's hot kernels: chunking, compression, id hash, encryption.
//!
//! Run with `cargo bench --bench kernels`. Sample counts are kept small so the whole run
//! takes about two minutes on a 2-core machine.
//!
//! Figures are CPU time of the benchmark thread (`ThreadCpu` below), so they hold on a busy
//! machine. 2-core AMD EPYC (Zen 4, AES-NI, SHA-NI, VAES) VM, load average 5-9 from other
//! builds, 2026-11-27; one core each, MiB/s (before = a5a0f0b with this same harness):
//!
//! | group | input | before | after |
//! |---|---|---|---|
//! | buzhash `cut_points` 19,23,21,4095 | 64 MiB random | 1677 | 1790 |
//! | buzhash `cut_points` 10,14,12,4095 | 64 MiB random | 1290 | 1302 |
//! | buzhash `Chunker` stream 19,23,21,4095 (owned chunks) | 64 MiB | 1289 | 799 (*) |
//! | buzhash `Chunker::shared` 19,23,21,4095 (views, no copy) | 64 MiB | - | 839 (*) |
//! | buzhash `Chunker` stream / shared 10,14,12,4095 | 64 MiB | 1131 | 1150 / 1193 |
//! | lz4 compress / decompress | 8 MiB text-like (31.5 %) | 611 / 2968 | 720 / 3981 |
//! | lz4 compress / decompress, 2 MiB pieces | 32 MiB real files (66.6 %) | 628 / 4017 | 741 / 5477 |
//! | zstd,3 compress / decompress | 8 MiB (21.9 %) | 322 / 1766 | 327 / 1757 |
//! | zlib,6 compress / decompress | 8 MiB (18.3 %) | 26.4 / 799 | 26.0 / 762 |
//! | lzma,6 compress / decompress | 4 MiB (17.1 %) | ~3.6 / ~122 | ~3.6 / ~122 |
//! | id hash: SHA-256 / HMAC-SHA256 / BLAKE2b (4 MiB) | random | 1702 / 1706 / 1072 | 1712 / 1717 / 1075 |
//! | repokey encrypt / `seal_in_place` | 4 MiB | 1231 / - | 1234 / 1294 |
//! | repokey decrypt / `open_in_place` | 4 MiB | 1250 / - | 1195 / 1248 |
//! | repokey-blake2 encrypt / `seal_in_place` | 4 MiB | 880 / - | 889 / 921 |
//! | whole create kernel (chunk, id, lz4, repokey), owned / in place | 64 MiB real files | 260 / - | 253 / 268 |
//!
//! SHA-256 runs at the SHA-NI limit (`openssl speed sha256`: 1.78 GB/s = 1700 MiB/s), AES-CTR
//! uses AES-NI (8 blocks in parallel); lz4 is liblz4 1.10 (was lz4_flex with safe-*).
//! (*) The stream benchmarks build a new `Chunker` per 64 MiB iteration, and its 16 MiB read
//! blocks are fresh memory each time (page faults), where the old stream grew one 12 MiB
//! buffer; in `hoard create` the shared path has half the page faults (see the release
//! figures below).
//!
//! Release binary, `hoard create --workers 2 -C lz4` of /var/tmp/hoard-bench/tree (1126 MiB,
//! 40,015 files) into a fresh repokey repository: CPU time user+sys, median of 3 runs
//! alternated between the binaries, load average ~1.8 (a first round at load 5-8 gave
//! 6.58 / 6.14 / 5.35 s):
//!
//! | binary | user+sys | wall | minor faults | max RSS |
//! |---|---|---|---|---|
//! | before (a5a0f0b) | 5.96 s | 4.35 s | 410k | 81 MB |
//! | these kernels, callers unchanged | 5.57 s | 4.11 s | 373k | 98 MB |
//! | these kernels + callers on `shared()`/`compress_into`/`seal_in_place` | 5.02 s | 3.74 s | 212k | 80 MB |

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hoard::chunker::{cut_points, Chunker, ChunkerParams, DEFAULT_CHUNKER_PARAMS};
use hoard::compress::{compress, compress_into, decompress, Compression};
use hoard::crypto::{Key, KeyType};

/// Criterion measurement of the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`)
/// instead of wall time, so figures stay comparable on a machine shared with other work.
struct ThreadCpu;

static WALL: WallTime = WallTime;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu()
    }
    fn end(&self, i: Duration) -> Duration {
        thread_cpu().saturating_sub(i)
    }
    fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
        *v1 + *v2
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

type Crit = Criterion<ThreadCpu>;

/// Up to `limit` bytes of real files, concatenated: `HOARD_BENCH_TREE` or the benchmark tree
/// of benches/compare.sh, every third file; `None` when there is no such tree.
fn real_files(limit: usize) -> Option<Vec<u8>> {
    let root = std::env::var_os("HOARD_BENCH_TREE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/hoard-bench/tree".into());
    let mut out = Vec::with_capacity(limit);
    let mut stack = vec![root];
    let mut i = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                i += 1;
                if i.is_multiple_of(3) {
                    if let Ok(b) = std::fs::read(e.path()) {
                        out.extend_from_slice(&b[..b.len().min(limit - out.len())]);
                        if out.len() == limit {
                            return Some(out);
                        }
                    }
                }
            }
        }
    }
    (out.len() >= 1 << 20).then_some(out)
}

/// Pseudo-random bytes from a xorshift generator (incompressible, deterministic).
fn random_bytes(len: usize, mut state: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        v.extend_from_slice(&state.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Text-like data with random runs: roughly what real files look like to a compressor.
fn semi_compressible(len: usize) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"borg ",
        b"hoard ",
        b"chunk ",
        b"archive ",
        b"repository ",
        b"\n",
        b"deduplication ",
        b"{\"path\": \"/home/user/file\", \"mode\": 33188}",
    ];
    let rnd = random_bytes(len, 42);
    let mut v = Vec::with_capacity(len + 64);
    let mut i = 0;
    while v.len() < len {
        let r = rnd[i % len];
        if r < 60 {
            let s = i % len;
            v.extend_from_slice(&rnd[s..(s + 16).min(len)]);
        } else {
            v.extend_from_slice(words[r as usize % words.len()]);
        }
        i += 1;
    }
    v.truncate(len);
    v
}

fn bench_chunker(c: &mut Crit) {
    let data = random_bytes(64 << 20, 0x1234_5678);
    let mut g = c.benchmark_group("chunker_buzhash");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(data.len() as u64));
    let small: ChunkerParams = "buzhash,10,14,12,4095".parse().expect("valid params");
    for (name, params) in [
        ("19,23,21,4095", DEFAULT_CHUNKER_PARAMS),
        ("10,14,12,4095", small),
    ] {
        g.bench_with_input(BenchmarkId::new("cut_points", name), &params, |b, p| {
            b.iter(|| {
                cut_points(p, 0x5eed, black_box(&data))
                    .expect("valid params")
                    .len()
            })
        });
        g.bench_with_input(BenchmarkId::new("stream", name), &params, |b, p| {
            b.iter(|| {
                Chunker::new(black_box(&data[..]), p, 0x5eed)
                    .expect("valid params")
                    .map(|c| c.expect("in-memory read").len())
                    .sum::<usize>()
            })
        });
        g.bench_with_input(BenchmarkId::new("stream_shared", name), &params, |b, p| {
            b.iter(|| {
                Chunker::new(black_box(&data[..]), p, 0x5eed)
                    .expect("valid params")
                    .shared()
                    .map(|c| c.expect("in-memory read").len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

fn bench_compress(c: &mut Crit) {
    let data = semi_compressible(8 << 20);
    let small = &data[..4 << 20]; // lzma is slow: a smaller input keeps the run short
    for (spec, input) in [
        ("lz4", &data[..]),
        ("zstd,3", &data[..]),
        ("zlib,6", &data[..]),
        ("lzma,6", small),
    ] {
        let comp: Compression = spec.parse().expect("valid spec");
        let framed = compress(&comp, input);
        eprintln!(
            "{spec}: {} -> {} bytes ({:.1}%)",
            input.len(),
            framed.len(),
            100.0 * framed.len() as f64 / input.len() as f64
        );
        let mut g = c.benchmark_group(format!("compress_{spec}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(if spec.starts_with("lzma") {
                15
            } else {
                4
            }))
            .throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function("compress", |b| {
            b.iter(|| compress(&comp, black_box(input)).len())
        });
        g.bench_function("decompress", |b| {
            b.iter(|| {
                decompress(black_box(&framed), Some(input.len()))
                    .expect("valid frame")
                    .len()
            })
        });
        g.finish();
    }
}

/// The id hash of each family: SHA-256 (`none`), HMAC-SHA256 (repokey/keyfile/authenticated)
/// and BLAKE2b-256 over key‖data (the `-blake2` modes), on 4 MiB chunks.
/// lz4 on real files (see [`real_files`]) in 2 MiB pieces, about a chunk each.
fn bench_lz4_real(c: &mut Crit) {
    let Some(data) = real_files(32 << 20) else {
        eprintln!("lz4_real: no benchmark tree, skipped");
        return;
    };
    let comp = Compression::Lz4;
    let pieces: Vec<&[u8]> = data.chunks(2 << 20).collect();
    let framed: Vec<Vec<u8>> = pieces.iter().map(|p| compress(&comp, p)).collect();
    let clen: usize = framed.iter().map(|f| f.len()).sum();
    eprintln!(
        "lz4_real: {} -> {clen} bytes ({:.1}%)",
        data.len(),
        100.0 * clen as f64 / data.len() as f64
    );
    let mut g = c.benchmark_group("lz4_real_2MiB");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("compress", |b| {
        b.iter(|| {
            pieces
                .iter()
                .map(|p| compress(&comp, p).len())
                .sum::<usize>()
        })
    });
    g.bench_function("decompress", |b| {
        b.iter(|| {
            framed
                .iter()
                .zip(&pieces)
                .map(|(f, p)| decompress(f, Some(p.len())).expect("valid").len())
                .sum::<usize>()
        })
    });
    g.finish();
}

/// What `create` does per byte on one core: chunk, id hash, lz4, encrypt (repokey), on real
/// files (or text-like data). `owned`: the Vec-per-step API (`Chunker` iterator,
/// `compress`, `encrypt`); `in_place`: shared chunks, `compress_into` after room for the
/// envelope, `seal_in_place` (one output allocation per chunk).
fn bench_create_kernel(c: &mut Crit) {
    let data = real_files(64 << 20).unwrap_or_else(|| semi_compressible(64 << 20));
    let key = key_for("repokey");
    let comp = Compression::Lz4;
    let seed = key.chunk_seed();
    let mut g = c.benchmark_group("create_kernel_repokey_lz4");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("owned", |b| {
        b.iter(|| {
            let mut stored = 0;
            for ch in Chunker::new(&data[..], &DEFAULT_CHUNKER_PARAMS, seed).expect("params") {
                let ch = ch.expect("in-memory read");
                let id = key.id_hash(&ch.data);
                let framed = compress(&comp, &ch.data);
                drop(ch);
                stored += key.encrypt(&framed, 1).len() + id[0] as usize;
            }
            stored
        })
    });
    g.bench_function("in_place", |b| {
        b.iter(|| {
            let mut stored = 0;
            let chunks = Chunker::new(&data[..], &DEFAULT_CHUNKER_PARAMS, seed)
                .expect("params")
                .with_size_hint(data.len() as u64)
                .shared();
            for ch in chunks {
                let ch = ch.expect("in-memory read");
                let id = key.id_hash(&ch.data);
                let mut object = vec![0; key.envelope_len()];
                compress_into(&comp, &ch.data, &mut object);
                drop(ch);
                key.seal_in_place(&mut object, 1);
                stored += object.len() + id[0] as usize;
            }
            stored
        })
    });
    g.finish();
}

fn bench_id_hash(c: &mut Crit) {
    let data = random_bytes(4 << 20, 11);
    for mode in ["none", "repokey", "repokey-blake2"] {
        let key = key_for(mode);
        let mut g = c.benchmark_group(format!("id_hash_{mode}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function("id_hash", |b| b.iter(|| key.id_hash(black_box(&data))));
        g.finish();
    }
}

/// Object encryption (AES-256-CTR + HMAC-SHA256 or BLAKE2b MAC) and decryption with MAC
/// check, on 4 MiB of already-framed data.
fn bench_encrypt(c: &mut Crit) {
    let data = random_bytes(4 << 20, 12);
    for mode in ["repokey", "repokey-blake2"] {
        let key = key_for(mode);
        let object = key.encrypt(&data, 1);
        let mut g = c.benchmark_group(format!("encrypt_{mode}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function("encrypt", |b| {
            b.iter(|| key.encrypt(black_box(&data), 1).len())
        });
        g.bench_function("seal_in_place", |b| {
            let mut buf = vec![0; key.envelope_len()];
            buf.extend_from_slice(&data);
            b.iter(|| {
                key.seal_in_place(black_box(&mut buf), 1);
                buf.len()
            })
        });
        g.bench_function("decrypt", |b| {
            b.iter(|| key.decrypt(black_box(&object)).expect("valid object").len())
        });
        g.bench_function("open_in_place", |b| {
            let mut buf = object.clone();
            b.iter(|| {
                // restore the ciphertext first (a memcpy, measured too, like decrypt's copy)
                buf.copy_from_slice(&object);
                key.open_in_place(black_box(&mut buf[..]))
                    .expect("valid object")
                    .len()
            })
        });
        g.finish();
    }
}

fn key_for(mode: &str) -> Key {
    let kt = KeyType::from_mode_name(mode).expect("mode");
    if kt == KeyType::Plaintext {
        Key::plaintext()
    } else {
        Key::generate(kt, [7; 32])
    }
}

criterion_group! {
    name = kernels;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_chunker, bench_compress, bench_lz4_real, bench_id_hash, bench_encrypt,
        bench_create_kernel
}
criterion_main!(kernels);
