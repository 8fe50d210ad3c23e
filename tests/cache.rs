//! The persistent client cache against borg 1.2: each program uses the cache the other wrote,
//! resyncs after the other changed the repository, and survives corrupt cache files.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{borg_available, snapshot_dir, Env};
use hoard::archive::{KeyedRepository, Manifest, MANIFEST_ID};
use hoard::cache::{Cache, CacheOptions, FileStat, IndexStats};
use hoard::compress::Compression;
use hoard::crypto::Key;
use hoard::repo::index::ChunkIndex;
use hoard::repo::{LocalRepository, OpenOptions};

/// A repository, a data tree and a second cache dir for "the other client".
struct Setup {
    env: Env,
    repo: String,
}

impl Setup {
    fn new(encryption: &str) -> Setup {
        let env = Env::new();
        let data = env.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("small"), b"hello cache\n").unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        std::fs::write(data.join("big"), &big).unwrap();
        let repo = env.path().join("repo").to_string_lossy().into_owned();
        env.borg(["init", "-e", encryption, &repo]).ok();
        Setup { env, repo }
    }

    fn arch(&self, name: &str) -> String {
        format!("{}::{name}", self.repo)
    }

    /// borg with its own cache dir: another client changing the repository.
    fn other_borg(&self, args: &[&str]) -> common::Run {
        let mut c = self.env.borg_cmd();
        c.env("BORG_CACHE_DIR", self.env.path().join("other-cache"));
        c.args(args);
        let out = c.output().unwrap();
        common::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
        .ok()
    }

    fn repo_id(&self) -> String {
        let cfg = std::fs::read_to_string(Path::new(&self.repo).join("config")).unwrap();
        cfg.lines()
            .find_map(|l| l.strip_prefix("id = "))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The cache dir both programs use by default in this environment.
    fn cache_dir(&self) -> PathBuf {
        self.env.base().join(".cache/borg").join(self.repo_id())
    }
}

fn cache_stats(json: &[u8]) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(json).expect("info --json");
    v["cache"]["stats"].clone()
}

fn hoard_stats(s: &Setup) -> serde_json::Value {
    cache_stats(&s.env.hoard(["info", "--json", &s.repo]).ok().stdout)
}

fn borg_stats_other(s: &Setup) -> serde_json::Value {
    cache_stats(&s.other_borg(&["info", "--json", &s.repo]).stdout)
}

fn compact_indexes(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join("chunks.archive.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn config_value(cache: &Path, key: &str) -> String {
    let cfg = std::fs::read_to_string(cache.join("config")).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or("")
        .to_string()
}

#[test]
fn hoard_uses_the_cache_borg_wrote_without_resync() {
    if !borg_available() {
        return;
    }
    let s = Setup::new("repokey");
    s.env.borg(["create", &s.arch("a1"), "data"]).ok();
    s.env.borg(["create", &s.arch("a2"), "data"]).ok();
    let cache = s.cache_dir();
    let before = snapshot_dir(&cache);
    assert!(
        compact_indexes(&cache).is_empty(),
        "borg create writes no archive index"
    );
    let borg = cache_stats(&s.env.borg(["info", "--json", &s.repo]).ok().stdout);
    let hoard = hoard_stats(&s);
    assert_eq!(hoard, borg);
    // A resync would have written per-archive indexes and rewritten chunks and config.
    assert_eq!(
        snapshot_dir(&cache),
        before,
        "hoard must not touch an in-sync cache"
    );
}

#[test]
fn borg_uses_the_cache_hoard_wrote() {
    if !borg_available() {
        return;
    }
    let s = Setup::new("repokey");
    s.other_borg(&["create", &s.arch("a1"), "data"]);
    s.other_borg(&["create", &s.arch("a2"), "data"]);
    let cache = s.cache_dir();
    // `borg init` made a cache; start without one.
    std::fs::remove_dir_all(&cache).unwrap();
    let hoard = hoard_stats(&s);
    assert_eq!(
        compact_indexes(&cache).len(),
        4,
        "two .compact + two .integrity"
    );
    for f in ["README", "config", "chunks", "files", "pre12-meta"] {
        assert!(cache.join(f).exists(), "{f} missing");
    }
    assert!(s.env.base().join(".cache/borg/CACHEDIR.TAG").exists());
    assert!(!cache.join("txn.active").exists());
    assert_eq!(
        std::fs::read_to_string(cache.join("pre12-meta")).unwrap(),
        "{}"
    );
    // Same chunk index as borg's own.
    let ours = ChunkIndex::read(&std::fs::read(cache.join("chunks")).unwrap()).unwrap();
    let other = s
        .env
        .path()
        .join("other-cache")
        .join(s.repo_id())
        .join("chunks");
    let theirs = ChunkIndex::read(&std::fs::read(other).unwrap()).unwrap();
    assert_eq!(ours, theirs);

    let run = s.env.borg(["info", "--info", "--json", &s.repo]).ok();
    assert!(
        !run.stderr.contains("Synchronizing chunks cache"),
        "borg resynced: {}",
        run.stderr
    );
    assert_eq!(cache_stats(&run.stdout), hoard);

    // borg writes into it, then hoard reads borg's update without resync.
    let run = s.env.borg(["create", "--info", &s.arch("a3"), "data"]).ok();
    assert!(!run.stderr.contains("Synchronizing"), "{}", run.stderr);
    assert!(!run.stderr.contains("files cache"), "{}", run.stderr);
    let before = snapshot_dir(&cache);
    assert_eq!(hoard_stats(&s), borg_stats_other(&s));
    assert_eq!(snapshot_dir(&cache), before);
}

#[test]
fn hoard_resyncs_after_borg_changed_the_repository() {
    if !borg_available() {
        return;
    }
    let s = Setup::new("repokey");
    let cache = s.cache_dir();
    s.other_borg(&["create", &s.arch("a1"), "data"]);
    assert_eq!(hoard_stats(&s), borg_stats_other(&s));
    let after_first = compact_indexes(&cache);
    assert_eq!(after_first.len(), 2);

    std::fs::write(s.env.path().join("data/new"), b"a new file").unwrap();
    s.other_borg(&["create", &s.arch("a2"), "data"]);
    let manifest_before = config_value(&cache, "manifest");
    assert_eq!(hoard_stats(&s), borg_stats_other(&s));
    assert_ne!(config_value(&cache, "manifest"), manifest_before);
    let after_second = compact_indexes(&cache);
    assert_eq!(after_second.len(), 4);
    assert!(after_first.iter().all(|f| after_second.contains(f)));

    s.other_borg(&["delete", &s.arch("a1")]);
    assert_eq!(hoard_stats(&s), borg_stats_other(&s));
    let after_delete = compact_indexes(&cache);
    assert_eq!(after_delete.len(), 2, "{after_delete:?}");
    assert!(after_first.iter().all(|f| !after_delete.contains(f)));

    // borg is happy with the result (no resync, same figures).
    let run = s.env.borg(["info", "--info", "--json", &s.repo]).ok();
    assert!(!run.stderr.contains("Synchronizing"), "{}", run.stderr);
    assert_eq!(cache_stats(&run.stdout), borg_stats_other(&s));
}

#[test]
fn corrupt_cache_files_are_rebuilt() {
    if !borg_available() {
        return;
    }
    let s = Setup::new("repokey");
    s.env.borg(["create", &s.arch("a1"), "data"]).ok();
    let cache = s.cache_dir();
    let expected = cache_stats(&s.env.borg(["info", "--json", &s.repo]).ok().stdout);

    // A flipped bit inside the table: the integrity digest no longer matches.
    let p = cache.join("chunks");
    let mut data = std::fs::read(&p).unwrap();
    let n = data.len();
    data[n / 2] ^= 0x40;
    std::fs::write(&p, &data).unwrap();
    assert_eq!(hoard_stats(&s), expected);
    let run = s.env.borg(["info", "--info", "--json", &s.repo]).ok();
    assert!(!run.stderr.contains("Synchronizing"), "{}", run.stderr);
    assert_eq!(cache_stats(&run.stdout), expected);

    // A truncated chunks file and a garbage config.
    std::fs::write(&p, &data[..100]).unwrap();
    std::fs::write(cache.join("config"), b"\x00garbage").unwrap();
    assert_eq!(hoard_stats(&s), expected);
    let run = s.env.borg(["info", "--json", &s.repo]).ok();
    assert_eq!(cache_stats(&run.stdout), expected);

    // A corrupt per-archive index is dropped and rebuilt from the archive.
    let compact = compact_indexes(&cache)
        .into_iter()
        .find(|f| f.ends_with(".compact"))
        .unwrap();
    std::fs::write(
        cache.join("chunks.archive.d").join(&compact),
        b"BORG_IDX junk",
    )
    .unwrap();
    std::fs::write(cache.join("config"), b"[cache]\nversion = 1\nmanifest = \n").unwrap();
    assert_eq!(hoard_stats(&s), expected);
    let c =
        ChunkIndex::read(&std::fs::read(cache.join("chunks.archive.d").join(&compact)).unwrap());
    assert!(c.is_ok());
}

/// Opens a `-e none` repository in-process (no passphrase, no environment needed).
fn open_plain(repo: &str) -> (KeyedRepository, Manifest) {
    let r = LocalRepository::open(
        Path::new(repo),
        &OpenOptions {
            exclusive: true,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let key = Key::plaintext();
    let mut store = KeyedRepository::new(
        Box::new(r),
        key,
        Compression::default(),
        std::env::temp_dir().join("hoard-cache-test-nonce"),
    );
    let obj = store.get_manifest_object().unwrap().unwrap();
    let plain = store.decode(&MANIFEST_ID, &obj, None).unwrap();
    let manifest = Manifest::from_plaintext(&store.key, &plain, false).unwrap();
    (store, manifest)
}

fn options(path: &Path) -> CacheOptions {
    CacheOptions {
        path: Some(path.to_path_buf()),
        lock_wait: 0.0,
        ..CacheOptions::default()
    }
}

fn as_json(st: IndexStats) -> serde_json::Value {
    serde_json::json!({
        "total_chunks": st.total_chunks,
        "total_csize": st.total_csize,
        "total_size": st.total_size,
        "total_unique_chunks": st.total_unique_chunks,
        "unique_csize": st.unique_csize,
        "unique_size": st.unique_size,
    })
}

#[test]
fn in_sync_open_reads_no_item_stream_and_resync_reuses_archive_indexes() {
    if !borg_available() {
        return;
    }
    let s = Setup::new("none");
    s.env.borg(["create", &s.arch("a1"), "data"]).ok();
    s.env.borg(["create", &s.arch("a2"), "data"]).ok();
    let cache = s.cache_dir();
    let borg = cache_stats(&s.env.borg(["info", "--json", &s.repo]).ok().stdout);
    {
        let (mut store, manifest) = open_plain(&s.repo);
        let c = Cache::open(&mut store, &manifest, options(&cache)).unwrap();
        let r = c.sync_report();
        assert!(!r.resynced);
        assert_eq!(r.archives_fetched, 0);
        assert_eq!(as_json(c.stats()), borg);
    }
    {
        // The cache lock is exclusive: another process holding it makes open time out.
        let other = hoard::repo::lock::ProcessId {
            host: "otherhost@1".into(),
            pid: 1,
            thread: 0,
        };
        let mut held =
            hoard::repo::lock::Lock::with_id(&cache.join("lock"), true, None, other, "me@2");
        held.acquire().unwrap();
        let (mut store, manifest) = open_plain(&s.repo);
        assert!(Cache::open(&mut store, &manifest, options(&cache)).is_err());
        held.release().unwrap();
        assert!(Cache::open(&mut store, &manifest, options(&cache)).is_ok());
    }
    // Another client adds a3 and deletes a1: the resync reads only a3.
    std::fs::remove_dir_all(&cache).unwrap();
    {
        let (mut store, manifest) = open_plain(&s.repo);
        let c = Cache::open(&mut store, &manifest, options(&cache)).unwrap();
        assert_eq!(c.sync_report().archives_fetched, 2);
    }
    s.other_borg(&["create", &s.arch("a3"), "data"]);
    s.other_borg(&["delete", &s.arch("a1")]);
    let borg = borg_stats_other(&s);
    let (mut store, manifest) = open_plain(&s.repo);
    let c = Cache::open(&mut store, &manifest, options(&cache)).unwrap();
    let r = c.sync_report();
    assert!(r.resynced);
    assert_eq!(
        (
            r.archives_fetched,
            r.archive_indexes_read,
            r.archive_indexes_dropped
        ),
        (1, 1, 1)
    );
    assert_eq!(as_json(c.stats()), borg);
}

fn stat_of(p: &Path) -> FileStat {
    let m = std::fs::metadata(p).unwrap();
    FileStat {
        inode: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
    }
}

#[test]
fn borg_reads_the_files_cache_hoard_wrote() {
    if !borg_available() {
        return;
    }
    let s = Setup::new("none");
    let root = std::fs::canonicalize(s.env.path()).unwrap();
    let x = root.join("data/small");
    // Ensure "big" has the newest ctime, so that "small" is old enough to be saved.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let big = std::fs::read(root.join("data/big")).unwrap();
    std::fs::write(root.join("data/big"), &big).unwrap();
    s.other_borg(&["create", &s.arch("a1"), "data"]);
    let cache = s.cache_dir();
    {
        let (mut store, manifest) = open_plain(&s.repo);
        let mut c = Cache::open(&mut store, &manifest, options(&cache)).unwrap();
        let content = std::fs::read(&x).unwrap();
        let small_id = store.key.id_hash(&content);
        assert!(c.seen_chunk(&small_id).is_some());
        let hx = store.key.id_hash(x.as_os_str().as_encoded_bytes());
        assert_eq!(c.file_lookup(&hx, &stat_of(&x)), None);
        c.memorize_file(&hx, &stat_of(&x), vec![small_id]);
        let b = root.join("data/big");
        let hb = store.key.id_hash(b.as_os_str().as_encoded_bytes());
        c.memorize_file(&hb, &stat_of(&b), vec![]);
        assert_eq!(c.file_lookup(&hx, &stat_of(&x)), Some(vec![small_id]));
        c.commit(&manifest).unwrap();
    }
    assert!(config_value(&cache, "files").contains("XXH64"));
    let run = s
        .env
        .borg(["create", "--list", "--info", &s.arch("a2"), "data"])
        .ok();
    assert!(!run.stderr.contains("files cache"), "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|l| l == "U data/small"),
        "borg did not use hoard's files cache entry:\n{}",
        run.stderr
    );

    // borg's own files cache decodes and re-encodes byte-identically, and hoard's reading
    // of it finds the entries borg made.
    let data = std::fs::read(cache.join("files")).unwrap();
    assert!(!data.is_empty());
    let fc = hoard::cache::files::FilesCache::decode(&data, 0).unwrap();
    assert_eq!(fc.encode_filtered(|_| true), data);
    let (mut store, manifest) = open_plain(&s.repo);
    let c = Cache::open(&mut store, &manifest, options(&cache)).unwrap();
    let hx = store.key.id_hash(x.as_os_str().as_encoded_bytes());
    assert!(c.file_lookup(&hx, &stat_of(&x)).is_some());
}
