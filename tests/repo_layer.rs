//! Integration tests of the repository layer (`hoard::repo`): borg-made vectors, the write path
//! checked by real borg, crash behaviour, corruption/repair and locking.

use hoard::repo::hints::Hints;
use hoard::repo::index::{lookup_in_file, NsIndex};
use hoard::repo::integrity;
use hoard::repo::lock::{self, Lock, ProcessId};
use hoard::repo::segment::{LoggedIo, TAG_DELETE, TAG_PUT};
use hoard::repo::{
    CreateOptions, LocalRepository, ObjectId, OpenOptions, RepoError, Repository, MANIFEST_ID,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

/// The borg-made vector repositories (`shared/vectors/repos`, see `common::vectors_dir`).
fn vectors() -> PathBuf {
    common::vectors_dir().join("repos")
}
const BORG: &str = "/usr/bin/borg";

fn vector_names() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(vectors())
        .expect("vectors dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".tar.gz").map(|s| s.to_string()))
        .collect();
    v.sort();
    v
}

fn extract(name: &str, into: &Path) -> PathBuf {
    let st = Command::new("tar")
        .arg("xzf")
        .arg(vectors().join(format!("{name}.tar.gz")))
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar");
    assert!(st.success());
    into.join(name)
}

/// Runs `borg <args>` with a private base dir; `None` if borg is absent and HOARD_SKIP_BORG=1.
fn borg(base: &Path, args: &[&str]) -> Option<(i32, String)> {
    if !Path::new(BORG).exists() {
        if std::env::var("HOARD_SKIP_BORG").as_deref() == Ok("1") {
            return None;
        }
        panic!("borg is not installed at {BORG}; set HOARD_SKIP_BORG=1 to skip borg interop tests");
    }
    let out = Command::new(BORG)
        .args(args)
        .env("BORG_BASE_DIR", base)
        .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
        .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
        .env_remove("BORG_REPO")
        .output()
        .expect("run borg");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.code().unwrap_or(-1), text))
}

fn borg_check_ok(base: &Path, repo: &Path) {
    if let Some((rc, text)) = borg(
        base,
        &["check", "--repository-only", repo.to_str().unwrap()],
    ) {
        assert_eq!(rc, 0, "borg check --repository-only failed:\n{text}");
        assert!(
            !text.contains("rebuilt index:"),
            "borg reports index location mismatches:\n{text}"
        );
    }
}

/// Replays all committed segments with LoggedIo: key -> data of the last PUT.
fn segments_per_dir(repo: &Path) -> u32 {
    let cfg = fs::read_to_string(repo.join("config")).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix("segments_per_dir = "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn replay(repo: &Path) -> BTreeMap<ObjectId, Vec<u8>> {
    let io = LoggedIo::new(repo, u64::MAX, segments_per_dir(repo));
    let t = io.get_segments_transaction_id().unwrap().unwrap();
    let mut m = BTreeMap::new();
    for (seg, _) in io.segment_list(false).unwrap() {
        if seg > t || !io.segment_exists(seg) {
            continue;
        }
        for e in io.iter_objects(seg, 0, true, true).unwrap() {
            let e = e.unwrap();
            match e.tag {
                TAG_PUT => {
                    m.insert(e.key.unwrap(), e.data.unwrap());
                }
                TAG_DELETE => {
                    m.remove(&e.key.unwrap());
                }
                _ => {}
            }
        }
    }
    m
}

fn tid_of(repo: &Path) -> u32 {
    fs::read_dir(repo)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("index.")?
                .parse()
                .ok()
        })
        .max()
        .unwrap()
}

fn ex() -> OpenOptions {
    OpenOptions {
        exclusive: true,
        ..OpenOptions::default()
    }
}

fn key(i: u32) -> ObjectId {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k[4] = 0x5a;
    for (j, b) in k.iter_mut().enumerate().skip(5) {
        *b = (i as u8).wrapping_mul(j as u8);
    }
    k
}

fn data(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect()
}

#[test]
fn vectors_open_read_and_verify() {
    for name in vector_names() {
        let tmp = tempfile::tempdir().unwrap();
        let repo_path = extract(&name, tmp.path());
        let expected = replay(&repo_path);
        let t = tid_of(&repo_path);

        // integrity digests recompute exactly (same JSON text)
        let integ =
            integrity::decode_file(&fs::read(repo_path.join(format!("integrity.{t}"))).unwrap())
                .unwrap();
        let index_bytes = fs::read(repo_path.join(format!("index.{t}"))).unwrap();
        let hints_bytes = fs::read(repo_path.join(format!("hints.{t}"))).unwrap();
        match integ {
            integrity::IntegrityFile::V2 { hints, index } => {
                assert_eq!(
                    index.unwrap(),
                    integrity::to_json(&integrity::index_digests(
                        &format!("index.{t}"),
                        &index_bytes
                    )),
                    "{name}"
                );
                assert_eq!(
                    hints.unwrap(),
                    integrity::to_json(&integrity::hints_digests(
                        &format!("hints.{t}"),
                        &hints_bytes
                    )),
                    "{name}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        // hints parse
        let h = Hints::decode(&hints_bytes).unwrap();
        if name == "lifecycle-compacted" {
            assert_eq!(
                h.segments.keys().copied().collect::<Vec<_>>(),
                vec![2, 6, 10, 19, 21, 22]
            );
            assert_eq!(h.shadow_index.len(), 1);
            assert_eq!(h.compact.get(&2), Some(&599));
        }
        // the index equals the replayed key set, every key found by borg's probing
        let idx = NsIndex::read(&index_bytes).unwrap();
        assert_eq!(
            idx.sorted_keys().into_iter().collect::<BTreeSet<_>>(),
            expected.keys().copied().collect::<BTreeSet<_>>(),
            "{name}"
        );
        for k in expected.keys() {
            assert!(lookup_in_file(&index_bytes, k).is_some());
        }
        // our writer's version of the same index is read back identically
        assert_eq!(NsIndex::read(&idx.write()).unwrap(), idx);

        let mut r = LocalRepository::open(&repo_path, &OpenOptions::default()).unwrap();
        assert_eq!(r.len().unwrap(), expected.len(), "{name}");
        for (k, v) in &expected {
            assert_eq!(&r.get(k).unwrap(), v, "{name}");
        }
        let listed: BTreeSet<_> = r.list(None, None).unwrap().into_iter().collect();
        assert_eq!(listed.len(), expected.len());
        let scanned = r.scan(None, None).unwrap();
        assert_eq!(scanned.len(), expected.len());
        // paginated scan gives the same sequence
        let mut paged = Vec::new();
        let mut marker = None;
        loop {
            let part = r.scan(Some(7), marker.as_ref()).unwrap();
            if part.is_empty() {
                break;
            }
            marker = part.last().copied();
            paged.extend(part);
        }
        assert_eq!(paged, scanned);
        assert!(r.get_manifest().unwrap().is_some());
        drop(r);
        let mut r = LocalRepository::open(&repo_path, &ex()).unwrap();
        let report = r.check(false, 0).unwrap();
        assert!(report.ok && report.errors == 0, "{name}: {report:?}");
        drop(r);
        assert!(!repo_path.join("lock.exclusive").exists());
        assert!(!repo_path.join("lock.roster").exists());

        // replace borg's index by ours (replay) and have borg accept it
        for p in ["index", "hints", "integrity"] {
            fs::remove_file(repo_path.join(format!("{p}.{t}"))).unwrap();
        }
        let mut r = LocalRepository::open(&repo_path, &ex()).unwrap();
        assert_eq!(r.len().unwrap(), expected.len());
        drop(r);
        assert!(repo_path.join(format!("index.{t}")).exists());
        let mut r = LocalRepository::open(&repo_path, &OpenOptions::default()).unwrap();
        assert_eq!(r.len().unwrap(), expected.len());
        drop(r);
        borg_check_ok(tmp.path(), &repo_path);
    }
}

#[test]
fn write_path_accepted_by_borg() {
    let tmp = tempfile::tempdir().unwrap();
    let rp = tmp.path().join("repo");
    let mut model: BTreeMap<ObjectId, Vec<u8>> = BTreeMap::new();
    {
        let mut r = LocalRepository::create_and_open(
            &rp,
            &CreateOptions {
                max_segment_size: Some(20_000),
                segments_per_dir: Some(4),
                ..Default::default()
            },
            &ex(),
        )
        .unwrap();
        for i in 0..60 {
            let d = data(i, 100 + (i as usize * 37) % 3000);
            r.put(&key(i), &d).unwrap();
            model.insert(key(i), d);
        }
        r.put(&MANIFEST_ID, b"manifest-1").unwrap();
        model.insert(MANIFEST_ID, b"manifest-1".to_vec());
        r.commit(false, 0.1).unwrap();
        // transaction 2: deletes, overwrites, new
        for i in (0..60).step_by(3) {
            r.delete(&key(i)).unwrap();
            model.remove(&key(i));
        }
        for i in (1..60).step_by(5) {
            let d = data(i + 1000, 50);
            r.put(&key(i), &d).unwrap();
            model.insert(key(i), d);
        }
        assert!(matches!(
            r.delete(&key(0)),
            Err(RepoError::ObjectNotFound(..))
        ));
        r.delete(&MANIFEST_ID).unwrap();
        r.put(&MANIFEST_ID, b"manifest-2").unwrap();
        model.insert(MANIFEST_ID, b"manifest-2".to_vec());
        r.commit(true, 0.1).unwrap();
        // reading inside the next transaction sees uncommitted writes
        r.put(&key(500), b"five hundred").unwrap();
        assert_eq!(r.get(&key(500)).unwrap(), b"five hundred");
        model.insert(key(500), b"five hundred".to_vec());
        r.commit(false, 0.1).unwrap();
        assert!(
            rp.join("data/1").is_dir(),
            "segments_per_dir = 4 creates data/1"
        );
    }
    let readme = fs::read_to_string(rp.join("README")).unwrap();
    assert_eq!(readme.len(), 73);
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    for (k, v) in &model {
        assert_eq!(&r.get(k).unwrap(), v);
    }
    drop(r);
    assert_eq!(replay(&rp), model);
    let t = tid_of(&rp);
    let h = Hints::decode(&fs::read(rp.join(format!("hints.{t}"))).unwrap()).unwrap();
    assert!(!h.shadow_index.is_empty(), "deletes record shadows");
    borg_check_ok(tmp.path(), &rp);
    // borg replays when our index is gone, and still agrees
    fs::remove_file(rp.join(format!("index.{t}"))).unwrap();
    borg_check_ok(tmp.path(), &rp);
    // and we read what borg rebuilt
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    drop(r);
    // config / key / nonce
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    assert_eq!(r.load_key().unwrap(), b"");
    let blob = "a".repeat(70) + "\n" + &"b".repeat(30);
    r.save_key(blob.as_bytes()).unwrap();
    assert_eq!(r.get_free_nonce().unwrap(), None);
    r.commit_nonce_reservation(0x1000001c, None).unwrap();
    assert!(matches!(
        r.commit_nonce_reservation(5, None),
        Err(RepoError::NonceMismatch)
    ));
    assert_eq!(r.get_free_nonce().unwrap(), Some(0x1000001c));
    assert_eq!(
        fs::read_to_string(rp.join("nonce")).unwrap(),
        "000000001000001c"
    );
    let id = r.id();
    drop(r);
    let cfg = fs::read_to_string(rp.join("config")).unwrap();
    assert!(cfg.contains("\n\tbbbb"), "{cfg}");
    assert!(cfg.starts_with("[repository]\nversion = 1\nsegments_per_dir = 4\n"));
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.load_key().unwrap(), blob.as_bytes());
    assert_eq!(r.id(), id);
    assert!(matches!(
        r.get_free_nonce(),
        Err(RepoError::NeedsExclusiveLock)
    ));
    drop(r);
    borg_check_ok(tmp.path(), &rp);
}

#[test]
fn create_and_open_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let rp = tmp.path().join("r");
    let e = LocalRepository::open(&rp, &OpenOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        format!("Repository {} does not exist.", rp.display())
    );
    fs::create_dir(&rp).unwrap();
    let e = LocalRepository::open(&rp, &OpenOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{} is not a valid repository. Check repo config.",
            rp.display()
        )
    );
    LocalRepository::create(&rp, &CreateOptions::default()).unwrap();
    let mut names: Vec<_> = fs::read_dir(&rp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["README", "config", "data"]);
    assert!(matches!(
        LocalRepository::create(&rp, &CreateOptions::default()),
        Err(RepoError::AlreadyExists(_))
    ));
    assert!(matches!(
        LocalRepository::create(&rp.join("data/x"), &CreateOptions::default()),
        Err(RepoError::AlreadyExists(_))
    ));
    let other = tmp.path().join("nonempty");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("f"), b"x").unwrap();
    assert!(matches!(
        LocalRepository::create(&other, &CreateOptions::default()),
        Err(RepoError::PathAlreadyExists(_))
    ));
    // empty repo: len 0, nothing committed yet
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), 0);
    assert!(r.get_manifest().unwrap().is_none());
    drop(r);
    // version / attic
    let cfg = fs::read_to_string(rp.join("config")).unwrap();
    fs::write(rp.join("config"), cfg.replace("version = 1", "version = 2")).unwrap();
    let e = LocalRepository::open(&rp, &OpenOptions::default())
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("repository version 2 is not supported"),
        "{e}"
    );
    fs::write(rp.join("config"), &cfg).unwrap();
    fs::create_dir_all(rp.join("data/0")).unwrap();
    fs::write(rp.join("data/0/0"), b"ATTICSEG").unwrap();
    let e = LocalRepository::open(&rp, &OpenOptions::default())
        .err()
        .unwrap();
    assert!(matches!(e, RepoError::AtticRepository(_)), "{e}");
    fs::remove_file(rp.join("data/0/0")).unwrap();
    fs::write(rp.join("config"), "garbage").unwrap();
    assert!(matches!(
        LocalRepository::open(&rp, &OpenOptions::default()),
        Err(RepoError::InvalidRepositoryConfig(..))
    ));
    fs::write(rp.join("config"), &cfg).unwrap();
    // destroy
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.destroy().unwrap();
    assert!(!rp.exists());
}

fn small_repo(tmp: &Path) -> (PathBuf, BTreeMap<ObjectId, Vec<u8>>) {
    let rp = tmp.join("repo");
    let mut model = BTreeMap::new();
    let mut r = LocalRepository::create_and_open(&rp, &CreateOptions::default(), &ex()).unwrap();
    for i in 0..20 {
        let d = data(i, 500);
        r.put(&key(i), &d).unwrap();
        model.insert(key(i), d);
    }
    r.commit(false, 0.1).unwrap();
    (rp, model)
}

#[test]
fn crash_uncommitted_data_is_ignored_and_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let (rp, model) = small_repo(tmp.path());
    {
        let mut r = LocalRepository::open(&rp, &ex()).unwrap();
        r.put(&key(1000), b"never committed").unwrap();
        r.delete(&key(1)).unwrap();
        // "crash": drop without commit
    }
    let io = LoggedIo::new(&rp, u64::MAX, 1000);
    let latest = io.get_latest_segment().unwrap().unwrap();
    let t = io.get_segments_transaction_id().unwrap().unwrap();
    assert!(latest > t);
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    assert!(!r.contains(&key(1000)).unwrap());
    drop(r);
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.put(&key(2000), b"x").unwrap();
    assert!(r
        .take_messages()
        .iter()
        .any(|m| m.starts_with("Cleaned up 1 uncommitted segment files")));
    r.commit(false, 0.1).unwrap();
    drop(r);
    borg_check_ok(tmp.path(), &rp);
}

#[test]
fn crash_truncated_last_segment_missing_and_stale_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (rp, model1) = small_repo(tmp.path());
    let t1 = tid_of(&rp);
    // keep transaction 1's index files for the stale-index case
    let saved: Vec<(String, Vec<u8>)> = ["index", "hints", "integrity"]
        .iter()
        .map(|p| {
            let n = format!("{p}.{t1}");
            let b = fs::read(rp.join(&n)).unwrap();
            (n, b)
        })
        .collect();
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.put(&key(100), b"second").unwrap();
    r.delete(&key(2)).unwrap();
    r.commit(false, 0.1).unwrap();
    drop(r);
    let t2 = tid_of(&rp);
    let mut model2 = model1.clone();
    model2.insert(key(100), b"second".to_vec());
    model2.remove(&key(2));

    // stale index: the old transaction's files are back, the new ones are gone
    for p in ["index", "hints", "integrity"] {
        fs::remove_file(rp.join(format!("{p}.{t2}"))).unwrap();
    }
    for (n, b) in &saved {
        fs::write(rp.join(n), b).unwrap();
    }
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model2.len());
    assert_eq!(r.get(&key(100)).unwrap(), b"second");
    drop(r);
    assert_eq!(tid_of(&rp), t2);
    assert!(!rp.join(format!("index.{t1}")).exists());

    // missing index: replay from scratch
    fs::remove_file(rp.join(format!("index.{t2}"))).unwrap();
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model2.len());
    drop(r);
    borg_check_ok(tmp.path(), &rp);

    // truncated last (commit) segment: transaction 2 is lost, transaction 1 is what remains
    let io = LoggedIo::new(&rp, u64::MAX, 1000);
    let last = io.get_latest_segment().unwrap().unwrap();
    let f = io.segment_filename(last);
    let len = fs::metadata(&f).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model1.len());
    assert!(r.contains(&key(2)).unwrap());
    drop(r);
    // corrupt index (integrity mismatch) -> rebuilt
    let ip = rp.join(format!("index.{}", tid_of(&rp)));
    let mut b = fs::read(&ip).unwrap();
    let n = b.len();
    b[n - 1] ^= 1;
    fs::write(&ip, &b).unwrap();
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model1.len());
    assert!(r
        .take_messages()
        .iter()
        .any(|m| m.contains("index missing or corrupted")));
    drop(r);

    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.put(&key(300), b"after crash").unwrap();
    r.commit(false, 0.1).unwrap();
    drop(r);
    borg_check_ok(tmp.path(), &rp);
}

fn damage_and_repair(flip: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let (rp, _model) = small_repo(tmp.path());
    let io = LoggedIo::new(&rp, u64::MAX, 1000);
    let f = io.segment_filename(0);
    let mut b = fs::read(&f).unwrap();
    if flip {
        b[8 + 541 + 100] ^= 0x55; // inside the data of the 2nd entry
        fs::write(&f, &b).unwrap();
    } else {
        b.truncate(b.len() - 200); // cut the last PUT
        fs::write(&f, &b).unwrap();
    }
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    let rep = r.check(false, 0).unwrap();
    assert!(!rep.ok && rep.errors > 0, "{rep:?}");
    let needle = if flip {
        "Segment entry checksum mismatch [segment 0, offset 549]"
    } else {
        "Segment entry data short read [segment 0"
    };
    assert!(rep.messages.iter().any(|m| m.contains(needle)), "{rep:?}");
    assert!(
        rep.messages
            .iter()
            .any(|m| m == "Index object count mismatch."),
        "{rep:?}"
    );
    drop(r);
    if let Some((rc, _)) = borg(
        tmp.path(),
        &["check", "--repository-only", rp.to_str().unwrap()],
    ) {
        assert_ne!(rc, 0, "borg also sees the damage");
    }
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    let rep = r.check(true, 0).unwrap();
    assert!(rep.ok, "{rep:?}");
    assert!(rep
        .messages
        .last()
        .unwrap()
        .contains("errors found and repaired"));
    let rep = r.check(false, 0).unwrap();
    assert!(rep.ok && rep.errors == 0, "{rep:?}");
    assert_eq!(r.len().unwrap(), 19);
    drop(r);
    borg_check_ok(tmp.path(), &rp);
}

#[test]
fn corruption_flipped_byte_check_and_repair() {
    damage_and_repair(true);
}

#[test]
fn corruption_truncated_segment_check_and_repair() {
    damage_and_repair(false);
}

#[test]
fn append_only_and_quota() {
    let tmp = tempfile::tempdir().unwrap();
    let rp = tmp.path().join("ao");
    let mut r = LocalRepository::create_and_open(
        &rp,
        &CreateOptions {
            append_only: true,
            storage_quota: Some(3000),
            ..Default::default()
        },
        &ex(),
    )
    .unwrap();
    r.put(&key(1), &data(1, 1000)).unwrap();
    r.commit(false, 0.1).unwrap();
    r.delete(&key(1)).unwrap();
    r.commit(false, 0.1).unwrap();
    let tx = fs::read_to_string(rp.join("transactions")).unwrap();
    let lines: Vec<_> = tx.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("transaction 1, UTC time ") && lines[0].len() == 50,
        "{tx}"
    );
    assert!(matches!(r.check(true, 0), Err(RepoError::AppendOnly(_))));
    assert!(matches!(r.destroy(), Err(RepoError::AppendOnly(_))));
    r.put(&key(2), &data(2, 1000)).unwrap();
    let e = r.put(&key(3), &data(3, 1000)).unwrap_err();
    assert!(matches!(e, RepoError::StorageQuotaExceeded(..)), "{e}");
    assert!(
        e.to_string()
            .starts_with("The storage quota (3.00 kB) has been exceeded"),
        "{e}"
    );
    assert!(matches!(
        r.commit(false, 0.1),
        Err(RepoError::StorageQuotaExceeded(..))
    ));
    assert!(!r.contains(&key(2)).unwrap());
    drop(r);
    borg_check_ok(tmp.path(), &rp);
}

#[test]
fn insufficient_free_space_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (rp, model) = small_repo(tmp.path());
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.config_set("additional_free_space", Some("500P")).unwrap();
    drop(r);
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.put(&key(999), b"doomed").unwrap();
    let e = r.commit(false, 0.1).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "Insufficient free space to complete transaction (required: 500.00 PB, available: "
        ),
        "{e}"
    );
    assert!(!r.contains(&key(999)).unwrap());
    assert_eq!(r.len().unwrap(), model.len());
    r.config_set("additional_free_space", Some("0")).unwrap();
    drop(r);
    borg_check_ok(tmp.path(), &rp);
}

#[test]
fn locking_between_hoard_and_borg() {
    let tmp = tempfile::tempdir().unwrap();
    let (rp, _) = small_repo(tmp.path());
    let base = rp.join("lock");
    // another holder (different host id) keeps the exclusive lock: open times out after lock_wait
    let mut other = Lock::with_id(
        &base,
        true,
        Some(1.0),
        ProcessId {
            host: "elsewhere@1".into(),
            pid: 1,
            thread: 0,
        },
        lock::host_id(),
    );
    other.acquire().unwrap();
    let t = Instant::now();
    let e = LocalRepository::open(
        &rp,
        &OpenOptions {
            exclusive: true,
            lock_wait: Some(0.5),
            ..OpenOptions::default()
        },
    )
    .err()
    .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        e.to_string(),
        format!(
            "Failed to create/acquire the lock {}/lock.exclusive (timeout).",
            rp.display()
        )
    );
    other.release().unwrap();
    // shared + shared
    let a = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    let b = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    drop(a);
    drop(b);
    // stale lock of a dead pid with our host id is removed
    let dead = ProcessId {
        host: lock::host_id().to_string(),
        pid: 0x7fff_fff0,
        thread: 0,
    };
    fs::create_dir(rp.join("lock.exclusive")).unwrap();
    fs::write(rp.join("lock.exclusive").join(dead.unique_name()), b"").unwrap();
    fs::write(
        rp.join("lock.roster"),
        lock::roster_json(&vec![("exclusive".to_string(), vec![dead.clone()])]),
    )
    .unwrap();
    let r = LocalRepository::open(&rp, &ex()).unwrap();
    let roster = fs::read_to_string(rp.join("lock.roster")).unwrap();
    assert_eq!(
        roster,
        format!(
            "{{\"exclusive\": [[{}, {}, 0]]}}",
            serde_json::Value::String(lock::host_id().to_string()),
            std::process::id()
        )
    );
    // borg cannot get the lock while we hold it
    if let Some((rc, text)) = borg(
        tmp.path(),
        &[
            "check",
            "--repository-only",
            "--lock-wait",
            "1",
            rp.to_str().unwrap(),
        ],
    ) {
        assert_eq!(rc, 2, "{text}");
        assert!(text.contains("Failed to create/acquire the lock"), "{text}");
    }
    drop(r);
    // borg holds the lock: we time out
    if Path::new(BORG).exists() {
        // borg's own Lock class (with-lock would need a real manifest)
        let script = format!(
            "from borg.locking import Lock; import time; l = Lock({:?}, exclusive=True, timeout=5).acquire(); time.sleep(4); l.release()",
            base.to_str().unwrap()
        );
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", &script])
            .current_dir("/")
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !rp.join("lock.roster").exists() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let e = LocalRepository::open(
            &rp,
            &OpenOptions {
                lock_wait: Some(1.0),
                ..OpenOptions::default()
            },
        )
        .err();
        assert!(matches!(e, Some(RepoError::Lock(_))), "{e:?}");
        child.wait().unwrap();
        // borg sees our stale lock (same host id) as stale and removes it
        fs::create_dir(rp.join("lock.exclusive")).unwrap();
        fs::write(rp.join("lock.exclusive").join(dead.unique_name()), b"").unwrap();
        borg_check_ok(tmp.path(), &rp);
        // and borg's host id is ours
        let out = Command::new("/usr/bin/python3")
            .args(["-c", "from borg.platform import hostid; print(hostid)"])
            .current_dir("/")
            .output()
            .unwrap();
        if std::env::var("BORG_HOST_ID").is_err() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), lock::host_id());
        }
    }
    // break_lock
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    r.break_lock().unwrap();
    assert!(!rp.join("lock.roster").exists());
}

fn segment_count(rp: &Path) -> usize {
    LoggedIo::new(rp, u64::MAX, segments_per_dir(rp))
        .segment_list(false)
        .unwrap()
        .len()
}

#[test]
fn compaction_keeps_contents_and_borg_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let rp = tmp.path().join("repo");
    let mut model: BTreeMap<ObjectId, Vec<u8>> = BTreeMap::new();
    let mut r = LocalRepository::create_and_open(
        &rp,
        &CreateOptions {
            max_segment_size: Some(5000),
            ..Default::default()
        },
        &ex(),
    )
    .unwrap();
    for i in 0..80 {
        let d = data(i, 700);
        r.put(&key(i), &d).unwrap();
        model.insert(key(i), d);
    }
    r.put(&MANIFEST_ID, b"m1").unwrap();
    model.insert(MANIFEST_ID, b"m1".to_vec());
    r.commit(false, 0.1).unwrap();
    for i in 0..80 {
        if i % 3 != 0 {
            r.delete(&key(i)).unwrap();
            model.remove(&key(i));
        }
    }
    r.put(&key(3), b"overwritten").unwrap();
    model.insert(key(3), b"overwritten".to_vec());
    r.delete(&MANIFEST_ID).unwrap();
    r.put(&MANIFEST_ID, b"m2").unwrap();
    model.insert(MANIFEST_ID, b"m2".to_vec());
    r.commit(false, 0.1).unwrap();
    drop(r);
    let before = segment_count(&rp);
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.commit(true, 0.1).unwrap();
    drop(r);
    let after = segment_count(&rp);
    assert!(
        after < before,
        "compaction removed segments ({before} -> {after})"
    );
    assert_eq!(replay(&rp), model);
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    for (k, v) in &model {
        assert_eq!(&r.get(k).unwrap(), v);
    }
    drop(r);
    borg_check_ok(tmp.path(), &rp);
    // replay from scratch gives the same (no resurrected objects)
    let t = tid_of(&rp);
    fs::remove_file(rp.join(format!("index.{t}"))).unwrap();
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    drop(r);
    // borg compacts what we wrote, we read and compact again
    if let Some((rc, text)) = borg(
        tmp.path(),
        &["compact", "--threshold", "0", rp.to_str().unwrap()],
    ) {
        assert_eq!(rc, 0, "{text}");
    }
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    r.delete(&key(3)).unwrap();
    model.remove(&key(3));
    r.commit(true, 0.0).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    drop(r);
    assert_eq!(replay(&rp), model);
    borg_check_ok(tmp.path(), &rp);
}

#[test]
fn compaction_of_borg_vector() {
    let tmp = tempfile::tempdir().unwrap();
    let rp = extract("lifecycle-compacted", tmp.path());
    let mut model = replay(&rp);
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    let victims: Vec<ObjectId> = model
        .keys()
        .filter(|k| **k != MANIFEST_ID)
        .take(5)
        .copied()
        .collect();
    for k in &victims {
        r.delete(k).unwrap();
        model.remove(k);
    }
    r.commit(true, 0.0).unwrap();
    drop(r);
    assert_eq!(replay(&rp), model);
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    drop(r);
    borg_check_ok(tmp.path(), &rp);
}

#[test]
fn hints_missing_on_write_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let (rp, model) = small_repo(tmp.path());
    let t = tid_of(&rp);
    fs::remove_file(rp.join(format!("hints.{t}"))).unwrap();
    // readers do not need hints
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert_eq!(r.len().unwrap(), model.len());
    drop(r);
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.put(&key(777), b"x").unwrap();
    assert!(r
        .take_messages()
        .iter()
        .any(|m| m.starts_with("Repository hints file missing or corrupted")));
    r.commit(false, 0.1).unwrap();
    assert_eq!(r.len().unwrap(), model.len() + 1);
    // a writer needs the exclusive lock
    drop(r);
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    assert!(matches!(
        r.put(&key(778), b"y"),
        Err(RepoError::NeedsExclusiveLock)
    ));
    drop(r);
    borg_check_ok(tmp.path(), &rp);
}

#[test]
fn partial_check_and_file_modes() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (rp, _) = small_repo(tmp.path());
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    let rep = r.check(false, 3600).unwrap();
    assert!(rep.partial && rep.ok, "{rep:?}");
    assert_eq!(
        rep.messages.last().unwrap(),
        "Finished partial repository check, no problems found."
    );
    assert!(r.config_get("last_segment_checked").is_none());
    drop(r);
    for f in [
        "config",
        "README",
        "index.1",
        "hints.1",
        "integrity.1",
        "data/0/0",
    ] {
        let mode = fs::metadata(rp.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

/// Deterministic pseudo-random bytes (xorshift) for robustness tests.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn corrupt_files_never_panic() {
    use hoard::repo::config::Config;
    for seed in 1..300u64 {
        let len = (seed as usize * 37) % 400;
        let mut b = noise(seed, len);
        let _ = NsIndex::read(&b);
        let _ = Hints::decode(&b);
        let _ = integrity::decode_file(&b);
        let _ = Config::parse(&String::from_utf8_lossy(&b));
        // plausible headers with garbage bodies
        if b.len() >= 18 {
            b[..8].copy_from_slice(b"BORG_IDX");
            b[16] = 32;
            b[17] = 8;
            let _ = NsIndex::read(&b);
        }
    }
    // garbage segment, index, hints and integrity files in a repository
    let tmp = tempfile::tempdir().unwrap();
    let (rp, _) = small_repo(tmp.path());
    for seed in 1..12u64 {
        let work = tmp.path().join(format!("w{seed}"));
        let st = Command::new("cp")
            .arg("-a")
            .arg(&rp)
            .arg(&work)
            .status()
            .unwrap();
        assert!(st.success());
        let victim = match seed % 4 {
            0 => "index.1",
            1 => "hints.1",
            2 => "integrity.1",
            _ => "data/0/0",
        };
        let p = work.join(victim);
        let mut b = fs::read(&p).unwrap();
        let n = noise(seed, 64);
        let at = (seed as usize * 131) % b.len().saturating_sub(64).max(1);
        for (i, x) in n.iter().enumerate() {
            if at + i < b.len() {
                b[at + i] ^= x | 1;
            }
        }
        fs::write(&p, &b).unwrap();
        if let Ok(mut r) = LocalRepository::open(&work, &ex()) {
            let _ = r.len();
            let ids = r.list(None, None).unwrap_or_default();
            for id in ids {
                let _ = r.get(&id);
            }
            let _ = r
                .put(&key(9999), b"after damage")
                .and_then(|_| r.commit(false, 0.1));
            let _ = r.check(false, 0);
            let rep = r.check(true, 0).unwrap();
            assert!(rep.ok);
            let rep = r.check(false, 0).unwrap();
            assert!(rep.ok && rep.errors == 0, "{victim}: {rep:?}");
            drop(r);
            borg_check_ok(tmp.path(), &work);
        }
    }
}

#[test]
fn check_needed_rollback_and_parent_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (rp, model) = small_repo(tmp.path());
    // rollback forgets the transaction
    let mut r = LocalRepository::open(&rp, &ex()).unwrap();
    r.put(&key(4242), b"rolled back").unwrap();
    r.delete(&key(0)).unwrap();
    r.rollback().unwrap();
    assert!(!r.contains(&key(4242)).unwrap());
    assert!(r.contains(&key(0)).unwrap());
    assert_eq!(r.len().unwrap(), model.len());
    drop(r);
    // an index without any committed segment: CheckNeeded
    for (_, p) in LoggedIo::new(&rp, u64::MAX, 1000)
        .segment_list(false)
        .unwrap()
    {
        fs::remove_file(p).unwrap();
    }
    let mut r = LocalRepository::open(&rp, &OpenOptions::default()).unwrap();
    let e = r.len().unwrap_err();
    assert!(matches!(e, RepoError::CheckNeeded(_)), "{e}");
    assert!(e
        .to_string()
        .starts_with("Inconsistency detected. Please run \"borg check "));
    drop(r);
    let deep = tmp.path().join("no/such/parent/repo");
    assert!(matches!(
        LocalRepository::create(&deep, &CreateOptions::default()),
        Err(RepoError::ParentPathDoesNotExist(_))
    ));
    LocalRepository::create(
        &deep,
        &CreateOptions {
            make_parent_dirs: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(deep.join("config").exists());
}
