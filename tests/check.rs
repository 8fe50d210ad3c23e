//! `hoard check`: the archives part (ArchiveChecker) against borg 1.2 — vector repositories,
//! random corruption with `--verify-data` and `--repair` of borg-made and of hoard-made
//! repositories, manifest rebuild, missing-chunk replacement and healing, orphans.

mod common;

use std::path::{Path, PathBuf};

use common::{archive, arg, borg_available, lines, tree, Env, Run, VECTORS};
use hoard::archive::Manifest;
use hoard::crypto::Key;
use hoard::msgpack::{Limits, Value};
use hoard::repo::{LocalRepository, Repository, MANIFEST_ID};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A small borg-made repository with two archives of `data/`.
fn borg_repo(env: &Env, encryption: &str) -> (PathBuf, PathBuf) {
    let data = env.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("big"), common::tree::pseudo_random(120_000, 1)).unwrap();
    std::fs::write(data.join("sub/mid"), common::tree::pseudo_random(30_000, 2)).unwrap();
    std::fs::write(
        data.join("small"),
        b"a small file that fits in one chunk\n".repeat(10),
    )
    .unwrap();
    std::os::unix::fs::symlink("small", data.join("link")).unwrap();
    let repo = env.borg_init_repo("repo", encryption);
    let cp = "buzhash,10,14,12,4095";
    env.borg([
        "create",
        "--chunker-params",
        cp,
        &format!("{}::one", s(&repo)),
        "data",
    ])
    .ok();
    std::fs::write(data.join("added"), common::tree::pseudo_random(5_000, 3)).unwrap();
    env.borg([
        "create",
        "--chunker-params",
        cp,
        &format!("{}::two", s(&repo)),
        "data",
    ])
    .ok();
    (repo, data)
}

fn repair_env(env: &mut Env) {
    env.set("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "YES");
}

fn archives(env: &Env, repo: &Path) -> Vec<String> {
    let out = env.borg(["list", "--short", &s(repo)]).expect_code(0).out();
    out.lines().map(str::to_string).collect()
}

#[test]
fn vector_repositories_pass_like_borg() {
    for name in VECTORS {
        let (env, repo) = common::vector_env(name);
        let r = env.hoard(["check", "-v", &s(&repo)]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert!(r
            .stderr
            .contains("Archive consistency check complete, no problems found."));
        let r = env.hoard(["check", "--verify-data", "-v", &s(&repo)]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains("with 0 integrity errors."),
            "{name}: {}",
            r.stderr
        );
        if borg_available() {
            env.borg(["check", "--verify-data", &s(&repo)]).ok();
        }
        // Selections: one archive, --last, a glob (orphan check skipped).
        let r = env
            .hoard(["check", "-v", "--archives-only", "--last", "1", &s(&repo)])
            .ok();
        assert!(r
            .stderr
            .contains("Orphaned objects check skipped (needs all archives checked)."));
        let first = archives(&env, &repo)
            .into_iter()
            .next()
            .expect("an archive");
        env.hoard([
            "check",
            "--archives-only",
            &format!("{}::{first}", s(&repo)),
        ])
        .ok();
        let r = env.hoard(["check", "--archives-only", &format!("{}::nope", s(&repo))]);
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("Archive 'nope' not found."));
    }
}

#[test]
fn progress_and_json_progress() {
    let (env, repo) = common::vector_env("repokey");
    let r = env
        .hoard(["--log-json", "check", "-p", "--verify-data", &s(&repo)])
        .ok();
    assert!(
        r.stderr.contains("\"type\": \"progress_percent\"")
            || r.stderr.contains("\"type\":\"progress_percent\"")
    );
    assert!(r.stderr.contains("check.verify_data"));
}

#[test]
fn corruption_injection_is_detected_and_repaired() {
    let have_borg = borg_available();
    let mut env = Env::new();
    let (pristine, _data) = borg_repo(&env, "repokey");
    repair_env(&mut env);
    let trials = 100;
    let borg_every = 5;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let (mut hoard_flagged, mut borg_flagged, mut borg_trials, mut hoard_on_borg_trials) =
        (0, 0, 0, 0);
    for t in 0..trials {
        let work = env.path().join(format!("t{t}"));
        std::fs::create_dir_all(&work).unwrap();
        let repo = work.join("repo");
        common::copy_dir(&pristine, &repo);
        let what = common::craft::flip_random_segment_byte(&repo, &mut rng).2;
        let with_borg = have_borg && t % borg_every == 0;
        let borg_copy = work.join("borg");
        if with_borg {
            common::copy_dir(&repo, &borg_copy);
        }
        let h = env.hoard(["check", "--verify-data", &s(&repo)]);
        assert!(h.code == 0 || h.code == 1, "trial {t} {what}: {}", h.stderr);
        assert!(
            !h.stderr.contains("panicked"),
            "trial {t} {what}: {}",
            h.stderr
        );
        if h.code != 0 {
            hoard_flagged += 1;
        } else {
            eprintln!("trial {t}: {what} not flagged by hoard");
        }
        if with_borg {
            let b = env.borg(["check", "--verify-data", &s(&borg_copy)]);
            borg_trials += 1;
            if h.code != 0 {
                hoard_on_borg_trials += 1;
            }
            if b.code == 0 {
                eprintln!("trial {t}: {what} not flagged by borg");
            } else {
                borg_flagged += 1;
                assert_ne!(
                    h.code, 0,
                    "trial {t} {what}: borg flagged it, hoard did not\nborg: {}\nhoard: {}",
                    b.stderr, h.stderr
                );
            }
        }
        let r = env.hoard(["check", "--repair", &s(&repo)]);
        assert_eq!(r.code, 0, "trial {t} {what}: repair failed: {}", r.stderr);
        let r = env.hoard(["check", &s(&repo)]);
        assert_eq!(
            r.code, 0,
            "trial {t} {what}: check after repair: {}",
            r.stderr
        );
        if with_borg {
            let b = env.borg(["check", &s(&repo)]);
            assert_eq!(
                b.code, 0,
                "trial {t} {what}: borg check after repair: {}",
                b.stderr
            );
            for name in archives(&env, &repo) {
                let dest = work.join(format!("x-{name}"));
                std::fs::create_dir_all(&dest).unwrap();
                let mut c = env.borg_cmd();
                c.current_dir(&dest)
                    .args(["extract", &format!("{}::{name}", s(&repo))]);
                let out = c.output().unwrap();
                assert!(
                    out.status.code() == Some(0) || out.status.code() == Some(1),
                    "trial {t} {what}: extract {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        std::fs::remove_dir_all(&work).unwrap();
    }
    eprintln!(
        "corruption trials: {trials}; hoard flagged {hoard_flagged}; borg compared on {borg_trials}: borg flagged {borg_flagged}, hoard flagged {hoard_on_borg_trials}"
    );
    assert!(hoard_on_borg_trials >= borg_flagged);
}

#[test]
fn lost_manifest_is_rebuilt() {
    let mut env = Env::new();
    let (repo, _) = borg_repo(&env, "repokey");
    repair_env(&mut env);
    {
        let mut r = common::craft::open_exclusive(&repo);
        r.delete(&MANIFEST_ID).unwrap();
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
    }
    let r = env.hoard(["check", &s(&repo)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("Repository manifest not found!"));
    let r = env.hoard(["check", "-v", "--repair", &s(&repo)]).ok();
    assert!(r.stderr.contains("Found archive one"), "{}", r.stderr);
    assert!(r.stderr.contains("Manifest rebuild complete."));
    assert_eq!(archives(&env, &repo), vec!["one", "two"]);
    env.borg(["check", &s(&repo)]).ok();
    env.hoard(["check", &s(&repo)]).ok();
}

#[test]
fn missing_chunk_is_replaced_then_healed() {
    let mut env = Env::new();
    let (repo, data) = borg_repo(&env, "none");
    repair_env(&mut env);
    let content = std::fs::read(data.join("small")).unwrap();
    let id: [u8; 32] = Sha256::digest(&content).into();
    let saved = {
        let mut r = common::craft::open_exclusive(&repo);
        let saved = r.get(&id).expect("the small file is one chunk");
        r.delete(&id).unwrap();
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
        saved
    };
    let r = env.hoard(["check", &s(&repo)]);
    assert_eq!(r.code, 1);
    let r = env.hoard(["check", "--repair", &s(&repo)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let msg = format!(
        "one: data/small: New missing file chunk detected (Byte 0-{}, Chunk {}). Replacing with all-zero chunk.",
        content.len(),
        hex::encode(id)
    );
    assert!(r.stderr.contains(&msg), "{}", r.stderr);
    env.borg(["check", &s(&repo)]).ok();
    env.hoard(["check", &s(&repo)]).ok();
    let health = env
        .borg([
            "list",
            "--format",
            "{health} {path}{NL}",
            &format!("{}::one", s(&repo)),
            "data/small",
        ])
        .ok()
        .out();
    assert_eq!(health.trim(), "broken data/small");
    let dest = env.path().join("x1");
    std::fs::create_dir_all(&dest).unwrap();
    let mut c = env.borg_cmd();
    c.current_dir(&dest)
        .args(["extract", &format!("{}::one", s(&repo)), "data/small"]);
    let _ = c.output().unwrap();
    assert_eq!(
        std::fs::read(dest.join("data/small")).unwrap(),
        vec![0u8; content.len()]
    );
    // Put the chunk back: the next repair heals the file.
    {
        let mut r = common::craft::open_exclusive(&repo);
        r.put(&id, &saved).unwrap();
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
    }
    let r = env.hoard(["check", "-v", "--repair", &s(&repo)]).ok();
    assert!(
        r.stderr.contains("Healed previously missing file chunk!"),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains("one: data/small: Completely healed previously damaged file!"));
    env.borg(["check", &s(&repo)]).ok();
    env.hoard(["check", &s(&repo)]).ok();
    let health = env
        .borg([
            "list",
            "--format",
            "{health} {path}{NL}",
            &format!("{}::one", s(&repo)),
            "data/small",
        ])
        .ok()
        .out();
    assert_eq!(health.trim(), "healthy data/small");
    let dest = env.path().join("x2");
    std::fs::create_dir_all(&dest).unwrap();
    let mut c = env.borg_cmd();
    c.current_dir(&dest)
        .args(["extract", &format!("{}::one", s(&repo))]);
    assert_eq!(c.output().unwrap().status.code(), Some(0));
    common::tree::assert_same_tree(&dest.join("data"), &data_without_added(&env, &data));
}

/// The data tree as archive `one` saw it (without the file added for `two`).
fn data_without_added(env: &Env, data: &Path) -> PathBuf {
    let copy = env.path().join("data-one");
    if !copy.exists() {
        common::copy_dir(data, &copy);
        std::fs::remove_file(copy.join("added")).unwrap();
    }
    copy
}

#[test]
fn orphans_are_reported_and_deleted() {
    let mut env = Env::new();
    let (repo, _) = borg_repo(&env, "none");
    repair_env(&mut env);
    let plain = b"an orphan nobody references".to_vec();
    let id: [u8; 32] = Sha256::digest(&plain).into();
    {
        let mut object = vec![0x02, 0x00, 0x00];
        object.extend_from_slice(&plain);
        let mut r = common::craft::open_exclusive(&repo);
        r.put(&id, &object).unwrap();
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
    }
    let r: Run = env.hoard(["check", &s(&repo)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("1 orphaned objects found!"),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains("Archive consistency check complete, problems found."));
    let b = env.borg(["check", &s(&repo)]);
    assert_eq!(b.code, 1);
    assert!(b.stderr.contains("1 orphaned objects found!"));
    env.hoard(["check", "--repair", &s(&repo)]).ok();
    {
        let mut r = common::craft::open_exclusive(&repo);
        assert!(!r.contains(&id).unwrap());
        r.close().unwrap();
    }
    env.hoard(["check", &s(&repo)]).ok();
    env.borg(["check", &s(&repo)]).ok();
}

/// `name → id` of every archive, from `borg list`.
fn archive_ids(env: &Env, repo: &Path) -> Vec<(String, [u8; 32])> {
    let out = env
        .borg(["list", "--format", "{name} {id}{NL}", &s(repo)])
        .ok()
        .out();
    out.lines()
        .map(|l| {
            let (n, id) = l.split_once(' ').unwrap();
            let id: [u8; 32] = hex::decode(id).unwrap().try_into().unwrap();
            (n.to_string(), id)
        })
        .collect()
}

/// Decodes a `none`-mode object (type byte, compression header, payload).
fn plain_of(object: &[u8]) -> Vec<u8> {
    assert_eq!(object[0], 0x02);
    hoard::compress::decompress(&object[1..], None).unwrap()
}

/// Stores `plain` as a `none`-mode object; returns its id.
fn put_plain(r: &mut LocalRepository, plain: &[u8]) -> [u8; 32] {
    let id: [u8; 32] = Sha256::digest(plain).into();
    let mut object = vec![0x02, 0x00, 0x00];
    object.extend_from_slice(plain);
    r.put(&id, &object).unwrap();
    id
}

fn without_tam(v: Value) -> Value {
    match v {
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .filter(|(k, _)| k.as_bytes() != Some(b"tam"))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn duplicate_names_get_suffixes_when_rebuilding() {
    let mut env = Env::new();
    let (repo, _) = borg_repo(&env, "none");
    repair_env(&mut env);
    let ids = archive_ids(&env, &repo);
    let two = ids.iter().find(|(n, _)| n == "two").unwrap().1;
    {
        let mut r = common::craft::open_exclusive(&repo);
        let plain = plain_of(&r.get(&two).unwrap());
        let (v, _) = hoard::msgpack::decode_one(&plain, Limits::UNLIMITED).unwrap();
        let mut v = without_tam(v);
        *v.get_mut("name").unwrap() = Value::raw("one");
        let packed = Key::plaintext().pack_and_authenticate_metadata(v, "archive");
        put_plain(&mut r, &packed);
        r.delete(&MANIFEST_ID).unwrap();
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
    }
    let r = env.hoard(["check", "-v", "--repair", &s(&repo)]).ok();
    assert!(
        r.stderr
            .contains("Duplicate archive name one, storing as one.1"),
        "{}",
        r.stderr
    );
    let mut names = archives(&env, &repo);
    names.sort();
    assert_eq!(names, vec!["one", "one.1", "two"]);
    env.borg(["check", &s(&repo)]).ok();
    env.hoard(["check", &s(&repo)]).ok();
}

/// An archive whose TAM does not verify is reported by check and kept by `check --repair`
/// (with its chunks: the orphan pass must not delete them), never deleted for an
/// authentication problem alone; `upgrade --archives-tam` then authenticates it again.
#[test]
fn archive_with_invalid_tam_is_kept_by_repair() {
    let mut env = Env::new();
    let (repo, _) = borg_repo(&env, "none");
    repair_env(&mut env);
    let ids = archive_ids(&env, &repo);
    let two = ids.iter().find(|(n, _)| n == "two").unwrap().1;
    let key = Key::plaintext();
    {
        let mut r = common::craft::open_exclusive(&repo);
        let plain = plain_of(&r.get(&two).unwrap());
        let (mut v, _) = hoard::msgpack::decode_one(&plain, Limits::UNLIMITED).unwrap();
        let hmac = v.get_mut("tam").unwrap().get_mut("hmac").unwrap();
        let mut bad = hmac.as_bytes().unwrap().to_vec();
        bad[0] ^= 1;
        *hmac = Value::raw(bad);
        let forged = put_plain(&mut r, &v.to_bytes());
        let manifest_plain = plain_of(&r.get(&MANIFEST_ID).unwrap());
        let mut m = Manifest::from_plaintext(&key, &manifest_plain, false).unwrap();
        m.archives.get_mut(b"two".as_slice()).unwrap().id = forged;
        let pt = m.to_plaintext(&key);
        let mut object = vec![0x02, 0x00, 0x00];
        object.extend_from_slice(&pt);
        r.put(&MANIFEST_ID, &object).unwrap();
        // the old archive object is now an orphan: check reports it either way
        r.delete(&two).unwrap();
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
    }
    let r = env.hoard(["check", &s(&repo)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Archive TAM authentication issue for archive two: "),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Archive two is kept"), "{}", r.stderr);
    assert!(!r.stderr.contains("removed"), "{}", r.stderr);
    // Repair keeps it (and its data), and says the problem is still there (exit 1).
    let r = env.hoard(["check", "--repair", &s(&repo)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let mut names = archives(&env, &repo);
    names.sort();
    assert_eq!(names, vec!["one", "two"]);
    env.borg(["check", "--repository-only", &s(&repo)]).ok();
    // The file only archive two holds is still extractable by borg 1.2.4 (which does not
    // check archive TAMs) after hoard's repair.
    let dest = env.path().join("x");
    std::fs::create_dir_all(&dest).unwrap();
    let mut c = env.borg_cmd();
    c.current_dir(&dest)
        .args(["extract", &format!("{}::two", s(&repo)), "data/added"]);
    assert_eq!(c.output().unwrap().status.code(), Some(0));
    assert_eq!(
        std::fs::read(dest.join("data/added")).unwrap(),
        common::tree::pseudo_random(5_000, 3)
    );
    // upgrade: check reports, the upgrade authenticates, afterwards everything is clean.
    let r = env.hoard(["upgrade", "--check-archives-tam", &s(&repo)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.out().contains("Archive TAM missing: two "), "{}", r.out());
    assert!(r.out().contains("Archive TAM present: one "), "{}", r.out());
    assert!(
        r.stderr.contains("Found 1 archives with TAM issues!"),
        "{}",
        r.stderr
    );
    let r = env.hoard(["upgrade", "--archives-tam", &s(&repo)]).ok();
    assert!(r.out().contains("Added archive TAM:   two "), "{}", r.out());
    assert!(
        r.out().contains("Fixed 1 archives with TAM issues!"),
        "{}",
        r.out()
    );
    env.hoard(["upgrade", "--check-archives-tam", &s(&repo)])
        .ok();
    env.hoard(["check", &s(&repo)]).ok();
    env.hoard(["list", &format!("{}::two", s(&repo))]).ok();
    env.borg(["check", &s(&repo)]).ok();
}

#[test]
fn missing_item_metadata_chunk_matches_borg() {
    if !borg_available() {
        return;
    }
    let mut env = Env::new();
    let (repo, _) = borg_repo(&env, "none");
    repair_env(&mut env);
    let ids = archive_ids(&env, &repo);
    let one = ids.iter().find(|(n, _)| n == "one").unwrap().1;
    {
        let mut r = common::craft::open_exclusive(&repo);
        let plain = plain_of(&r.get(&one).unwrap());
        let (v, _) = hoard::msgpack::decode_one(&plain, Limits::UNLIMITED).unwrap();
        let items = v.get("items").unwrap().as_array().unwrap();
        let first: [u8; 32] = items[0].as_bytes().unwrap().try_into().unwrap();
        r.delete(&first).unwrap();
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
    }
    let twin = env.path().join("twin");
    common::copy_dir(&repo, &twin);
    let h = env.hoard(["check", &s(&repo)]);
    let b = env.borg(["check", &s(&twin)]);
    assert_eq!((h.code, &h.stderr), (b.code, &b.stderr));
    assert!(h
        .stderr
        .contains("item metadata chunk missing [chunk: 000000_"));
    let h = env.hoard(["check", "-v", "--repair", &s(&repo)]);
    let b = env.borg(["check", "-v", "--repair", &s(&twin)]);
    assert_eq!(h.code, b.code);
    let tail = |t: &str| -> Vec<String> {
        t.lines()
            .skip_while(|l| !l.starts_with("Starting archive consistency check"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(tail(&h.stderr), tail(&b.stderr));
    env.borg(["check", &s(&repo)]).ok();
    env.hoard(["check", &s(&repo)]).ok();
    assert_eq!(archives(&env, &repo), archives(&env, &twin));
}

#[test]
fn verify_data_finds_tampered_objects_like_borg() {
    let mut env = Env::new();
    let (repo, data) = borg_repo(&env, "repokey");
    repair_env(&mut env);
    // Tamper with the largest object (a file chunk) behind a valid segment CRC.
    let victim = {
        let mut r = common::craft::open_exclusive(&repo);
        let ids = r.list(None, None).unwrap();
        let mut best: Option<([u8; 32], Vec<u8>)> = None;
        for id in ids {
            let obj = r.get(&id).unwrap();
            if best.as_ref().is_none_or(|(_, b)| obj.len() > b.len()) {
                best = Some((id, obj));
            }
        }
        let (id, mut obj) = best.unwrap();
        let n = obj.len();
        obj[n / 2] ^= 0x40;
        r.put(&id, &obj).unwrap();
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
        id
    };
    let twin = env.path().join("twin");
    common::copy_dir(&repo, &twin);
    env.hoard(["check", &s(&repo)]).ok();
    let h = env.hoard(["check", "--verify-data", &s(&repo)]);
    assert_eq!(h.code, 1);
    let msg = format!(
        "chunk {0}, integrity error: MAC Authentication failed",
        hex::encode(victim)
    );
    assert!(h.stderr.contains(&msg), "{}", h.stderr);
    assert!(
        h.stderr.contains("with 1 integrity errors."),
        "{}",
        h.stderr
    );
    if borg_available() {
        let b = env.borg(["check", "--verify-data", &s(&twin)]);
        assert_eq!((h.code, &h.stderr), (b.code, &b.stderr));
    }
    let r = env
        .hoard(["check", "--verify-data", "--repair", &s(&repo)])
        .ok();
    assert!(r
        .stderr
        .contains("Found defect chunks. They will be deleted now"));
    assert!(
        r.stderr.contains("New missing file chunk detected"),
        "{}",
        r.stderr
    );
    env.hoard(["check", "--verify-data", &s(&repo)]).ok();
    if borg_available() {
        env.borg(["check", "--verify-data", &s(&repo)]).ok();
        let dest = env.path().join("x");
        std::fs::create_dir_all(&dest).unwrap();
        let mut c = env.borg_cmd();
        c.current_dir(&dest)
            .args(["extract", &format!("{}::two", s(&repo))]);
        let out = c.output().unwrap();
        assert!(out.status.code().unwrap_or(2) <= 1);
        // Everything but the damaged file comes back intact.
        assert_eq!(
            std::fs::read(dest.join("data/small")).unwrap(),
            std::fs::read(data.join("small")).unwrap()
        );
        assert_eq!(
            std::fs::metadata(dest.join("data/big")).unwrap().len(),
            std::fs::metadata(data.join("big")).unwrap().len()
        );
    }
}

/// The real-world path of issue 15 item 2: hoard writes an archive, one of its chunks goes
/// missing, borg 1.2.4's `check --repair` patches the file and rewrites the archive but keeps
/// the old archive TAM, which no longer verifies. hoard's check must keep that archive (also
/// with --repair), and `upgrade --archives-tam` must make it readable again, after which borg
/// 1.4.5's check is clean.
#[test]
fn archive_rewritten_by_borg_124_repair_is_kept_and_reauthenticated() {
    if !borg_available() {
        return;
    }
    let mut env = Env::new();
    repair_env(&mut env);
    let data = env.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let lost = b"this file's only chunk goes missing\n".repeat(20);
    std::fs::write(data.join("lost"), &lost).unwrap();
    std::fs::write(data.join("kept"), common::tree::pseudo_random(50_000, 7)).unwrap();
    let repo = env.path().join("repo");
    env.hoard(["init", "-e", "none", &s(&repo)]).ok();
    env.hoard(["create", &format!("{}::arch", s(&repo)), "data"])
        .ok();
    {
        let id: [u8; 32] = Sha256::digest(&lost).into();
        let mut r = common::craft::open_exclusive(&repo);
        r.delete(&id).expect("the small file is one chunk");
        r.commit(false, 0.1).unwrap();
        r.close().unwrap();
    }
    let r = env.borg(["check", "--repair", &s(&repo)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // borg 1.2.4 kept the stale TAM: hoard (like borg 1.4) refuses to read the archive ...
    let r = env.hoard(["list", &format!("{}::arch", s(&repo))]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // ... and check reports it but never removes it, also with --repair.
    for args in [vec!["check"], vec!["check", "--repair"]] {
        let mut a = args.clone();
        let rs = s(&repo);
        a.push(&rs);
        let r = env.hoard(&a);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("Archive TAM authentication issue for archive arch: "),
            "{}",
            r.stderr
        );
        assert_eq!(archives(&env, &repo), vec!["arch"]);
    }
    let r = env.hoard(["upgrade", "--archives-tam", &s(&repo)]).ok();
    assert!(
        r.out().contains("Added archive TAM:   arch "),
        "{}",
        r.out()
    );
    let listed = env
        .hoard(["list", "--short", &format!("{}::arch", s(&repo))])
        .ok()
        .out();
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    assert_eq!(listed, ["data", "data/kept", "data/lost"]);
    env.hoard(["check", &s(&repo)]).ok();
    let dest = env.path().join("x");
    std::fs::create_dir_all(&dest).unwrap();
    let mut c = env.hoard_cmd();
    c.current_dir(&dest)
        .args(["extract", &format!("{}::arch", s(&repo))]);
    // 1: the patched file is extracted with its all-zero chunk and a warning, as borg does
    assert!(matches!(c.output().unwrap().status.code(), Some(0 | 1)));
    assert_eq!(
        std::fs::read(dest.join("data/kept")).unwrap(),
        common::tree::pseudo_random(50_000, 7)
    );
    assert_eq!(
        std::fs::read(dest.join("data/lost")).unwrap(),
        vec![0u8; lost.len()]
    );
    if let Some(b14) = common::borg14() {
        let r = env
            .command_for(b14.to_str().unwrap())
            .args(["check", &s(&repo)])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
}

/// Byte ranges `[start, end)` of live entries per segment file name, from the index.
fn live_ranges(repo: &Path) -> Vec<(String, u64, u64)> {
    let mut r = common::craft::open_exclusive(repo);
    let mut ids = Vec::new();
    let mut marker = None;
    loop {
        let batch = r.list(Some(1000), marker.as_ref()).expect("list");
        if batch.is_empty() {
            break;
        }
        marker = batch.last().copied();
        ids.extend(batch);
    }
    let mut out = Vec::new();
    for id in &ids {
        let (seg, off) = r.location(id).expect("location").expect("indexed");
        let path = repo
            .join("data")
            .join((seg / 10_000).to_string())
            .join(seg.to_string());
        let bytes = std::fs::read(&path).expect("segment");
        let off = off as usize;
        let size = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as u64;
        out.push((seg.to_string(), off as u64, off as u64 + size));
    }
    r.close().expect("close");
    assert!(out.len() > 5, "too few live objects");
    out
}

#[test]
fn corruption_injection_on_hoard_made_repositories() {
    let have_borg = common::borg_available();
    let mut env = Env::new();
    // A hoard-made repokey repository with two archives and small chunks.
    let data = env.path().join("data");
    std::fs::create_dir_all(data.join("sub")).expect("mkdir");
    std::fs::write(data.join("big"), tree::pseudo_random(120_000, 11)).expect("write");
    std::fs::write(data.join("sub/mid"), tree::pseudo_random(30_000, 12)).expect("write");
    std::fs::write(data.join("small"), b"small file\n".repeat(20)).expect("write");
    let pristine = env.init_repo("pristine", "repokey");
    let cp = "buzhash,10,14,12,4095";
    let create = |name: &str| {
        let out = env
            .hoard_cmd()
            .args([
                "create",
                "--chunker-params",
                cp,
                &archive(&pristine, name),
                "data",
            ])
            .output()
            .expect("hoard create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    create("one");
    std::fs::write(data.join("added"), tree::pseudo_random(5_000, 13)).expect("write");
    create("two");
    if have_borg {
        env.borg(["check", "--verify-data", arg(&pristine)]).ok();
    }
    let live = live_ranges(&pristine);
    env.set("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "YES");

    let trials = 100;
    let borg_every = 5;
    let mut rng = StdRng::seed_from_u64(0xF11B);
    let (mut live_hits, mut hoard_flagged, mut borg_trials, mut borg_flagged) = (0, 0, 0, 0);
    for t in 0..trials {
        let work = env.path().join(format!("t{t}"));
        std::fs::create_dir_all(&work).expect("mkdir");
        let repo = work.join("repo");
        common::copy_dir(&pristine, &repo);
        let (seg, off, what) = common::craft::flip_random_segment_byte(&repo, &mut rng);
        let hit_live = live
            .iter()
            .any(|(s, a, b)| *s == seg && (*a..*b).contains(&off));
        let with_borg = have_borg && t % borg_every == 0;
        let borg_copy = work.join("borg");
        if with_borg {
            common::copy_dir(&repo, &borg_copy);
        }
        let h = env.hoard(["check", "--verify-data", arg(&repo)]);
        assert!(h.code == 0 || h.code == 1, "trial {t} {what}: {}", h.stderr);
        assert!(
            !h.stderr.contains("panicked"),
            "trial {t} {what}: {}",
            h.stderr
        );
        if hit_live {
            live_hits += 1;
            assert_eq!(
                h.code, 1,
                "trial {t} {what}: a flip in live data was not reported\n{}",
                h.stderr
            );
        }
        if h.code != 0 {
            hoard_flagged += 1;
        }
        if with_borg {
            borg_trials += 1;
            let b = env.borg(["check", "--verify-data", arg(&borg_copy)]);
            if b.code != 0 {
                borg_flagged += 1;
                assert_ne!(
                    h.code, 0,
                    "trial {t} {what}: borg flagged it, hoard did not\nborg: {}\nhoard: {}",
                    b.stderr, h.stderr
                );
            }
        }
        let r = env.hoard(["check", "--repair", arg(&repo)]);
        assert_eq!(r.code, 0, "trial {t} {what}: repair failed: {}", r.stderr);
        let r = env.hoard(["check", arg(&repo)]);
        assert_eq!(
            r.code, 0,
            "trial {t} {what}: check after repair: {}",
            r.stderr
        );
        let remaining = lines(&env.hoard(["list", "--short", arg(&repo)]).ok().out());
        for name in &remaining {
            let dest = work.join(format!("h-{name}"));
            std::fs::create_dir_all(&dest).expect("mkdir");
            let out = env
                .hoard_cmd()
                .current_dir(&dest)
                .args(["extract", &archive(&repo, name)])
                .output()
                .expect("hoard extract");
            // 1: damaged files flagged (zero-filled replacement chunks).
            assert!(
                matches!(out.status.code(), Some(0) | Some(1)),
                "trial {t} {what}: hoard extract {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if with_borg {
            env.borg(["check", arg(&repo)]).ok();
            let listed = lines(
                &env.borg(["list", "--consider-checkpoints", "--short", arg(&repo)])
                    .ok()
                    .out(),
            );
            assert_eq!(listed, remaining, "trial {t} {what}");
            for name in &listed {
                let dest = work.join(format!("b-{name}"));
                std::fs::create_dir_all(&dest).expect("mkdir");
                let out = env
                    .borg_cmd()
                    .current_dir(&dest)
                    .args(["extract", &archive(&repo, name)])
                    .output()
                    .expect("borg extract");
                assert!(
                    matches!(out.status.code(), Some(0) | Some(1)),
                    "trial {t} {what}: borg extract {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        std::fs::remove_dir_all(&work).expect("rm");
    }
    println!(
        "corruption on hoard-made repositories: {trials} trials, {live_hits} hit live data, hoard flagged {hoard_flagged}; borg compared on {borg_trials}, borg flagged {borg_flagged}"
    );
    assert!(live_hits >= 20, "too few flips hit live data ({live_hits})");
}
