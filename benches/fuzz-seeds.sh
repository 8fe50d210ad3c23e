#!/usr/bin/env bash
# Regenerates the small seed corpora of the fuzz targets under fuzz/seeds/<target>/ from the
# borg-made test vectors (/work/shared/vectors, or $HOARD_VECTORS) and a few hand-written
# samples. Needs borg 1.2.4's Python (/usr/bin/python3 with the borg and msgpack modules) and
# `borg` for the paper key. The committed seeds are this script's output; re-run it only to
# refresh them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
vectors=${HOARD_VECTORS:-/work/shared/vectors}
out=$here/fuzz/seeds
py=${HOARD_SEED_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in "$vectors"/repos/*.tar.gz; do tar xzf "$f" -C "$work"; done
rm -rf "$out"
mkdir -p "$out"

# paper key of the repokey vector (its repository id is fixed in fuzz_targets/paper.rs)
mkdir -p "$out/paper"
BORG_PASSPHRASE=borg-vectors-passphrase BORG_RELOCATED_REPO_ACCESS_IS_OK=yes \
    BORG_BASE_DIR="$work/borgbase" borg key export --paper "$work/repokey" "$out/paper/repokey.txt"

"$py" - "$work" "$vectors" "$out" <<'PY'
import os, sys, struct, zlib, lzma, hashlib, msgpack
import borg.compress as bc

work, vectors, out = sys.argv[1:4]

def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def segments(repo):
    base = os.path.join(work, repo, "data")
    for sub in sorted(os.listdir(base), key=int):
        for s in sorted(os.listdir(os.path.join(base, sub)), key=int):
            yield int(s), open(os.path.join(base, sub, s), "rb").read()

def entries(seg):
    pos = 8
    while pos + 9 <= len(seg):
        crc, size, tag = struct.unpack_from("<IIB", seg, pos)
        if tag in (0, 1):
            key = seg[pos + 9:pos + 41]
            yield tag, key, seg[pos + 41:pos + size]
        else:
            yield tag, None, b""
        pos += size

# --- repository files
n = 0
for num, seg in segments("none"):
    if len(seg) <= 4096 and n < 4:
        put("segment", f"none-{num}", seg)
        damaged = bytearray(seg)
        if len(damaged) > 30:
            damaged[20] ^= 0xFF
        put("segment_recover", f"none-{num}-damaged", bytes(damaged))
        n += 1
for repo in ["none", "lifecycle-compacted", "lifecycle-append-only"]:
    d = os.path.join(work, repo)
    for f in os.listdir(d):
        p = os.path.join(d, f)
        for prefix, target in [("index.", "index"), ("hints.", "hints"), ("integrity.", "integrity")]:
            if f.startswith(prefix) and os.path.getsize(p) <= 8192:
                put(target, f"{repo}-{f}", open(p, "rb").read())
# index.N files are 40 KB and more (borg's smallest table): seed with the first entries of the
# none vector's index rewritten into small tables (same header, 4 and 8 buckets)
idx = open(os.path.join(work, "none", "index.9"), "rb").read()
used = [idx[18 + i * 40:18 + (i + 1) * 40] for i in range((len(idx) - 18) // 40)]
used = [b for b in used if struct.unpack_from("<I", b, 32)[0] < 0xFFFFFFFE]
for nb, n in [(4, 2), (8, 5)]:
    table = [None] * nb
    for b in used[:n]:
        i = struct.unpack_from("<I", b, 0)[0] % nb
        while table[i] is not None:
            i = (i + 1) % nb
        table[i] = b
    empty = b"\0" * 32 + struct.pack("<II", 0xFFFFFFFF, 0)
    put("index", f"none-{n}-of-{nb}", b"BORG_IDX" + struct.pack("<iiBB", n, nb, 32, 8)
        + b"".join(t if t is not None else empty for t in table))
for repo in ["none", "repokey", "lifecycle-append-only"]:
    put("repo_config", repo, open(os.path.join(work, repo, "config"), "rb").read())

# --- keys
cfg = open(os.path.join(work, "repokey", "config")).read()
blob = cfg.split("key = ", 1)[1].split("\n\n")[0].strip()
put("keyblob", "repokey-text", blob)
import base64, binascii
put("keyblob", "repokey-envelope", base64.b64decode(blob))
for kf in ["keyfile.key", "keyfile-blake2.key"]:
    text = open(os.path.join(work, kf)).read()
    put("keyfile", kf, text)
    put("keyblob", kf + "-text", text.split("\n", 1)[1])
material = {b"version": 1, b"enc_key": b"\1" * 32, b"enc_hmac_key": b"\2" * 32,
            b"id_key": b"\3" * 32, b"repository_id": b"\4" * 32, b"chunk_seed": -5,
            b"tam_required": True}
put("keyblob", "material", msgpack.packb(material, use_bin_type=False))

# --- objects of the unencrypted repository (type byte 0x02, then compressed data)
plain = []
for num, seg in segments("none"):
    for tag, key, data in entries(seg):
        if tag == 0 and data[:1] == b"\x02":
            try:
                plain.append((key, data, bc.Compressor("lz4").decompress(data[1:])))
            except Exception:
                pass
manifest_id = b"\0" * 32
items_ids = set()
for key, obj, p in plain:
    if key == manifest_id:
        put("manifest", "none-object", obj)
        put("manifest", "none-plaintext", p)
        put("msgpack", "manifest", p)
        continue
    try:
        v = msgpack.unpackb(p, raw=True, strict_map_key=False)
    except Exception:
        continue
    if isinstance(v, dict) and b"items" in v:
        put("archive_meta", "none-" + key.hex()[:8], p)
        put("msgpack", "archive-" + key.hex()[:8], p)
        items_ids.update(v[b"items"])
chunks = [p for key, obj, p in plain if key in items_ids]
for i, c in enumerate(chunks[:2]):
    put("item_stream", f"stream-{i}-split-64", b"\x3f" + c[:3000])
    put("item_stream", f"stream-{i}-split-1", b"\x00" + c[:600])
    unp = msgpack.Unpacker(raw=True, strict_map_key=False)
    unp.feed(c)
    for j, item in enumerate(unp):
        if j >= 4:
            break
        put("item", f"stream{i}-item{j}", msgpack.packb(item, use_bin_type=False))

# --- compression
sample = b"hello borg " * 40 + bytes(range(256))
put("decompress", "lz4", bc.LZ4().compress(sample))
put("decompress", "zstd", bc.ZSTD(level=3).compress(sample))
put("decompress", "zlib", bc.ZLIB(level=6).compress(sample))
put("decompress", "lzma", bc.LZMA(level=6).compress(sample))
put("decompress", "none", b"\0\0" + sample[:64])
put("decompress", "obfuscate-lz4", bc.Compressor("obfuscate", level=110, compressor=bc.CompressionSpec("lz4").compressor).compress(sample)
    if hasattr(bc, "CompressionSpec") else b"\4\0\0\0\0\3\1\0\x10a")
for name in ["lz4", "zstd", "zlib", "lzma"]:
    framed = open(os.path.join(out, "decompress", name), "rb").read()
    put("decompress_" + name, "sample", framed[2:] if name != "zlib" else framed[2:])

# --- rpc transcripts (first byte: read size for the split)
for d, target in [("client-to-server", "rpc_request"), ("server-to-client", "rpc_reply")]:
    for t in ["list", "extract-dry-run"]:
        data = open(os.path.join(vectors, "rpc", f"{t}-{d}.bin"), "rb").read()
        put(target, t, b"\xff" + data[:4096])
put("rpc_reply", "log-lines", b"\x10" + b'$LOG INFO borg.repository Remote: hello\n{"type": "log_message", "levelname": "WARNING", "name": "x", "message": "m"}\n')
PY

# --- hand-written samples
mkdir -p "$out/s3_xml" "$out/job_yaml" "$out/patterns" "$out/placeholders"
cat > "$out/s3_xml/list" <<'X'
<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>repo/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>tok%2B1</NextContinuationToken><EncodingType>url</EncodingType><Contents><Key>repo/data/0/1</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"x"</ETag><Size>17</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>repo/config%20x</Key><Size>300</Size></Contents><CommonPrefixes><Prefix>repo/data/</Prefix></CommonPrefixes></ListBucketResult>
X
cat > "$out/s3_xml/error" <<'X'
<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>repo/x</Key><RequestId>1</RequestId></Error>
X
cat > "$out/s3_xml/multipart" <<'X'
<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>repo/data/0/5</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>
X
cp "$here/examples/local-job/config.yaml" "$out/job_yaml/local-job.yaml"
printf 'sh:home/*/junk\0home/user/junk' > "$out/patterns/shell"
printf 're:^home/[a-z]+/\\.cache$\0home/user/.cache' > "$out/patterns/regex"
printf 'fm:*.tmp\0a/b.tmp' > "$out/patterns/fnmatch"
printf 'R /home\nP sh\n+ home/user/keep/**\n- home/user/**\n! home/*/.cache\npp:/home/user/x\n' > "$out/patterns/pattern-file"
printf '{hostname}-{now:%%Y-%%m-%%dT%%H:%%M:%%S}-{user}' > "$out/placeholders/archive-name"
printf '{path:<40}{size:>10d} {ratio:.2f}{NL}' > "$out/placeholders/format-line"
printf '{utcnow:%%a %%b %%d %%Z} {{literal}} {pid:08x} {fqdn!r}' > "$out/placeholders/mixed"
find "$out" -type f | wc -l
du -sh "$out"
