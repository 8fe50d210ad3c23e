//! Compression tests: spec parsing, headers, fallback, round trips, garbage, and borg itself.

use super::*;
use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

/// Pseudo-random bytes from a tiny xorshift generator.
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

/// Text-like data with some random runs: compresses, but not trivially.
fn semi_compressible(len: usize) -> Vec<u8> {
    let words = [
        &b"borg "[..],
        b"hoard ",
        b"chunk ",
        b"archive ",
        b"repository ",
        b"\n",
        b"deduplication ",
    ];
    let rnd = random_bytes(len, 42);
    let mut v = Vec::with_capacity(len + 32);
    let mut i = 0;
    while v.len() < len {
        if rnd[i % len] < 40 {
            v.extend_from_slice(&rnd[i % len..(i % len + 8).min(len)]);
        } else {
            v.extend_from_slice(words[rnd[i % len] as usize % words.len()]);
        }
        i += 1;
    }
    v.truncate(len);
    v
}

#[test]
fn parses_borg_specs() {
    let ok = |s: &str| s.parse::<Compression>().unwrap();
    assert_eq!(ok("none"), Compression::None);
    assert_eq!(ok("lz4"), Compression::Lz4);
    assert_eq!(ok("lz4,1"), Compression::Lz4); // borg ignores extra values here
    assert_eq!(ok("none,"), Compression::None);
    assert_eq!(ok("zstd"), Compression::Zstd(3));
    assert_eq!(ok("zstd,22"), Compression::Zstd(22));
    assert_eq!(ok("zstd, +1"), Compression::Zstd(1));
    assert_eq!(ok("zlib"), Compression::Zlib(6));
    assert_eq!(ok("zlib,0"), Compression::Zlib(0));
    assert_eq!(ok("lzma"), Compression::Lzma(6));
    assert_eq!(ok("lzma,9"), Compression::Lzma(9));
    assert_eq!(
        ok("auto,zstd"),
        Compression::Auto(Box::new(Compression::Zstd(3)))
    );
    assert_eq!(
        ok("auto,lzma,1"),
        Compression::Auto(Box::new(Compression::Lzma(1)))
    );
    assert_eq!(
        ok("obfuscate,110,none"),
        Compression::Obfuscate {
            level: 110,
            inner: Box::new(Compression::None)
        }
    );
    assert_eq!(
        ok("obfuscate,1,auto,zstd,3"),
        Compression::Obfuscate {
            level: 1,
            inner: Box::new(Compression::Auto(Box::new(Compression::Zstd(3))))
        }
    );
    assert_eq!(
        ok("obfuscate,6,obfuscate,123,lz4"),
        Compression::Obfuscate {
            level: 6,
            inner: Box::new(Compression::Obfuscate {
                level: 123,
                inner: Box::new(Compression::Lz4)
            })
        }
    );
}

#[test]
fn rejects_what_borg_rejects() {
    for bad in [
        "",
        "ZSTD",
        "gzip",
        "zstd,0",
        "zstd,23",
        "zstd,3,1",
        "zstd,x",
        "zlib,10",
        "zlib,-1",
        "lzma,10",
        "auto",
        "auto,zstd,3,1",
        "auto,obfuscate,1,lz4",
        "auto,bogus",
        "obfuscate,1",
        "obfuscate,7,lz4",
        "obfuscate,109,lz4",
        "obfuscate,124,lz4",
        "obfuscate,1,zstd,3,4",
        "zstd,3_0",
    ] {
        let e = bad.parse::<Compression>().unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("invalid CompressionSpec value: '{bad}'")),
            "{e}"
        );
    }
}

#[test]
fn display_is_canonical() {
    for (input, canon) in [
        ("none", "none"),
        ("lz4", "lz4"),
        ("zstd", "zstd,3"),
        ("zlib", "zlib,6"),
        ("lzma,2", "lzma,2"),
        ("auto,zstd", "auto,zstd,3"),
        ("obfuscate,3,auto,lzma", "obfuscate,3,auto,lzma,6"),
    ] {
        let c: Compression = input.parse().unwrap();
        assert_eq!(c.to_string(), canon);
        assert_eq!(canon.parse::<Compression>().unwrap(), c);
    }
}

fn all_specs() -> Vec<Compression> {
    [
        "none",
        "lz4",
        "zstd,1",
        "zstd,3",
        "zstd,19",
        "zstd,22",
        "zlib,0",
        "zlib,1",
        "zlib,6",
        "zlib,9",
        "lzma,0",
        "lzma,6",
        "lzma,9",
        "auto,zstd",
        "auto,zlib,9",
        "auto,lzma",
        "obfuscate,1,lz4",
        "obfuscate,6,zstd,3",
        "obfuscate,110,none",
        "obfuscate,115,auto,zstd",
        "obfuscate,2,obfuscate,111,zlib",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

#[test]
fn round_trips_every_codec_and_level_class() {
    let inputs = [
        Vec::new(),
        b"x".to_vec(),
        semi_compressible(300_000),
        random_bytes(100_000, 7),
        vec![0u8; 1 << 20],
    ];
    for spec in all_specs() {
        for data in &inputs {
            let framed = compress(&spec, data);
            let out = decompress(&framed, None);
            assert!(
                matches!(&out, Ok(d) if d == data),
                "{spec} len {}: {:?}",
                data.len(),
                out.err()
            );
            let out = decompress(&framed, Some(data.len()));
            assert!(
                matches!(&out, Ok(d) if d == data),
                "{spec} hint {}: {:?}",
                data.len(),
                out.err()
            );
        }
    }
}

#[test]
fn header_bytes() {
    let text = semi_compressible(100_000);
    let hdr = |s: &str| compress(&s.parse().unwrap(), &text)[..2].to_vec();
    assert_eq!(hdr("none"), NONE_HEADER);
    assert_eq!(hdr("lz4"), LZ4_HEADER);
    assert_eq!(hdr("lzma"), LZMA_HEADER);
    assert_eq!(hdr("zstd"), ZSTD_HEADER);
    assert_eq!(hdr("obfuscate,1,lz4"), OBFUSCATE_HEADER);
    assert_eq!(hdr("zlib"), vec![0x78, 0x9c]); // zlib has no borg header
    assert_eq!(hdr("zlib,1"), vec![0x78, 0x01]);
    assert_eq!(hdr("zlib,9"), vec![0x78, 0xda]);
    // lzma body is a full .xz stream with check NONE
    let x = compress(&Compression::Lzma(6), &text);
    assert_eq!(&x[2..8], b"\xfd7zXZ\x00");
    assert_eq!(&x[8..10], &[0x00, 0x00]); // stream flags: check type 0 = NONE
                                          // zstd frame carries the content size (frame header descriptor has FCS flag bits or single segment)
    let z = compress(&Compression::Zstd(3), &text);
    assert_eq!(&z[2..6], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&z[2..]).unwrap(),
        Some(text.len() as u64)
    );
    // obfuscate: u32 BE inner length, then the inner framed data with its own header
    let o = compress(&"obfuscate,110,lz4".parse().unwrap(), &text);
    let inner_len = u32::from_be_bytes([o[2], o[3], o[4], o[5]]) as usize;
    assert_eq!(&o[6..8], &LZ4_HEADER);
    assert_eq!(
        &o[6..6 + inner_len],
        &compress(&Compression::Lz4, &text)[..]
    );
    assert!(o[6 + inner_len..].iter().all(|&b| b == 0));
    assert!(o.len() - 6 - inner_len < 1024);
}

#[test]
fn incompressible_data_falls_back_to_none_except_zlib() {
    let data = random_bytes(50_000, 3);
    for s in [
        "lz4",
        "zstd,3",
        "zstd,22",
        "lzma,6",
        "auto,zstd",
        "auto,lzma,9",
    ] {
        let framed = compress(&s.parse().unwrap(), &data);
        assert_eq!(&framed[..2], &NONE_HEADER, "{s}");
        assert_eq!(&framed[2..], &data[..], "{s}");
    }
    // zlib never falls back: larger than the input
    let z = compress(&Compression::Zlib(6), &data);
    assert!(z.len() > data.len());
    assert_eq!(decompress(&z, None).unwrap(), data);
    // empty input: lz4 output (1 byte) is not smaller than 0 bytes
    assert_eq!(compress(&Compression::Lz4, b""), NONE_HEADER.to_vec());
    assert_eq!(compress(&Compression::Zstd(3), b""), NONE_HEADER.to_vec());
}

#[test]
fn auto_heuristic() {
    // random -> none, text -> the expensive codec, partly compressible -> lz4
    let auto_zstd: Compression = "auto,zstd".parse().unwrap();
    assert_eq!(
        &compress(&auto_zstd, &random_bytes(100_000, 9))[..2],
        &NONE_HEADER
    );
    assert_eq!(
        &compress(&auto_zstd, &semi_compressible(100_000))[..2],
        &ZSTD_HEADER
    );
    // ~5% compressible by lz4 (ratio < 0.97), zstd not 1% better than lz4 on it
    let mut partly = random_bytes(100_000, 5);
    for b in &mut partly[..7000] {
        *b = 0;
    }
    let lz = compress(&Compression::Lz4, &partly);
    assert!((lz.len() as f64) < 0.97 * (partly.len() as f64 + 2.0));
    let framed = compress(&"auto,zlib,0".parse().unwrap(), &partly);
    assert_eq!(
        framed, lz,
        "zlib level 0 is not better than lz4, so lz4 is kept"
    );
    // ratio just above 0.97 keeps lz4 without trying the expensive codec
    let mut barely = random_bytes(100_000, 6);
    for b in &mut barely[..1000] {
        *b = 0;
    }
    let lz = compress(&Compression::Lz4, &barely);
    assert_eq!(&lz[..2], &LZ4_HEADER);
    assert!((lz.len() as f64) >= 0.97 * (barely.len() as f64 + 2.0));
    assert_eq!(compress(&"auto,lzma,9".parse().unwrap(), &barely), lz);
}

#[test]
fn zlib_detection_rule() {
    for level in 0..=9 {
        let z = compress(&Compression::Zlib(level), b"hello hello hello");
        assert_eq!(z[0] & 0x0f, 8);
        assert_eq!((z[0] as u32 * 256 + z[1] as u32) % 31, 0);
        assert_eq!(decompress(&z, None).unwrap(), b"hello hello hello");
    }
    // none of borg's own headers looks like zlib
    for h in [
        NONE_HEADER,
        LZ4_HEADER,
        LZMA_HEADER,
        ZSTD_HEADER,
        OBFUSCATE_HEADER,
    ] {
        assert!(!((h[0] & 0x0f) == 8 && (h[0] as u32 * 256 + h[1] as u32).is_multiple_of(31)));
    }
    // a 0x?8 header with a bad check value is not zlib
    assert!(matches!(
        decompress(&[0x78, 0x00, 1, 2], None),
        Err(CompressError::UnknownHeader(_))
    ));
    // unused data after the zlib stream is ignored, as by Python's zlib.decompress
    let mut z = compress(&Compression::Zlib(6), b"abc");
    z.extend_from_slice(b"trailing");
    assert_eq!(decompress(&z, None).unwrap(), b"abc");
    // a truncated stream is an error
    let z = compress(&Compression::Zlib(6), &semi_compressible(10_000));
    assert!(matches!(
        decompress(&z[..z.len() - 5], None),
        Err(CompressError::Zlib(_))
    ));
}

#[test]
fn obfuscate_nesting() {
    let data = semi_compressible(20_000);
    // borg allows at most 5 comma-separated values, so this is the deepest useful nesting
    assert!("obfuscate,1,obfuscate,110,auto,zstd,19"
        .parse::<Compression>()
        .is_err());
    let spec: Compression = "obfuscate,1,obfuscate,110,lz4".parse().unwrap();
    let framed = compress(&spec, &data);
    assert_eq!(&framed[..2], &OBFUSCATE_HEADER);
    assert_eq!(&framed[6..8], &OBFUSCATE_HEADER);
    assert_eq!(decompress(&framed, None).unwrap(), data);
    // padding for relative levels: at least len*0.001*10^S-ish on average, capped by MAX_DATA_SIZE
    let big: Compression = "obfuscate,6,none".parse().unwrap();
    let framed = compress(&big, &data);
    assert!(framed.len() < MAX_DATA_SIZE);
    assert!(framed.len() >= data.len() + 2 + 4 + 2);
    // truncated inner length
    let mut bad = framed[..10].to_vec();
    bad[2..6].copy_from_slice(&1000u32.to_be_bytes());
    assert!(matches!(
        decompress(&bad, None),
        Err(CompressError::ObfuscateTruncated { .. })
    ));
    assert!(decompress(&[4, 0, 0], None).is_err());
    // hostile deep nesting is refused without recursion
    let mut deep = compress(&Compression::None, b"x");
    for _ in 0..100_000 {
        let mut w = OBFUSCATE_HEADER.to_vec();
        w.extend_from_slice(&(deep.len() as u32).to_be_bytes());
        w.extend_from_slice(&deep);
        deep = w;
        if deep.len() > 2_000_000 {
            break;
        }
    }
    assert!(matches!(
        decompress(&deep, None),
        Err(CompressError::ObfuscateNesting)
    ));
}

#[test]
fn lz4_size_hint_and_growth() {
    let data = vec![7u8; 30 << 20]; // compresses to far below 1%: needs more than borg's first buffer
    let framed = compress(&Compression::Lz4, &data);
    assert_eq!(decompress(&framed, None).unwrap().len(), data.len());
    assert_eq!(
        decompress(&framed, Some(data.len())).unwrap().len(),
        data.len()
    );
    // a wrong hint still works
    assert_eq!(decompress(&framed, Some(10)).unwrap().len(), data.len());
    assert_eq!(
        decompress(&framed, Some(40 << 20)).unwrap().len(),
        data.len()
    );
}

#[test]
fn hostile_sizes_are_refused() {
    // zstd frame claiming 2^40 bytes of content
    let mut f = vec![
        3,
        0,
        0x28,
        0xb5,
        0x2f,
        0xfd,
        0xc0 | 0x20,
        0,
        0,
        0,
        0,
        0,
        1,
        0,
        0,
    ];
    f.extend_from_slice(&[1, 0, 0]);
    assert!(decompress(&f, None).is_err());
    // zstd frame without content size
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_contentsize(false).unwrap();
    std::io::Write::write_all(&mut enc, b"hello").unwrap();
    let frame = enc.finish().unwrap();
    let mut framed = ZSTD_HEADER.to_vec();
    framed.extend_from_slice(&frame);
    assert!(matches!(
        decompress(&framed, None),
        Err(CompressError::ZstdSize(_))
    ));
    // an lz4 block whose lengths add up to more than the limit
    let mut b = vec![1u8, 0, 0x0f];
    b.extend(std::iter::repeat_n(
        0xff,
        (MAX_DECOMPRESSED_SIZE / 255) + 10,
    ));
    assert!(decompress(&b, None).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn decoding_garbage_never_panics(header in 0u8..6, second in prop_oneof![Just(0u8), any::<u8>()], body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut framed = vec![header, second];
        framed.extend_from_slice(&body);
        let _ = decompress(&framed, None);
        let _ = decompress(&framed, Some(body.len()));
        let _ = decompress(&framed[..framed.len().min(1)], None);
    }

    #[test]
    fn mutated_frames_never_panic(spec_i in 0usize..21, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let specs = all_specs();
        let data = semi_compressible(3000);
        let mut framed = compress(&specs[spec_i], &data);
        for (pos, val) in flips {
            let p = 2 + pos % (framed.len() - 2).max(1);
            if p < framed.len() { framed[p] ^= val; }
        }
        let _ = decompress(&framed, None);
        let _ = decompress(&framed[..cut % (framed.len() + 1)], Some(3000));
    }

    #[test]
    fn round_trip_arbitrary(data in proptest::collection::vec(any::<u8>(), 0..3000), spec_i in 0usize..21) {
        let specs = all_specs();
        let framed = compress(&specs[spec_i], &data);
        prop_assert_eq!(decompress(&framed, None).unwrap(), data);
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-check with real borg (python3 + borg 1.2). Set HOARD_SKIP_BORG=1 to skip when borg is
// not installed; HOARD_BORG_PYTHON picks the interpreter that has borg (default /usr/bin/python3).

fn borg_python() -> Option<String> {
    let py = std::env::var("HOARD_BORG_PYTHON").unwrap_or_else(|_| {
        if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".into()
        } else {
            "python3".into()
        }
    });
    let ok = Command::new(&py)
        .args(["-c", "import borg.compress"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(py);
    }
    if std::env::var("HOARD_SKIP_BORG").as_deref() == Ok("1") {
        eprintln!("skipping borg cross-check: HOARD_SKIP_BORG=1");
        return None;
    }
    panic!(
        "borg cross-check needs python3 with borg 1.2 importable ('{py} -c \"import borg.compress\"' failed); \
         install borgbackup, set HOARD_BORG_PYTHON to its interpreter, or set HOARD_SKIP_BORG=1 to skip"
    );
}

const BORG_SPECS: &[&str] = &[
    "none",
    "lz4",
    "zstd,1",
    "zstd,3",
    "zstd,22",
    "zlib,0",
    "zlib,6",
    "zlib,9",
    "lzma,0",
    "lzma,6",
    "auto,zstd",
    "auto,lzma,9",
    "obfuscate,1,lz4",
    "obfuscate,110,zstd,3",
    "obfuscate,3,auto,zlib,9",
];

const BORG_SCRIPT: &str = r#"
import os, sys
from borg.compress import CompressionSpec, Compressor
d, mode = sys.argv[1], sys.argv[2]
specs = sys.argv[3].split(';')
inputs = sorted(f for f in os.listdir(d) if f.startswith('input-'))
for i, spec in enumerate(specs):
    for name in inputs:
        data = open(os.path.join(d, name), 'rb').read()
        tag = '%d-%s' % (i, name[len('input-'):])
        if mode == 'make':
            with open(os.path.join(d, 'borg-' + tag), 'wb') as f:
                f.write(CompressionSpec(spec).compressor.compress(data))
        else:
            framed = open(os.path.join(d, 'ours-' + tag), 'rb').read()
            out = Compressor('none').decompress(framed)
            if bytes(out) != data:
                print('MISMATCH', spec, name); sys.exit(1)
print('OK')
"#;

#[test]
fn borg_cross_check() {
    let Some(py) = borg_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("text", semi_compressible(200_000)),
        ("random", random_bytes(70_000, 11)),
        ("zeros", vec![0u8; 300_000]),
    ];
    for (name, data) in &inputs {
        std::fs::write(dir.path().join(format!("input-{name}")), data).unwrap();
    }
    let specs = BORG_SPECS.join(";");
    let run = |mode: &str| {
        let out = Command::new(&py)
            .arg("-c")
            .arg(BORG_SCRIPT)
            .arg(dir.path())
            .arg(mode)
            .arg(&specs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "borg script ({mode}) failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // borg compresses, we decompress
    run("make");
    for (i, spec) in BORG_SPECS.iter().enumerate() {
        let spec_c: Compression = spec.parse().unwrap();
        for (name, data) in &inputs {
            let theirs = std::fs::read(dir.path().join(format!("borg-{i}-{name}"))).unwrap();
            assert!(
                decompress(&theirs, None).unwrap() == *data,
                "borg {spec} {name}"
            );
            assert!(
                decompress(&theirs, Some(data.len())).unwrap() == *data,
                "borg {spec} {name}"
            );
            // same header choice (fallbacks, auto decisions) as borg; obfuscate padding is random
            let ours = compress(&spec_c, data);
            assert_eq!(ours[..2], theirs[..2], "header for {spec} {name}");
            std::fs::write(dir.path().join(format!("ours-{i}-{name}")), &ours).unwrap();
        }
    }
    // we compress, borg decompresses
    run("check");
}

/// liblz4 decodes untrusted blocks: truncated, garbled and hand-made malformed blocks give an
/// error (or, for a truncation that happens to end on a literal run, different data), never
/// a panic or more bytes than allowed. Run under valgrind once to check memory safety too.
#[test]
fn lz4_truncated_and_garbled_blocks() {
    let data = semi_compressible(64 * 1024);
    let framed = compress(&Compression::Lz4, &data);
    assert_eq!(framed[..2], LZ4_HEADER);
    assert_eq!(decompress(&framed, Some(data.len())).unwrap(), data);

    // Every truncation (densely at both ends): an error or a strictly shorter output.
    let n = framed.len();
    let mut rejected = 0;
    for cut in (2..n).filter(|&c| c < 600 || c > n - 600 || c % 5 == 0) {
        for hint in [None, Some(data.len())] {
            match decompress(&framed[..cut], hint) {
                Err(CompressError::Lz4(_)) => rejected += 1,
                Err(e) => panic!("truncated at {cut}: unexpected error {e}"),
                Ok(out) => {
                    assert!(out.len() < data.len(), "truncated at {cut}: full output");
                    assert_eq!(out[..], data[..out.len()], "truncated at {cut}");
                }
            }
        }
    }
    assert!(rejected > 0);

    // Garbled blocks: random bytes overwritten; the output never exceeds the size hint or the
    // size the block's own headers announce, and the damage is mostly detected.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut errors, mut trials) = (0, 0);
    for _ in 0..3000 {
        let mut bad = framed.clone();
        for _ in 0..1 + rnd() % 4 {
            let pos = 2 + (rnd() as usize) % (n - 2);
            bad[pos] = rnd() as u8;
        }
        for hint in [None, Some(data.len())] {
            trials += 1;
            match decompress(&bad, hint) {
                Err(CompressError::Lz4(_)) | Err(CompressError::TooLarge) => errors += 1,
                Err(e) => panic!("unexpected error {e}"),
                Ok(out) => assert!(out.len() <= MAX_DECOMPRESSED_SIZE),
            }
        }
    }
    assert!(
        errors * 4 > trials,
        "{errors} of {trials} garbled blocks detected"
    );

    // Hand-made malformed blocks.
    let cases: [(&str, &[u8]); 6] = [
        ("empty block", &[]),
        ("match before the start", &[0x10, b'a', 0x05, 0x00, 0x00]),
        ("literals past the end", &[0x50, b'a', b'b']),
        ("length extension cut off", &[0xf0, 0xff, 0xff]),
        ("offset cut off", &[0x14, b'a', 0x01]),
        ("no final literals", &[0x14, b'a', 0x01, 0x00]),
    ];
    for (what, block) in cases {
        let mut f = LZ4_HEADER.to_vec();
        f.extend_from_slice(block);
        for hint in [None, Some(0), Some(16), Some(1 << 20)] {
            assert!(
                matches!(decompress(&f, hint), Err(CompressError::Lz4(_))),
                "{what} (hint {hint:?}) was accepted"
            );
        }
    }
    // A valid block that needs more room than the hint: decoded with the size from its headers.
    let small = compress(&Compression::Lz4, &[b'x'; 1000]);
    assert_eq!(decompress(&small, Some(999)).unwrap(), vec![b'x'; 1000]);
}

#[test]
fn compress_into_appends_after_a_prefix() {
    let text = semi_compressible(100_000);
    let random = random_bytes(10_000, 5);
    for spec in all_specs() {
        if matches!(spec, Compression::Obfuscate { .. }) {
            continue; // random padding: not comparable byte for byte
        }
        for data in [&text[..], &random[..], &[][..]] {
            let mut out = vec![0xaa; 41];
            compress_into(&spec, data, &mut out);
            assert!(out[..41].iter().all(|&b| b == 0xaa), "{spec}: prefix kept");
            assert_eq!(out[41..], compress(&spec, data)[..], "{spec}");
            assert_eq!(decompress(&out[41..], Some(data.len())).unwrap(), data);
            let mut empty = Vec::new();
            compress_into(&spec, data, &mut empty);
            assert_eq!(empty, compress(&spec, data), "{spec}");
        }
    }
}

/// `decompress_in` gives what `decompress` gives, for every codec, into a buffer that is too
/// small, large enough, or full of an earlier result; corrupt input fails the same way.
#[test]
fn decompress_in_matches_decompress() {
    let small = semi_compressible(3000);
    let large = semi_compressible(3 << 20); // more than the first room tried
    let mut buf = Vec::new();
    for spec in all_specs() {
        for data in [&small, &large] {
            let framed = compress(&spec, data);
            for hint in [None, Some(data.len()), Some(10)] {
                decompress_in(&framed, hint, &mut buf).expect("decompress_in");
                assert_eq!(buf, *data, "{spec} hint {hint:?}");
            }
        }
    }
    let mut framed = compress(&"lz4".parse().expect("spec"), &large);
    let cut = framed.len() / 2;
    framed.truncate(cut);
    assert!(decompress(&framed, None).is_err());
    assert!(decompress_in(&framed, None, &mut buf).is_err());
}

#[test]
fn lzma_refuses_a_dictionary_beyond_the_memory_limit() {
    // fuzz/regressions/decompress_lzma/dictionary-4gib: a legacy .lzma header asking for a
    // 4 GiB dictionary, which liblzma allocated before looking at the data
    let mut framed = LZMA_HEADER.to_vec();
    framed.push(0x31);
    framed.extend_from_slice(&[0xff; 29]);
    framed.push(0xd7);
    match decompress(&framed, None) {
        Err(CompressError::Lzma(m)) => assert_eq!(m, "memory limit reached"),
        other => panic!("expected the lzma memory limit, got {other:?}"),
    }
}

/// A zstd frame by hand: 8-byte content size `claimed`, one raw block holding `body`.
fn zstd_frame_claiming(claimed: u64, body: &[u8]) -> Vec<u8> {
    let mut f = ZSTD_HEADER.to_vec();
    f.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0xe0]); // magic, single segment, 8-byte size
    f.extend_from_slice(&claimed.to_le_bytes());
    let block = 1u32 | ((body.len() as u32) << 3); // last block, raw
    f.extend_from_slice(&block.to_le_bytes()[..3]);
    f.extend_from_slice(body);
    f
}

#[test]
fn zstd_frames_claiming_more_than_they_hold_are_refused() {
    // the claim agrees with the block: fine
    assert_eq!(
        decompress(&zstd_frame_claiming(5, b"hello"), None).unwrap(),
        b"hello"
    );
    // 200 MiB claimed by a 20-byte frame: decoded as a stream (the buffer is not sized
    // from the claim) and refused for the mismatch
    let hostile = zstd_frame_claiming(200 << 20, b"hello");
    assert!(matches!(
        decompress(&hostile, None),
        Err(CompressError::Zstd(_))
    ));
    // past the cap: refused before decoding
    let huge = zstd_frame_claiming(1 << 40, b"hello");
    assert!(matches!(
        decompress(&huge, None),
        Err(CompressError::TooLarge)
    ));
}

#[test]
fn highly_compressible_zstd_chunks_decode_through_the_stream_path() {
    // 24 MiB of zeros compress to a frame far smaller than 24 MiB / 64: the stream path
    let zeros = vec![0u8; 24 << 20];
    let framed = compress(&Compression::Zstd(3), &zeros);
    assert!(framed.len() < (24 << 20) / 64);
    assert_eq!(decompress(&framed, None).unwrap(), zeros);
}
