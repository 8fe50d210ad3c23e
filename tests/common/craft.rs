//! Hand-made (hostile) archives and repository surgery through the library API, for the tests
//! that feed extract, export-tar, mount and the repository parsers what `create` never writes.
//!
//! The library reads `BORG_BASE_DIR` / `BORG_PASSPHRASE` from the process environment, so
//! every helper here holds [`LIB_ENV`] while it sets them and talks to the repository: tests of
//! one binary run on parallel threads.

use std::path::Path;
use std::sync::Mutex;

use hoard::archive::item::{ChunkRef, Item};
use hoard::archive::meta::ArchiveMeta;
use hoard::archive::stream::ItemStreamWriter;
use hoard::commands::common::{commit_manifest, open_with_manifest, Access, Opened};
use hoard::location::Location;

use super::Env;

/// Held while library code reads the `BORG_*` variables set for one test.
pub static LIB_ENV: Mutex<()> = Mutex::new(());

/// What a crafted item's content is.
pub enum Content {
    /// Leave `chunks` and `size` as the item has them.
    Keep,
    /// Store these bytes as one chunk; `size` is set to their length unless the item has one.
    Bytes(Vec<u8>),
}

/// A regular file item `path` (mode 0644, a fixed mtime), without content.
pub fn file_item(path: &[u8]) -> Item {
    Item {
        path: path.to_vec(),
        mode: 0o100644,
        mtime: 1_600_000_000_000_000_000,
        ..Default::default()
    }
}

/// A directory item `path` (mode 0755).
pub fn dir_item(path: &[u8]) -> Item {
    Item {
        mode: 0o040755,
        ..file_item(path)
    }
}

/// A symlink item `path -> target`.
pub fn symlink_item(path: &[u8], target: &[u8]) -> Item {
    Item {
        mode: 0o120777,
        source: Some(target.to_vec()),
        ..file_item(path)
    }
}

/// A hardlink slave item `path` of the group whose master is `source` (borg 1.x form).
pub fn slave_item(path: &[u8], source: &[u8]) -> Item {
    Item {
        source: Some(source.to_vec()),
        hardlink_master: Some(false),
        ..file_item(path)
    }
}

/// A new repokey repository `name` in the environment, made by hoard.
pub fn init_repo(env: &Env, name: &str) -> std::path::PathBuf {
    let repo = env.path().join(name);
    env.hoard(["init", "-e", "repokey", repo.to_str().expect("utf8")])
        .ok();
    repo
}

/// Opens `repo` through the library with the environment's base dir and passphrase; the
/// returned guard must live as long as the repository is used.
pub fn open(
    env: &Env,
    repo: &Path,
    exclusive: bool,
) -> (std::sync::MutexGuard<'static, ()>, Opened) {
    let guard = LIB_ENV.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("BORG_BASE_DIR", env.base());
    std::env::set_var(
        "BORG_PASSPHRASE",
        env.passphrase.as_deref().unwrap_or_default(),
    );
    let loc = Location::parse(Some(repo.to_str().expect("utf8")), None).expect("location");
    let access = Access {
        exclusive,
        lock_wait: 5.0,
        lock: true,
    };
    let op = if exclusive {
        hoard::archive::Operation::Write
    } else {
        hoard::archive::Operation::Read
    };
    let opened = open_with_manifest(&loc, &access, &[op], &|_, _| true).expect("open repository");
    (guard, opened)
}

/// Adds archive `name` holding `items` (in this order) to `repo`; returns `REPO::NAME`.
pub fn write_archive(env: &Env, repo: &Path, name: &str, items: Vec<(Item, Content)>) -> String {
    let (_guard, mut opened) = open(env, repo, true);
    let seed = opened.store.key.chunk_seed();
    let mut writer = ItemStreamWriter::new(seed);
    for (mut item, content) in items {
        if let Content::Bytes(d) = content {
            let (id, csize) = opened.store.put(&d).expect("put chunk");
            item.chunks = Some(vec![ChunkRef {
                id,
                size: d.len() as u32,
                csize: csize as u32,
            }]);
            item.size = item.size.or(Some(d.len() as u64));
        }
        let store = &mut opened.store;
        writer
            .add(&item, &mut |b: &[u8]| store.put(b).map(|r| r.0))
            .expect("add item");
    }
    let store = &mut opened.store;
    let ids = writer
        .finish(&mut |b: &[u8]| store.put(b).map(|r| r.0))
        .expect("finish item stream");
    let meta = ArchiveMeta {
        version: 1,
        name: name.as_bytes().to_vec(),
        items: ids,
        cmdline: vec![b"test".to_vec()],
        time: "2024-01-01T00:00:00.000000".into(),
        ..Default::default()
    };
    let (id, _) = meta.store(&mut opened.store).expect("store archive");
    opened.manifest.archives.insert(
        name.as_bytes().to_vec(),
        hoard::archive::ArchiveRef {
            id,
            time: meta.time.clone(),
        },
    );
    commit_manifest(&mut opened).expect("commit");
    format!("{}::{name}", repo.display())
}

/// The chunk id `data` has in `repo` (whether or not it is stored).
pub fn chunk_id(env: &Env, repo: &Path, data: &[u8]) -> [u8; 32] {
    let (_guard, opened) = open(env, repo, false);
    opened.store.key.id_hash(data)
}

/// The local repository at `repo`, opened with the exclusive lock (for surgery).
pub fn open_exclusive(repo: &Path) -> hoard::repo::LocalRepository {
    let options = hoard::repo::OpenOptions {
        exclusive: true,
        ..hoard::repo::OpenOptions::default()
    };
    hoard::repo::LocalRepository::open(repo, &options).expect("open repository")
}

/// Deletes object `id` from `repo` and commits (a missing chunk).
pub fn delete_object(repo: &Path, id: &[u8; 32]) {
    use hoard::repo::Repository;
    let _guard = LIB_ENV.lock().unwrap_or_else(|e| e.into_inner());
    let mut r = open_exclusive(repo);
    r.delete(id).expect("delete object");
    r.commit(false, 0.1).expect("commit");
}

/// Every file and directory below `root` (relative, sorted), for "nothing else was written"
/// assertions; symlinks are listed, not followed.
pub fn listing(root: &Path) -> Vec<String> {
    fn rec(d: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rec(&p, root, out);
            }
        }
    }
    let mut out = Vec::new();
    rec(root, root, &mut out);
    out.sort();
    out
}

/// Flips one random byte (a random non-zero mask) at a random offset of a random segment file
/// of `repo` (one with more than its 8-byte header); returns the segment's name, the offset and
/// a description (`SEGMENT@OFFSET^MASK`) for failure messages.
pub fn flip_random_segment_byte(repo: &Path, rng: &mut impl rand::Rng) -> (String, u64, String) {
    let mut segs: Vec<std::path::PathBuf> = Vec::new();
    for d in std::fs::read_dir(repo.join("data")).expect("data") {
        for f in std::fs::read_dir(d.expect("dir").path()).expect("dir") {
            let f = f.expect("entry").path();
            if std::fs::metadata(&f).expect("meta").len() > 8 {
                segs.push(f);
            }
        }
    }
    segs.sort();
    let seg = &segs[rng.gen_range(0..segs.len())];
    let mut bytes = std::fs::read(seg).expect("read");
    let off = rng.gen_range(0..bytes.len());
    let mask: u8 = rng.gen_range(1..=255);
    bytes[off] ^= mask;
    std::fs::write(seg, &bytes).expect("write");
    let name = seg
        .file_name()
        .expect("a segment name")
        .to_string_lossy()
        .into_owned();
    let what = format!("{name}@{off}^{mask:#04x}");
    (name, off as u64, what)
}
