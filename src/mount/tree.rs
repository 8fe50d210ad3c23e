//! The inode table of a mount, built the way borg 1.2's `FuseBackend` builds it.
//!
//! Inode 1 is the root. Mounting one archive puts its items below the root; mounting a
//! repository makes one directory per archive, filled on first access; the `versions` view
//! merges every archive into one tree where each file becomes a directory holding
//! `name.NNNNN.ext`, NNNNN counting the distinct contents (chunk-id lists) the path had, in
//! archive order. Hardlink slaves share their master's inode, whose link count counts them.
//!
//! Memory: each inode keeps a 48-byte record and each directory entry a 24-byte one plus its
//! name ([`super::compact`]); the full item — chunk list, xattrs, link target — is packed into
//! an unlinked spool file and decoded again when a file is opened or an xattr/link is read.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use crate::archive::item::{Item, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG};
use crate::archive::meta::{ArchiveMeta, Items};
use crate::archive::KeyedRepository;

use super::compact::{Dirs, Nodes};
pub use super::node::{Attr, Node};
use super::MountError;

/// The root inode.
pub const ROOT: u64 = 1;

/// Decides whether an archive path is selected (PATH arguments and patterns).
pub type PathFilter = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// An archive of the manifest to show.
#[derive(Debug, Clone)]
pub struct ArchiveEntry {
    /// Its name (the directory name in a repository mount).
    pub name: Vec<u8>,
    /// Its metadata object id.
    pub id: [u8; 32],
    /// Its start time, ns since the epoch (the directory's mtime).
    pub mtime: i64,
}

/// How items become inodes.
pub struct TreeSettings {
    /// `--numeric-ids`: report the stored ids, not the local ids of the stored names.
    pub numeric_ids: bool,
    /// `-o uid=`.
    pub uid_forced: Option<u32>,
    /// `-o gid=`.
    pub gid_forced: Option<u32>,
    /// `-o umask=` (applied to synthetic directories' mode here; to all in `getattr`).
    pub umask: u32,
    /// `-o versions`.
    pub versions: bool,
    /// `--strip-components`.
    pub strip_components: usize,
    /// `--consider-part-files`.
    pub consider_part_files: bool,
    /// Path selection; None selects everything.
    pub filter: Option<PathFilter>,
}

/// An unlinked temporary file holding packed items, with a small write buffer.
struct Spool {
    file: File,
    flushed: u64,
    buffer: Vec<u8>,
}

const SPOOL_BUFFER: usize = 1 << 20;

impl Spool {
    fn new() -> Result<Spool, MountError> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!("hoard-mount-{}-{nanos}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| MountError::Io(format!("{}: {e}", path.display())))?;
        let _ = std::fs::remove_file(&path);
        Ok(Spool {
            file,
            flushed: 0,
            buffer: Vec::new(),
        })
    }

    fn put(&mut self, item: &Item) -> Result<(u64, u32), MountError> {
        let start = self.flushed + self.buffer.len() as u64;
        item.pack_into(&mut self.buffer);
        let len = (self.flushed + self.buffer.len() as u64 - start) as u32;
        if self.buffer.len() >= SPOOL_BUFFER {
            self.flush()?;
        }
        Ok((start, len))
    }

    fn flush(&mut self) -> Result<(), MountError> {
        self.file
            .write_all_at(&self.buffer, self.flushed)
            .map_err(|e| MountError::Io(format!("mount spool file: {e}")))?;
        self.flushed += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    fn get(&self, (off, len): (u64, u32)) -> Result<Item, MountError> {
        let mut bytes = vec![0u8; len as usize];
        if off >= self.flushed {
            let s = (off - self.flushed) as usize;
            let part = self
                .buffer
                .get(s..s + len as usize)
                .ok_or_else(|| MountError::Io("mount spool: bad offset".into()))?;
            bytes.copy_from_slice(part);
        } else {
            self.file
                .read_exact_at(&mut bytes, off)
                .map_err(|e| MountError::Io(format!("mount spool file: {e}")))?;
        }
        // Straight from the bytes (the cursor bounds everything by their length).
        Item::decode(&bytes).map_err(|e| MountError::Io(format!("mount spool: {e}")))
    }
}

/// A hardlink master seen while building a partial tree (borg's `hardlink_masters`).
enum Master {
    /// Not selected itself: its item, for the first selected slave to take the chunks from.
    Unselected((u64, u32)),
    /// Taken over by the slave now at this path.
    Selected(Vec<u8>),
}

/// The inode table.
pub struct Tree {
    nodes: Nodes,
    dirs: Dirs,
    pending: HashMap<u64, ArchiveEntry>,
    spool: Spool,
    settings: TreeSettings,
    default_dir: Attr,
    /// versions view: path → (latest version number, contents id of that version).
    versions_index: HashMap<Vec<u8>, (u32, [u8; 32])>,
    users: HashMap<Vec<u8>, Option<u32>>,
    groups: HashMap<Vec<u8>, Option<u32>>,
    /// Warnings collected while building (broken hardlinks); the caller logs them.
    pub warnings: Vec<String>,
    /// Where loading an archive reports its progress (while the mount is prepared).
    progress: crate::progress::Progress,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The size a file shows: what its chunks hold when it has chunks (reads never return more,
/// and a hostile `size` such as 2^63 - 1 would make readers that trust `st_size` allocate
/// for it), else borg's `get_size()`. The two agree for every archive borg writes.
fn shown_size(item: &Item) -> u64 {
    match &item.chunks {
        Some(c) if !item.is_symlink() => c.iter().map(|c| u64::from(c.size)).sum(),
        _ => item.reported_size(),
    }
}

/// borg's `hardlinkable`: regular files, devices and fifos.
fn hardlinkable(mode: u32) -> bool {
    matches!(mode & S_IFMT, S_IFREG | S_IFBLK | S_IFCHR | S_IFIFO)
}

/// `os.sep.join(path.split(os.sep)[n:])`.
fn strip(path: &[u8], n: usize) -> Vec<u8> {
    if n == 0 {
        return path.to_vec();
    }
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    parts.get(n..).map(|p| p.join(&b'/')).unwrap_or_default()
}

/// Python's `os.path.splitext` on bytes.
pub fn splitext(p: &[u8]) -> (&[u8], &[u8]) {
    let sep = p.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    if let Some(dot) = p.iter().rposition(|&b| b == b'.') {
        if dot > sep && p[sep..dot].iter().any(|&b| b != b'.') {
            return (&p[..dot], &p[dot..]);
        }
    }
    (p, &[])
}

/// borg's `make_versioned_name`: `name.NNNNN.ext`; with `add_dir`, the name is first extended
/// by a directory of the same name (the versions directory of a file).
pub fn versioned_name(name: &[u8], version: u32, add_dir: bool) -> Vec<u8> {
    let mut full = name.to_vec();
    if add_dir {
        let last = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
        full.push(b'/');
        full.extend_from_slice(last);
    }
    let (stem, ext) = splitext(&full);
    let mut out = stem.to_vec();
    out.extend_from_slice(format!(".{version:05}").as_bytes());
    out.extend_from_slice(ext);
    out
}

impl Tree {
    /// An empty tree: just the root directory, owned by the forced or the current user.
    pub fn new(settings: TreeSettings) -> Result<Tree, MountError> {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let now = now_ns();
        let default_dir = Attr {
            mode: (S_IFDIR | 0o755) & !settings.umask,
            uid: settings.uid_forced.unwrap_or(uid),
            gid: settings.gid_forced.unwrap_or(gid),
            nlink: 1,
            rdev: 0,
            size: 0,
            mtime: now,
            atime: now,
            ctime: now,
        };
        let mut tree = Tree {
            nodes: Nodes::default(),
            dirs: Dirs::default(),
            pending: HashMap::new(),
            spool: Spool::new()?,
            settings,
            default_dir,
            versions_index: HashMap::new(),
            users: HashMap::new(),
            groups: HashMap::new(),
            warnings: Vec::new(),
            progress: crate::progress::Progress::default(),
        };
        tree.create_dir(ROOT, None);
        Ok(tree)
    }

    /// Reports the loading of archives ([`Tree::process_archive`]) to `progress` from now on:
    /// a percentage over each archive's item-stream chunks (`mount.load_archive`, hoard's own).
    pub fn set_progress(&mut self, progress: crate::progress::Progress) {
        self.progress = progress;
    }

    /// The node of `ino`.
    pub fn node(&self, ino: u64) -> Option<Node> {
        self.nodes.get(ino)
    }

    /// Number of inodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when only the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// Number of entries of directory `ino` (without `.` and `..`).
    pub fn entry_count(&self, ino: u64) -> usize {
        self.dirs.len_of(ino)
    }

    /// The `i`-th entry of directory `ino` (name, inode), in insertion order.
    pub fn entry(&self, ino: u64, i: usize) -> Option<(&[u8], u64)> {
        self.dirs.entry(ino, i)
    }

    /// Looks `name` up in directory `parent`.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Option<u64> {
        match name {
            b"." => Some(parent),
            b".." => self.node(parent).map(|n| n.parent),
            _ => self.dirs.lookup(parent, name),
        }
    }

    /// The full item of `ino` (None for synthetic directories).
    pub fn item(&self, ino: u64) -> Result<Option<Item>, MountError> {
        match self.node(ino).and_then(|n| n.spool) {
            Some(at) => self.spool.get(at).map(Some),
            None => Ok(None),
        }
    }

    fn push(&mut self, node: Node) -> Result<u64, MountError> {
        self.nodes
            .push(&node)
            .ok_or_else(|| MountError::Io("too many inodes for one mount".into()))
    }

    fn create_dir(&mut self, parent: u64, mtime: Option<i64>) -> u64 {
        let mut attr = self.default_dir;
        if let Some(m) = mtime {
            attr.mtime = m;
            attr.atime = m;
            attr.ctime = m;
        }
        // Synthetic directories are fewer than items, which run out of inode numbers first
        // (with an error); the root stands in should one ever be refused.
        self.push(Node {
            parent,
            attr,
            spool: None,
            damaged: false,
        })
        .unwrap_or(ROOT)
    }

    /// Adds the top-level directories of a repository mount, loaded on first access.
    pub fn add_pending_archive(&mut self, archive: ArchiveEntry) {
        let ino = self.create_dir(ROOT, Some(archive.mtime));
        self.dirs.insert(ROOT, &archive.name, ino);
        self.pending.insert(ino, archive);
    }

    /// Loads the archive behind a pending top-level directory, if `ino` is one.
    pub fn load_pending(
        &mut self,
        ino: u64,
        store: &mut KeyedRepository,
    ) -> Result<(), MountError> {
        if let Some(archive) = self.pending.remove(&ino) {
            let name = archive.name.clone();
            self.process_archive(store, &archive, Some(&name))?;
        }
        Ok(())
    }

    fn owner(&mut self, item: &Item) -> (u32, u32) {
        let s = &self.settings;
        let uid = match s.uid_forced {
            Some(u) => u,
            None => {
                let by_name = match (&item.user, s.numeric_ids) {
                    (Some(name), false) => *self
                        .users
                        .entry(name.clone())
                        .or_insert_with(|| crate::platform::users::user2uid(name)),
                    _ => None,
                };
                by_name.unwrap_or(item.uid)
            }
        };
        let s = &self.settings;
        let gid = match s.gid_forced {
            Some(g) => g,
            None => {
                let by_name = match (&item.group, s.numeric_ids) {
                    (Some(name), false) => *self
                        .groups
                        .entry(name.clone())
                        .or_insert_with(|| crate::platform::users::group2gid(name)),
                    _ => None,
                };
                by_name.unwrap_or(item.gid)
            }
        };
        (uid, gid)
    }

    fn attr_of(&mut self, item: &Item) -> Attr {
        let (uid, gid) = self.owner(item);
        Attr {
            mode: item.mode,
            uid,
            gid,
            nlink: 1,
            rdev: item.rdev.unwrap_or(0) as u32,
            size: shown_size(item),
            mtime: item.mtime,
            atime: item.atime.unwrap_or(item.mtime),
            ctime: item.ctime.unwrap_or(item.mtime),
        }
    }

    fn item_node(&mut self, item: &Item, parent: u64) -> Result<u64, MountError> {
        let attr = self.attr_of(item);
        let spool = self.spool.put(item)?;
        self.push(Node {
            parent,
            attr,
            spool: Some(spool),
            damaged: item.chunks_healthy.is_some(),
        })
    }

    /// borg's `find_inode`: walks `prefix/path` from the root.
    fn find_inode(&self, path: &[u8], prefix: Option<&[u8]>) -> Option<u64> {
        let mut ino = ROOT;
        for seg in prefix.into_iter().chain(path.split(|&b| b == b'/')) {
            ino = self.dirs.lookup(ino, seg)?;
        }
        Some(ino)
    }

    /// borg's `_process_inner`: the directory `name` in `parent`, created when missing.
    fn process_inner(&mut self, name: &[u8], parent: u64) -> u64 {
        if let Some(ino) = self.dirs.lookup(parent, name) {
            return ino;
        }
        let ino = self.create_dir(parent, None);
        if !name.is_empty() {
            self.dirs.insert(parent, name, ino);
        }
        ino
    }

    /// Adds the items of one archive (borg's `_process_archive`), below `prefix` if given.
    pub fn process_archive(
        &mut self,
        store: &mut KeyedRepository,
        archive: &ArchiveEntry,
        prefix: Option<&[u8]>,
    ) -> Result<(), MountError> {
        let meta = ArchiveMeta::load(store, &archive.id)?;
        let mut items = Items::new(store, &meta);
        let strip_n = self.settings.strip_components;
        let partial = self.settings.filter.is_some() || strip_n > 0;
        let mut masters: HashMap<Vec<u8>, Master> = HashMap::new();
        let mut file_versions: HashMap<Vec<u8>, u32> = HashMap::new();
        let progress = self.progress.clone();
        let mut pi = progress.is_active().then(|| {
            crate::progress::Percent::new(meta.items.len() as u64, 1.0, "mount.load_archive", |p| {
                format!("Loading archive {p:3.0}%")
            })
        });
        let mut sink = |ev: &crate::progress::ProgressEvent| progress.emit(ev);
        while let Some(mut item) = items.next_item()? {
            if let Some(pi) = pi.as_mut() {
                pi.show(Some(items.last_item_position().1 as u64), &mut sink);
            }
            let selected = self.settings.filter.as_mut().is_none_or(|f| f(&item.path))
                && (strip_n == 0 || !strip(&item.path, strip_n).is_empty());
            if partial
                && !selected
                && hardlinkable(item.mode)
                && item.may_be_hardlink_master()
                && item.source.is_none()
            {
                let at = self.spool.put(&item)?;
                masters.insert(item.path.clone(), Master::Unselected(at));
            }
            if !selected || (!self.settings.consider_part_files && item.part.is_some()) {
                continue;
            }
            if strip_n > 0 {
                item.path = strip(&item.path, strip_n);
            }
            if item.path.split(|&b| b == b'/').any(|c| c == b"..") {
                // borg create never stores `..`; such an entry would shadow the real parent
                // in listings (the kernel resolves `..` itself), so it is left out
                self.warnings.push(format!(
                    "{}: not shown, path contains \"../\" (malicious or corrupted archive)",
                    String::from_utf8_lossy(&item.path)
                ));
                continue;
            }
            let is_dir = item.is_dir();
            if is_dir {
                // `borg create … dir1/file dir1` stores the directory after an intermediate
                // directory was made for it: the item replaces the synthetic one.
                if let Some(ino) = self.find_inode(&item.path, prefix) {
                    let attr = self.attr_of(&item);
                    let at = self.spool.put(&item)?;
                    self.nodes.replace(ino, &attr, at);
                    continue;
                }
            }
            let path = item.path.clone();
            let segments: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            let mut parent = ROOT;
            if let Some(p) = prefix {
                parent = self.process_inner(p, parent);
            }
            let (last, inner) = match segments.split_last() {
                Some(x) => x,
                None => continue,
            };
            for seg in inner {
                parent = self.process_inner(seg, parent);
            }
            self.process_leaf(
                last,
                item,
                parent,
                prefix,
                is_dir,
                &mut masters,
                &mut file_versions,
            )?;
        }
        if let Some(pi) = pi {
            pi.finish(&mut sink);
        }
        self.spool.flush()?;
        self.dirs.shrink();
        Ok(())
    }

    /// borg's `_process_leaf`.
    #[allow(clippy::too_many_arguments)]
    fn process_leaf(
        &mut self,
        name: &[u8],
        mut item: Item,
        mut parent: u64,
        prefix: Option<&[u8]>,
        is_dir: bool,
        masters: &mut HashMap<Vec<u8>, Master>,
        file_versions: &mut HashMap<Vec<u8>, u32>,
    ) -> Result<(), MountError> {
        let path = item.path.clone();
        let mut name = name.to_vec();
        let strip_n = self.settings.strip_components;
        // chunk ids of the contents, for the versions view
        let mut contents: Option<Vec<[u8; 32]>> = item
            .chunks
            .as_ref()
            .map(|c| c.iter().map(|c| c.id).collect());
        let inode;
        match item.source.clone() {
            Some(source) if hardlinkable(item.mode) => {
                let stripped_source = strip(&source, strip_n);
                let link_target = match masters.get(&source) {
                    Some(Master::Selected(p)) => Some(p.clone()),
                    Some(Master::Unselected(at)) => {
                        let master = self.spool.get(*at)?;
                        item.chunks = master.chunks;
                        if item.size.is_none() {
                            item.size = master.size;
                        }
                        contents = item
                            .chunks
                            .as_ref()
                            .map(|c| c.iter().map(|c| c.id).collect());
                        masters.insert(source.clone(), Master::Selected(path.clone()));
                        None
                    }
                    None => Some(stripped_source.clone()),
                };
                match link_target {
                    Some(mut target) => {
                        if self.settings.versions {
                            match file_versions.get(&target) {
                                Some(&v) => target = versioned_name(&target, v, true),
                                None => {
                                    self.warnings.push(format!(
                                        "Skipping broken hard link: {} -> {}",
                                        String::from_utf8_lossy(&path),
                                        String::from_utf8_lossy(&stripped_source)
                                    ));
                                    return Ok(());
                                }
                            }
                        }
                        let Some(ino) = self.find_inode(&target, prefix) else {
                            self.warnings.push(format!(
                                "Skipping broken hard link: {} -> {}",
                                String::from_utf8_lossy(&path),
                                String::from_utf8_lossy(&stripped_source)
                            ));
                            return Ok(());
                        };
                        if self.settings.versions {
                            contents = self
                                .item(ino)?
                                .and_then(|m| m.chunks)
                                .map(|c| c.iter().map(|c| c.id).collect());
                        }
                        self.nodes.add_link(ino);
                        inode = ino;
                    }
                    None => inode = self.item_node(&item, parent)?,
                }
            }
            _ => inode = self.item_node(&item, parent)?,
        }
        if self.settings.versions && !is_dir {
            parent = self.process_inner(&name, parent);
            if let Some(ids) = contents {
                let version = self.file_version(&path, &ids);
                name = versioned_name(&name, version, false);
                file_versions.insert(path, version);
            }
        }
        self.nodes.set_parent(inode, parent);
        if !name.is_empty() {
            self.dirs.insert(parent, &name, inode);
        }
        Ok(())
    }

    /// borg's `file_version`: the version number grows when the chunk-id list changes.
    fn file_version(&mut self, path: &[u8], ids: &[[u8; 32]]) -> u32 {
        let mut h = Sha256::new();
        for id in ids {
            h.update(id);
        }
        let contents_id: [u8; 32] = h.finalize().into();
        let entry = self
            .versions_index
            .entry(path.to_vec())
            .or_insert((0, [0; 32]));
        if entry.0 == 0 || entry.1 != contents_id {
            entry.0 += 1;
            entry.1 = contents_id;
        }
        entry.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitext_matches_python() {
        assert_eq!(splitext(b"a.tar.gz"), (&b"a.tar"[..], &b".gz"[..]));
        assert_eq!(splitext(b".bashrc"), (&b".bashrc"[..], &b""[..]));
        assert_eq!(splitext(b"..x.y"), (&b"..x"[..], &b".y"[..]));
        assert_eq!(splitext(b"d.d/file"), (&b"d.d/file"[..], &b""[..]));
        assert_eq!(splitext(b"a."), (&b"a"[..], &b"."[..]));
    }

    #[test]
    fn versioned_names_keep_the_extension_last() {
        assert_eq!(versioned_name(b"a.txt", 2, false), b"a.00002.txt");
        assert_eq!(versioned_name(b"noext", 1, false), b"noext.00001");
        assert_eq!(versioned_name(b"d/a.txt", 3, true), b"d/a.txt/a.00003.txt");
    }

    #[test]
    fn strip_drops_leading_components() {
        assert_eq!(strip(b"a/b/c", 1), b"b/c");
        assert_eq!(strip(b"a", 1), b"");
        assert_eq!(strip(b"a/b", 0), b"a/b");
    }
}
