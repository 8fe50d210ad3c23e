//! `diff ARCHIVE1 ARCHIVE2 [PATH...]`: the changes between two archives of one repository
//! (borg 1.2's `do_diff`, `Archive.compare_archives_iter` and `ItemDiff`).
//!
//! As in borg 1.2.4, `--numeric-ids` is accepted but owners are compared by name.

use std::collections::{HashMap, HashSet};

use indexmap_lite::OrderedMap;

use crate::archive::item::{filemode, ChunkRef, Item, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFREG};
use crate::archive::meta::{ArchiveMeta, Items};
use crate::archive::KeyedRepository;
use crate::location::Location;
use crate::security::Confirm;

use super::common::{LockSpec, Result};
use super::extract::{self, PathFilter};

/// One change of a path, in borg's order within a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Content changed; bytes in chunks only in the new / only in the old version.
    Modified {
        /// Sizes of chunks only in the second archive (None: chunk ids not comparable).
        added: Option<u64>,
        /// Sizes of chunks only in the first archive.
        removed: Option<u64>,
    },
    /// A file that only the second archive has.
    Added {
        /// Its size.
        size: u64,
    },
    /// A file that only the first archive has.
    Removed {
        /// Its size.
        size: u64,
    },
    /// `added link`, `removed link`, `changed link`, `added directory`, `removed fifo`, ...
    Kind(String),
    /// Owner names changed.
    Owner {
        /// Old user name.
        old_user: Option<String>,
        /// Old group name.
        old_group: Option<String>,
        /// New user name.
        new_user: Option<String>,
        /// New group name.
        new_group: Option<String>,
    },
    /// Mode changed (as `ls -l` shows it).
    Mode {
        /// Old mode text.
        old: String,
        /// New mode text.
        new: String,
    },
    /// `ctime` or `mtime` changed (ns).
    Time {
        /// `ctime` or `mtime`.
        attr: &'static str,
        /// Old value in ns.
        old: i64,
        /// New value in ns.
        new: i64,
    },
}

/// Options of `diff`.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// `--same-chunker-params`: compare chunk ids even if the parameters differ or are unknown.
    pub same_chunker_params: bool,
    /// `--sort`: sort the output by path.
    pub sort: bool,
    /// `--sort-by`: sort keys, applied first to last (wins over `--sort`).
    pub sort_by: Vec<SortKey>,
    /// `--content-only`.
    pub content_only: bool,
    /// `--consider-part-files`.
    pub consider_part_files: bool,
    /// `--lock-wait` and `--bypass-lock`.
    pub lock: LockSpec,
}

/// A field `diff --sort-by` sorts by (borg 1.4.5's keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// The path.
    Path,
    /// Bytes added (changed content, or the size of an added file).
    SizeAdded,
    /// Bytes removed.
    SizeRemoved,
    /// Added minus removed.
    SizeDiff,
    /// Size in the second archive (0 when removed there).
    Size,
    /// User name in the second archive.
    User,
    /// Group name in the second archive.
    Group,
    /// Numeric uid in the second archive.
    Uid,
    /// Numeric gid in the second archive.
    Gid,
    /// ctime in the second archive.
    Ctime,
    /// mtime in the second archive.
    Mtime,
    /// ctime change (second minus first).
    CtimeDiff,
    /// mtime change.
    MtimeDiff,
}

/// One `--sort-by` key: a field, ascending (`<` or no prefix) or descending (`>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The field.
    pub field: SortField,
    /// True for `>FIELD`.
    pub descending: bool,
}

/// A parsed `--sort-by` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortSpec(pub Vec<SortKey>);

/// Parses `--sort-by`'s comma-separated `[<|>]FIELD` list as borg 1.4.5 does; the error is
/// borg's argparse text (`unsupported sort field: X`).
pub fn parse_sort_by(spec: &str) -> std::result::Result<SortSpec, String> {
    let parts: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err("unsupported sort field: empty spec".into());
    }
    parts
        .into_iter()
        .map(|part| {
            let (descending, name) = match part.as_bytes()[0] {
                b'>' => (true, &part[1..]),
                b'<' => (false, &part[1..]),
                _ => (false, part),
            };
            let field = match name {
                "path" => SortField::Path,
                "size_added" => SortField::SizeAdded,
                "size_removed" => SortField::SizeRemoved,
                "size_diff" => SortField::SizeDiff,
                "size" => SortField::Size,
                "user" => SortField::User,
                "group" => SortField::Group,
                "uid" => SortField::Uid,
                "gid" => SortField::Gid,
                "ctime" => SortField::Ctime,
                "mtime" => SortField::Mtime,
                "ctime_diff" => SortField::CtimeDiff,
                "mtime_diff" => SortField::MtimeDiff,
                _ => return Err(format!("unsupported sort field: {name}")),
            };
            Ok(SortKey { field, descending })
        })
        .collect::<std::result::Result<Vec<_>, String>>()
        .map(SortSpec)
}

/// The values an entry is sorted by: taken from the second archive's item (a removed path's
/// is the deleted placeholder, as in borg) and the first's for the time differences.
#[derive(Debug, Clone, Default)]
struct SortFacts {
    user: String,
    group: String,
    uid: i64,
    gid: i64,
    ctime: i64,
    mtime: i64,
    ctime1: i64,
    mtime1: i64,
    size: u64,
}

impl SortFacts {
    fn of(a: &Side, b: &Side) -> SortFacts {
        let (ctime1, mtime1) = if a.deleted {
            (0, 0)
        } else {
            (a.item.ctime.unwrap_or(0), a.item.mtime)
        };
        if b.deleted {
            return SortFacts {
                uid: -1,
                gid: -1,
                ctime1,
                mtime1,
                ..SortFacts::default()
            };
        }
        SortFacts {
            user: name(&b.item.user).unwrap_or_default(),
            group: name(&b.item.group).unwrap_or_default(),
            uid: i64::from(b.item.uid),
            gid: i64::from(b.item.gid),
            ctime: b.item.ctime.unwrap_or(0),
            mtime: b.item.mtime,
            ctime1,
            mtime1,
            size: b.size(),
        }
    }
}

/// Bytes added and removed according to an entry's changes (borg's `key_for`).
fn added_removed(changes: &[Change]) -> (i128, i128) {
    let (mut added, mut removed) = (0i128, 0i128);
    for c in changes {
        match c {
            Change::Modified {
                added: a,
                removed: r,
            } => {
                added += i128::from(a.unwrap_or(0));
                removed += i128::from(r.unwrap_or(0));
            }
            Change::Added { size } => added += i128::from(*size),
            Change::Removed { size } => removed += i128::from(*size),
            _ => {}
        }
    }
    (added, removed)
}

type Entry = (Vec<u8>, Vec<Change>, SortFacts);

/// Sorts entries stably by `keys`, last key first, as borg 1.4.5 does.
fn sort_entries(entries: &mut [Entry], keys: &[SortKey]) {
    use std::cmp::Ordering;
    for key in keys.iter().rev() {
        let cmp = |x: &Entry, y: &Entry| -> Ordering {
            let num = |e: &Entry| -> i128 {
                let (added, removed) = added_removed(&e.1);
                let f = &e.2;
                match key.field {
                    SortField::SizeAdded => added,
                    SortField::SizeRemoved => removed,
                    SortField::SizeDiff => added - removed,
                    SortField::Size => i128::from(f.size),
                    SortField::Uid => i128::from(f.uid),
                    SortField::Gid => i128::from(f.gid),
                    SortField::Ctime => i128::from(f.ctime),
                    SortField::Mtime => i128::from(f.mtime),
                    SortField::CtimeDiff => i128::from(f.ctime) - i128::from(f.ctime1),
                    SortField::MtimeDiff => i128::from(f.mtime) - i128::from(f.mtime1),
                    SortField::Path | SortField::User | SortField::Group => 0,
                }
            };
            match key.field {
                SortField::Path => {
                    extract::remove_surrogates(&x.0).cmp(&extract::remove_surrogates(&y.0))
                }
                SortField::User => x.2.user.cmp(&y.2.user),
                SortField::Group => x.2.group.cmp(&y.2.group),
                _ => num(x).cmp(&num(y)),
            }
        };
        if key.descending {
            entries.sort_by(|x, y| cmp(y, x));
        } else {
            entries.sort_by(cmp);
        }
    }
}

/// The result of `diff`.
#[derive(Debug, Default)]
pub struct DiffResult {
    /// Changed paths with their changes, in output order.
    pub entries: Vec<(Vec<u8>, Vec<Change>)>,
    /// Warnings (chunker parameters), printed before the entries.
    pub warnings: Vec<String>,
}

/// A diff side: an item or "nothing here" (borg's `Item.create_deleted`).
#[derive(Debug, Clone)]
struct Side {
    item: Item,
    deleted: bool,
}

impl Side {
    fn present(item: Item) -> Side {
        Side {
            item,
            deleted: false,
        }
    }

    fn deleted(path: &[u8]) -> Side {
        Side {
            item: Item {
                path: path.to_vec(),
                chunks: Some(Vec::new()),
                ..Item::default()
            },
            deleted: true,
        }
    }

    fn ftype(&self) -> u32 {
        self.item.mode & 0o170000
    }

    fn size(&self) -> u64 {
        self.item.size.unwrap_or_else(|| {
            self.item
                .chunks
                .as_ref()
                .map_or(0, |c| c.iter().map(|c| u64::from(c.size)).sum())
        })
    }
}

fn hardlinkable(mode: u32) -> bool {
    matches!(mode & 0o170000, S_IFREG | S_IFBLK | S_IFCHR | S_IFIFO)
}

fn is_hardlink_master(s: &Side) -> bool {
    s.item.may_be_hardlink_master() && s.item.source.is_none() && hardlinkable(s.item.mode)
}

fn name(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_ref().map(|v| extract::remove_surrogates(v))
}

struct Comparer<'s> {
    store: &'s mut KeyedRepository,
    can_compare_chunk_ids: bool,
    content_only: bool,
    masters: HashMap<Vec<u8>, (Side, Side)>,
}

impl Comparer<'_> {
    fn master_seen(&self, s: &Side) -> bool {
        match &s.item.source {
            None => true,
            Some(src) => !hardlinkable(s.item.mode) || self.masters.contains_key(src),
        }
    }

    fn update_masters(&mut self, a: &Side, b: &Side) {
        if is_hardlink_master(a) || is_hardlink_master(b) {
            self.masters
                .insert(a.item.path.clone(), (a.clone(), b.clone()));
        }
    }

    fn resolve(&self, s: Side, first: bool) -> Side {
        if hardlinkable(s.item.mode) {
            if let Some(src) = &s.item.source {
                if let Some((m1, m2)) = self.masters.get(src) {
                    return if first { m1.clone() } else { m2.clone() };
                }
            }
        }
        s
    }

    fn compare(&mut self, a: Side, b: Side) -> Result<Option<(Vec<Change>, SortFacts)>> {
        let a = self.resolve(a, true);
        let b = self.resolve(b, false);
        if self.equal(&a, &b)? {
            return Ok(None);
        }
        Ok(Some((self.changes(&a, &b), SortFacts::of(&a, &b))))
    }

    fn equal(&mut self, a: &Side, b: &Side) -> Result<bool> {
        if a.deleted && b.deleted {
            return Ok(true);
        }
        if a.deleted != b.deleted || a.item.source != b.item.source {
            return Ok(false);
        }
        if !self.content_only
            && (a.item.mode != b.item.mode
                || a.item.ctime != b.item.ctime
                || a.item.mtime != b.item.mtime
                || a.item.user != b.item.user
                || a.item.group != b.item.group)
        {
            return Ok(false);
        }
        if let (Some(c1), Some(c2)) = (&a.item.chunks, &b.item.chunks) {
            return self.content_equal(a, b, c1, c2);
        }
        Ok(true)
    }

    fn content_equal(
        &mut self,
        a: &Side,
        b: &Side,
        c1: &[ChunkRef],
        c2: &[ChunkRef],
    ) -> Result<bool> {
        if self.can_compare_chunk_ids {
            return Ok(c1 == c2);
        }
        if a.size() != b.size() {
            return Ok(false);
        }
        // compare the byte streams chunk by chunk (boundaries may differ)
        let mut i1 = ChunkStream::new(c1);
        let mut i2 = ChunkStream::new(c2);
        loop {
            let x = i1.next(self.store)?;
            let y = i2.next(self.store)?;
            match (x, y) {
                (None, None) => return Ok(true),
                (Some(x), Some(y)) => {
                    let n = x.len().min(y.len());
                    if x[..n] != y[..n] {
                        return Ok(false);
                    }
                    i1.unread(&x[n..]);
                    i2.unread(&y[n..]);
                }
                _ => return Ok(false),
            }
        }
    }

    fn changes(&self, a: &Side, b: &Side) -> Vec<Change> {
        let mut out = Vec::new();
        let (ia, ib) = (&a.item, &b.item);
        if ia.is_symlink() || ib.is_symlink() {
            if !a.deleted && b.deleted {
                out.push(Change::Kind("removed link".into()));
            } else if a.deleted && !b.deleted {
                out.push(Change::Kind("added link".into()));
            } else if let (Some(s1), Some(s2)) = (&ia.source, &ib.source) {
                if s1 != s2 {
                    out.push(Change::Kind("changed link".into()));
                }
            }
        }
        if let (Some(c1), Some(c2)) = (&ia.chunks, &ib.chunks) {
            if a.deleted {
                out.push(Change::Added { size: b.size() });
            } else if b.deleted {
                out.push(Change::Removed { size: a.size() });
            } else if !self.can_compare_chunk_ids {
                out.push(Change::Modified {
                    added: None,
                    removed: None,
                });
            } else {
                let ids1: HashSet<[u8; 32]> = c1.iter().map(|c| c.id).collect();
                let ids2: HashSet<[u8; 32]> = c2.iter().map(|c| c.id).collect();
                let added = c2
                    .iter()
                    .filter(|c| !ids1.contains(&c.id))
                    .map(|c| u64::from(c.size))
                    .sum();
                let removed = c1
                    .iter()
                    .filter(|c| !ids2.contains(&c.id))
                    .map(|c| u64::from(c.size))
                    .sum();
                out.push(Change::Modified {
                    added: Some(added),
                    removed: Some(removed),
                });
            }
        }
        for (ft, what) in [
            (S_IFDIR, "directory"),
            (S_IFBLK, "blkdev"),
            (S_IFCHR, "chrdev"),
            (S_IFIFO, "fifo"),
        ] {
            if a.ftype() == ft || b.ftype() == ft {
                if !a.deleted && b.deleted {
                    out.push(Change::Kind(format!("removed {what}")));
                } else if a.deleted && !b.deleted {
                    out.push(Change::Kind(format!("added {what}")));
                }
            }
        }
        if !self.content_only && !a.deleted && !b.deleted {
            if (&ia.user, &ia.group) != (&ib.user, &ib.group) {
                out.push(Change::Owner {
                    old_user: name(&ia.user),
                    old_group: name(&ia.group),
                    new_user: name(&ib.user),
                    new_group: name(&ib.group),
                });
            }
            if ia.mode != ib.mode {
                out.push(Change::Mode {
                    old: filemode(ia.mode),
                    new: filemode(ib.mode),
                });
            }
            if let (Some(t1), Some(t2)) = (ia.ctime, ib.ctime) {
                if t1 != t2 {
                    out.push(Change::Time {
                        attr: "ctime",
                        old: t1,
                        new: t2,
                    });
                }
            }
            if ia.mtime != ib.mtime {
                out.push(Change::Time {
                    attr: "mtime",
                    old: ia.mtime,
                    new: ib.mtime,
                });
            }
        }
        out
    }
}

/// Reads the plaintext of a chunk list piece by piece.
struct ChunkStream<'c> {
    chunks: &'c [ChunkRef],
    next: usize,
    pending: Vec<u8>,
}

impl<'c> ChunkStream<'c> {
    fn new(chunks: &'c [ChunkRef]) -> Self {
        ChunkStream {
            chunks,
            next: 0,
            pending: Vec::new(),
        }
    }

    fn unread(&mut self, rest: &[u8]) {
        self.pending = rest.to_vec();
    }

    fn next(&mut self, store: &mut KeyedRepository) -> Result<Option<Vec<u8>>> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        while let Some(c) = self.chunks.get(self.next) {
            self.next += 1;
            let data = store.get(&c.id, Some(c.size as usize))?;
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}

fn load_items(
    store: &mut KeyedRepository,
    meta: &ArchiveMeta,
    filter: &mut dyn FnMut(&[u8]) -> bool,
    consider_part_files: bool,
) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut items = Items::new(store, meta);
    while let Some(item) = items.next_item()? {
        if (consider_part_files || item.part.is_none()) && filter(&item.path) {
            out.push(item);
        }
    }
    Ok(out)
}

/// Compares two archives of the repository in `loc` (`loc.archive` is the first).
pub fn run(
    loc: &Location,
    archive2: &str,
    opts: &DiffOptions,
    filter: PathFilter<'_>,
    confirm: Confirm<'_>,
) -> Result<DiffResult> {
    let (mut opened, meta1) = extract::open_archive(loc, opts.lock, confirm)?;
    let meta2 = extract::load_named(&mut opened, archive2)?;
    diff_archives(&mut opened.store, &meta1, &meta2, opts, filter)
}

/// Compares two loaded archives.
pub fn diff_archives(
    store: &mut KeyedRepository,
    meta1: &ArchiveMeta,
    meta2: &ArchiveMeta,
    opts: &DiffOptions,
    filter: PathFilter<'_>,
) -> Result<DiffResult> {
    let mut result = DiffResult::default();
    let can_compare_chunk_ids = if opts.same_chunker_params {
        true
    } else {
        match (&meta1.chunker_params, &meta2.chunker_params) {
            (Some(_), Some(_)) => {
                let same = match (meta1.chunker_params(), meta2.chunker_params()) {
                    (Some(a), Some(b)) => a == b,
                    _ => meta1.chunker_params == meta2.chunker_params,
                };
                if !same {
                    result.warnings.push(
                        "--chunker-params are different between archives, diff will be slow."
                            .into(),
                    );
                }
                same
            }
            _ => {
                result.warnings.push("--chunker-params might be different between archives, diff will be slow.\nIf you know for certain that they are the same, pass --same-chunker-params to override this check.".into());
                false
            }
        }
    };
    let items1 = load_items(store, meta1, filter, opts.consider_part_files)?;
    let items2 = load_items(store, meta2, filter, opts.consider_part_files)?;
    let mut cmp = Comparer {
        store,
        can_compare_chunk_ids,
        content_only: opts.content_only,
        masters: HashMap::new(),
    };
    let mut orphans1: OrderedMap<Side> = OrderedMap::default();
    let mut orphans2: OrderedMap<Side> = OrderedMap::default();
    let mut deferred: Vec<(Side, Side)> = Vec::new();
    let mut out: Vec<Entry> = Vec::new();

    let mut emit = |cmp: &mut Comparer<'_>, a: Side, b: Side, out: &mut Vec<_>| -> Result<()> {
        cmp.update_masters(&a, &b);
        if !cmp.master_seen(&a) || !cmp.master_seen(&b) {
            deferred.push((a, b));
            return Ok(());
        }
        let path = a.item.path.clone();
        if let Some((ch, facts)) = cmp.compare(a, b)? {
            out.push((path, ch, facts));
        }
        Ok(())
    };

    let n = items1.len().max(items2.len());
    let mut it1 = items1.into_iter();
    let mut it2 = items2.into_iter();
    for _ in 0..n {
        let i1 = it1.next();
        let i2 = it2.next();
        if let (Some(a), Some(b)) = (&i1, &i2) {
            if a.path == b.path {
                let (a, b) = (i1.map(Side::present), i2.map(Side::present));
                if let (Some(a), Some(b)) = (a, b) {
                    emit(&mut cmp, a, b, &mut out)?;
                }
                continue;
            }
        }
        if let Some(a) = i1 {
            match orphans2.remove(&a.path) {
                Some(b) => emit(&mut cmp, Side::present(a), b, &mut out)?,
                None => orphans1.insert(a.path.clone(), Side::present(a)),
            }
        }
        if let Some(b) = i2 {
            match orphans1.remove(&b.path) {
                Some(a) => emit(&mut cmp, a, Side::present(b), &mut out)?,
                None => orphans2.insert(b.path.clone(), Side::present(b)),
            }
        }
    }
    for added in orphans2.into_values() {
        let del = Side::deleted(&added.item.path);
        cmp.update_masters(&del, &added);
        let path = added.item.path.clone();
        if let Some((ch, facts)) = cmp.compare(del, added)? {
            out.push((path, ch, facts));
        }
    }
    for removed in orphans1.into_values() {
        let del = Side::deleted(&removed.item.path);
        cmp.update_masters(&removed, &del);
        let path = removed.item.path.clone();
        if let Some((ch, facts)) = cmp.compare(removed, del)? {
            out.push((path, ch, facts));
        }
    }
    for (a, b) in std::mem::take(&mut deferred) {
        let path = a.item.path.clone();
        if let Some((ch, facts)) = cmp.compare(a, b)? {
            out.push((path, ch, facts));
        }
    }
    if !opts.sort_by.is_empty() {
        sort_entries(&mut out, &opts.sort_by);
    } else if opts.sort {
        out.sort_by(|x, y| x.0.cmp(&y.0));
    }
    result.entries = out.into_iter().map(|(p, c, _)| (p, c)).collect();
    Ok(result)
}

/// A small insertion-ordered map keyed by path (Python's `OrderedDict` use in borg).
mod indexmap_lite {
    use std::collections::HashMap;

    /// Insertion-ordered map from paths to values.
    pub struct OrderedMap<V> {
        slots: Vec<Option<V>>,
        index: HashMap<Vec<u8>, usize>,
    }

    impl<V> Default for OrderedMap<V> {
        fn default() -> Self {
            OrderedMap {
                slots: Vec::new(),
                index: HashMap::new(),
            }
        }
    }

    impl<V> OrderedMap<V> {
        /// Inserts (a new key goes to the end; an existing key keeps its place).
        pub fn insert(&mut self, k: Vec<u8>, v: V) {
            match self.index.get(&k) {
                Some(&i) => self.slots[i] = Some(v),
                None => {
                    self.index.insert(k, self.slots.len());
                    self.slots.push(Some(v));
                }
            }
        }

        /// Removes and returns the value of `k`.
        pub fn remove(&mut self, k: &[u8]) -> Option<V> {
            let i = self.index.remove(k)?;
            self.slots.get_mut(i).and_then(Option::take)
        }

        /// The remaining values in insertion order.
        pub fn into_values(self) -> impl Iterator<Item = V> {
            self.slots.into_iter().flatten()
        }
    }
}
