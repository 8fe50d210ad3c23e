//! The crypto layer against the borg 1.2.4 vectors (`shared/vectors/repos`) and, where
//! noted, against the installed `borg` binary (set `HOARD_SKIP_BORG=1` to skip those parts).

use std::path::{Path, PathBuf};
use std::process::Command;

use hoard::crypto::{self, Key, KeyMaterial, KeyType};
use serde_json::Value as Json;

const PASSPHRASE: &str = "borg-vectors-passphrase";

mod common;

/// The borg-made vector repositories (`shared/vectors/repos`, see `common::vectors_dir`).
fn vectors_dir() -> PathBuf {
    common::vectors_dir().join("repos")
}

fn load_json(name: &str) -> Json {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn unhex(v: &Json) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn arr32(v: &Json) -> [u8; 32] {
    unhex(v).try_into().unwrap()
}

fn material_from_json(d: &Json) -> KeyMaterial {
    KeyMaterial {
        enc_key: arr32(&d["enc_key"]),
        enc_hmac_key: unhex(&d["enc_hmac_key"]),
        id_key: unhex(&d["id_key"]),
        chunk_seed: i32::try_from(d["chunk_seed"].as_i64().unwrap()).unwrap(),
        repository_id: arr32(&d["repository_id"]),
        tam_required: d["tam_required"].as_bool(),
    }
}

fn key_from_json(entry: &Json) -> Key {
    let t = KeyType::from_type_byte(entry["type_byte"].as_u64().unwrap() as u8).unwrap();
    match entry["decrypted_key"].is_null() {
        true => Key::plaintext(),
        false => Key::from_material(t, material_from_json(&entry["decrypted_key"])),
    }
}

/// Extracts a vector tarball into `dir` and returns the repository directory.
fn extract(name: &str, dir: &Path) -> PathBuf {
    let tarball = vectors_dir().join(format!("{name}.tar.gz"));
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("tar must be installed");
    assert!(st.success(), "extracting {}", tarball.display());
    dir.join(name)
}

/// `(id, key blob text)` from the repository `config`, or from `<name>.key` for key files.
fn repo_key_blob(name: &str, repo: &Path, key_type: KeyType) -> ([u8; 32], String) {
    let config = std::fs::read_to_string(repo.join("config")).unwrap();
    let mut id = None;
    let mut key = String::new();
    let mut in_key = false;
    for line in config.lines() {
        if let Some(v) = line.strip_prefix("id = ") {
            id = Some(hex::decode(v.trim()).unwrap().try_into().unwrap());
            in_key = false;
        } else if let Some(v) = line.strip_prefix("key = ") {
            key.push_str(v.trim());
            in_key = true;
        } else if in_key && line.starts_with('\t') {
            key.push('\n');
            key.push_str(line.trim());
        } else {
            in_key = false;
        }
    }
    let id: [u8; 32] = id.expect("config has an id");
    if key_type.uses_keyfile() {
        let kf = repo.parent().unwrap().join(format!("{name}.key"));
        let (kid, blob) = crypto::parse_key_file(&std::fs::read_to_string(kf).unwrap()).unwrap();
        assert_eq!(kid, id);
        return (id, blob);
    }
    (id, key)
}

fn borg_available() -> bool {
    if std::env::var("HOARD_SKIP_BORG").as_deref() == Ok("1") {
        return false;
    }
    let ok = Command::new("borg")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs borg 1.2 on PATH (`borg --version` failed); set HOARD_SKIP_BORG=1 to skip"
    );
    true
}

fn borg(base: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new("borg");
    c.args(args)
        .env("BORG_PASSPHRASE", PASSPHRASE)
        .env("BORG_BASE_DIR", base)
        .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
        .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
        .env("BORG_DISPLAY_PASSPHRASE", "no")
        .env_remove("BORG_KEY_FILE")
        .env_remove("BORG_PASSCOMMAND")
        .env_remove("BORG_PASSPHRASE_FD")
        .env_remove("BORG_REPO")
        .env("TZ", "UTC");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let out = c.output().expect("running borg");
    assert!(
        out.status.success(),
        "borg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn key_blobs_decrypt_to_vector_material_and_reencrypt_identically() {
    let keys = load_json("keys.json");
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (name, entry) in keys.as_object().unwrap() {
        let t = KeyType::from_type_byte(entry["type_byte"].as_u64().unwrap() as u8).unwrap();
        let repo = extract(name, tmp.path());
        if entry["decrypted_key"].is_null() {
            assert_eq!(t, KeyType::Plaintext);
            continue;
        }
        let (id, blob) = repo_key_blob(name, &repo, t);
        let m =
            crypto::decrypt_key_blob(&blob, PASSPHRASE).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m, material_from_json(&entry["decrypted_key"]), "{name}");
        assert_eq!(m.repository_id, id, "{name}");
        assert!(matches!(
            crypto::decrypt_key_blob(&blob, "not the passphrase"),
            Err(crypto::CryptoError::WrongPassphrase)
        ));
        // our packing of the same material with the same salt gives borg's exact blob
        let env = &entry["key_envelope"];
        let bytes = crypto::encrypt_key_blob_bytes(
            &m,
            PASSPHRASE,
            &unhex(&env["salt"]),
            env["iterations"].as_u64().unwrap() as u32,
        );
        assert_eq!(bytes, crypto::decode_blob_text(&blob).unwrap(), "{name}");
        assert_eq!(crypto::encode_blob_text(&bytes), blob.trim_end(), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn objects_and_manifests_match_vectors() {
    let keys = load_json("keys.json");
    let objects = load_json("crypto_objects.json");
    for (name, o) in objects.as_object().unwrap() {
        let key = key_from_json(&keys[name]);
        let plaintext = unhex(&o["plaintext_hex"]);
        assert_eq!(plaintext, b"hello borg\n");
        assert_eq!(key.id_hash(&plaintext).to_vec(), unhex(&o["id"]), "{name}");
        let object = unhex(&o["repo_object_hex"]);
        let payload = unhex(&o["compressed_payload_hex"]);
        assert_eq!(key.decrypt(&object).unwrap(), payload, "{name}");
        let id: [u8; 32] = unhex(&o["id"]).try_into().unwrap();
        assert_eq!(key.decrypt_chunk(Some(&id), &object).unwrap(), payload);
        key.assert_id(&id, &plaintext).unwrap();
        let iv = Key::object_iv(&object);
        if key.key_type().is_encrypting() {
            let iv8: [u8; 8] = unhex(&o["iv8"]).try_into().unwrap();
            assert_eq!(iv, Some(u64::from_be_bytes(iv8)));
            assert_eq!(&object[1..33], unhex(&o["mac"]).as_slice());
            assert_eq!(&object[41..], unhex(&o["ciphertext"]).as_slice());
            for pos in [1, 33, object.len() - 1] {
                let mut bad = object.clone();
                bad[pos] ^= 0x40;
                let e = key.decrypt_chunk(Some(&id), &bad).unwrap_err();
                assert!(e
                    .to_string()
                    .ends_with("Could not decrypt [MAC Authentication failed]"));
            }
        } else {
            assert_eq!(iv, None);
        }
        assert_eq!(key.encrypt(&payload, iv.unwrap_or(0)), object, "{name}");

        let manifest = unhex(&o["manifest_plaintext_msgpack_hex"]);
        assert_eq!(
            key.id_hash(&manifest).to_vec(),
            unhex(&o["manifest_id_hash_of_plaintext"]),
            "{name}"
        );
        let (v, verified) = key
            .unpack_and_verify_manifest(&manifest, false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(verified, "{name}");
        assert!(v.get("tam").is_none());
        assert!(v.get("archives").is_some());
        // flip a byte of the timestamp
        let pos = manifest.windows(9).position(|w| w == b"timestamp").unwrap() + 12;
        let mut bad = manifest.clone();
        bad[pos] ^= 1;
        assert!(
            matches!(
                key.unpack_and_verify_manifest(&bad, false),
                Err(crypto::CryptoError::TamInvalid)
            ),
            "{name}"
        );
    }
}

#[test]
fn archive_tam_round_trip_with_vector_keys() {
    // The manifest lists archive ids; the archive objects themselves need the repository
    // reader, so here we only re-authenticate the manifest contents as an archive would be.
    let keys = load_json("keys.json");
    for (name, entry) in keys.as_object().unwrap() {
        let key = key_from_json(entry);
        let v = hoard::msgpack::Value::sorted_map(vec![
            ("name", hoard::msgpack::Value::raw("archive1")),
            ("version", hoard::msgpack::Value::int(1)),
        ]);
        let packed = key.pack_and_authenticate_metadata(v, "archive");
        assert!(key.unpack_and_verify_archive(&packed).unwrap().1, "{name}");
    }
}

#[test]
fn paper_and_plain_export_match_borg() {
    if !borg_available() {
        return;
    }
    let keys = load_json("keys.json");
    let tmp = tempfile::tempdir().unwrap();
    for name in ["repokey", "keyfile-blake2"] {
        let t = KeyType::from_type_byte(keys[name]["type_byte"].as_u64().unwrap() as u8).unwrap();
        let repo = extract(name, tmp.path());
        let (id, blob) = repo_key_blob(name, &repo, t);
        let base = tmp.path().join(format!("base-{name}"));
        std::fs::create_dir(&base).unwrap();
        let kf = tmp.path().join(format!("{name}.key"));
        let mut env: Vec<(&str, &str)> = vec![];
        let kf_s = kf.to_str().unwrap().to_string();
        if t.uses_keyfile() {
            env.push(("BORG_KEY_FILE", &kf_s));
        }
        let repo_s = repo.to_str().unwrap();
        let out = borg(&base, &["key", "export", "--paper", repo_s], &env);
        let ours = crypto::export_paper(&id, &crypto::decode_blob_text(&blob).unwrap());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), ours, "{name}");
        let back = crypto::import_paper(&id, ours.lines().map(String::from)).unwrap();
        assert_eq!(
            crypto::decode_blob_text(&back).unwrap(),
            crypto::decode_blob_text(&blob).unwrap()
        );

        let out = borg(&base, &["key", "export", repo_s], &env);
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            crypto::format_key_file(&id, &blob),
            "{name}"
        );

        let template = "/usr/lib/python3/dist-packages/borg/paperkey.html";
        if let Ok(tpl) = std::fs::read_to_string(template) {
            let out = borg(&base, &["key", "export", "--qr-html", repo_s], &env);
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                crypto::export_qr_html(&id, &blob, &tpl),
                "{name}"
            );
        }
    }
}

#[test]
fn borg_accepts_key_files_we_write() {
    if !borg_available() {
        return;
    }
    let keys = load_json("keys.json");
    let tmp = tempfile::tempdir().unwrap();
    let new_pass = "hoard-made passphrase ä";

    // keyfile repo: our re-encrypted key file under BORG_KEY_FILE
    let repo = extract("keyfile", tmp.path());
    let m = material_from_json(&keys["keyfile"]["decrypted_key"]);
    let kf = tmp.path().join("ours.key");
    crypto::save_key_file(
        &kf,
        &m.repository_id,
        &crypto::encrypt_key_blob(&m, new_pass),
        true,
    )
    .unwrap();
    let base = tmp.path().join("base1");
    std::fs::create_dir(&base).unwrap();
    let out = borg(
        &base,
        &["list", "--short", repo.to_str().unwrap()],
        &[
            ("BORG_KEY_FILE", kf.to_str().unwrap()),
            ("BORG_PASSPHRASE", new_pass),
        ],
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "archive1\narchive2\n"
    );

    // repokey-blake2 repo: borg imports our key file, then opens the repo with our passphrase
    let repo = extract("repokey-blake2", tmp.path());
    let m = material_from_json(&keys["repokey-blake2"]["decrypted_key"]);
    let kf = tmp.path().join("ours2.key");
    crypto::save_key_file(
        &kf,
        &m.repository_id,
        &crypto::encrypt_key_blob(&m, new_pass),
        true,
    )
    .unwrap();
    let base = tmp.path().join("base2");
    std::fs::create_dir(&base).unwrap();
    borg(
        &base,
        &[
            "key",
            "import",
            repo.to_str().unwrap(),
            kf.to_str().unwrap(),
        ],
        &[],
    );
    let out = borg(
        &base,
        &["list", "--short", repo.to_str().unwrap()],
        &[("BORG_PASSPHRASE", new_pass)],
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "archive1\narchive2\n"
    );
}

/// All PUT entries `(key, object)` of a repository's segments, in log order.
fn segment_puts(repo: &Path) -> Vec<([u8; 32], Vec<u8>)> {
    let mut segs: Vec<(u64, PathBuf)> = vec![];
    for d in std::fs::read_dir(repo.join("data")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if let Ok(n) = p.file_name().unwrap().to_str().unwrap().parse::<u64>() {
                segs.push((n, p));
            }
        }
    }
    segs.sort();
    let mut puts = vec![];
    for (_, p) in segs {
        let b = std::fs::read(p).unwrap();
        assert_eq!(&b[..8], b"BORG_SEG");
        let mut off = 8;
        while off + 9 <= b.len() {
            let size = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
            if b[off + 8] == 0 {
                let key: [u8; 32] = b[off + 9..off + 41].try_into().unwrap();
                puts.push((key, b[off + 41..off + size].to_vec()));
            }
            off += size;
        }
    }
    puts
}

/// Enough of spec §5 for the vectors used here (test-only; the compress module owns this).
fn decompress(framed: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = vec![];
    match framed {
        [0, 0, rest @ ..] => out.extend_from_slice(rest),
        [3, 0, rest @ ..] => out = zstd::decode_all(rest).unwrap(),
        [2, 0, rest @ ..] => {
            xz2::read::XzDecoder::new(rest)
                .read_to_end(&mut out)
                .unwrap();
        }
        [b0, b1, ..] if b0 & 0x0f == 8 && (*b0 as u32 * 256 + *b1 as u32).is_multiple_of(31) => {
            flate2::read::ZlibDecoder::new(framed)
                .read_to_end(&mut out)
                .unwrap();
        }
        _ => panic!(
            "compression not handled in this test: {:02x?}",
            &framed[..2]
        ),
    }
    out
}

#[test]
fn archive_objects_in_vector_repos_carry_valid_tams() {
    let keys = load_json("keys.json");
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "repokey",
        "keyfile",
        "repokey-blake2",
        "authenticated-blake2",
    ] {
        let key = key_from_json(&keys[name]);
        let repo = extract(name, tmp.path());
        let puts = segment_puts(&repo);
        let manifest_obj = &puts.iter().rev().find(|(k, _)| *k == [0; 32]).unwrap().1;
        let manifest = decompress(&key.decrypt(manifest_obj).unwrap());
        let (m, verified) = key.unpack_and_verify_manifest(&manifest, false).unwrap();
        assert!(verified);
        let nonce = key.manifest_nonce(manifest_obj).unwrap();
        if key.key_type().is_encrypting() {
            let repo_nonce =
                crypto::parse_nonce_text(&std::fs::read_to_string(repo.join("nonce")).unwrap())
                    .unwrap();
            assert!(
                nonce <= repo_nonce,
                "{name}: manifest nonce above repo nonce"
            );
        }
        let archives = m.get("archives").unwrap().as_map().unwrap();
        assert_eq!(archives.len(), 2);
        for (aname, entry) in archives {
            let id: [u8; 32] = entry
                .get("id")
                .unwrap()
                .as_bytes()
                .unwrap()
                .try_into()
                .unwrap();
            let obj = &puts.iter().find(|(k, _)| *k == id).unwrap().1;
            let plain = decompress(&key.decrypt_chunk(Some(&id), obj).unwrap());
            key.assert_id(&id, &plain).unwrap();
            let (a, verified) = key
                .unpack_and_verify_archive(&plain)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(verified, "{name}");
            assert_eq!(a.get("name"), Some(aname));
            let mut bad = plain.clone();
            let pos = bad.windows(4).position(|w| w == b"time").unwrap() + 6;
            bad[pos] ^= 1;
            assert!(matches!(
                key.unpack_and_verify_archive(&bad),
                Err(crypto::CryptoError::ArchiveTamInvalid)
            ));
        }
    }
}

#[test]
fn our_tam_writer_reproduces_borg_manifests() {
    let keys = load_json("keys.json");
    let objects = load_json("crypto_objects.json");
    for (name, o) in objects.as_object().unwrap() {
        let key = key_from_json(&keys[name]);
        let manifest = unhex(&o["manifest_plaintext_msgpack_hex"]);
        let full = hoard::msgpack::decode_all(&manifest, hoard::msgpack::Limits::MANIFEST).unwrap();
        let salt: [u8; 64] = full
            .get("tam")
            .and_then(|t| t.get("salt"))
            .and_then(|s| s.as_bytes())
            .unwrap()
            .try_into()
            .unwrap();
        let (without_tam, _) = key.unpack_and_verify_manifest(&manifest, false).unwrap();
        let ours = key.pack_and_authenticate_metadata_with_salt(without_tam, "manifest", &salt);
        assert_eq!(ours, manifest, "{name}");
    }
}
