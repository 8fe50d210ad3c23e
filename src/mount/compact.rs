//! Compact in-memory storage of a mount's inodes and directory entries.
//!
//! A mount of a large archive holds one inode per item, so the per-inode cost decides its
//! memory. An inode here is one fixed 44-byte record: size, mtime, ctime, where its packed
//! item lives in the spool, its parent, and the number of a *shape* (mode, owner, group,
//! device, damaged flag) kept once for all inodes that share it. The rare values that differ
//! from the common case (an atime other than the mtime, a link count above 1) live in side
//! maps. Directory entries are 16-byte records whose names sit in one byte arena; a directory
//! lists its entries by number, and one open-addressing table keyed by (directory, name) finds
//! an entry without any per-name allocation.

use std::collections::HashMap;

use xxhash_rust::xxh64::xxh64;

use super::node::{Attr, Node};

/// `spool_off` of an inode without a packed item (a synthetic directory).
const NO_SPOOL: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u32,
    damaged: bool,
}

#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct Rec {
    size: u64,
    mtime: i64,
    ctime: i64,
    spool_off: u64,
    parent: u32,
    spool_len: u32,
    shape: u32,
}

/// The inodes, numbered from 1.
#[derive(Debug, Default)]
pub struct Nodes {
    recs: Vec<Rec>,
    shapes: Vec<Shape>,
    shape_ids: HashMap<Shape, u32>,
    atimes: HashMap<u32, i64>,
    nlinks: HashMap<u32, u32>,
}

impl Nodes {
    /// Number of inodes.
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    fn index(ino: u64) -> Option<usize> {
        ino.checked_sub(1).map(|i| i as usize)
    }

    fn shape_of(&mut self, attr: &Attr, damaged: bool) -> u32 {
        let s = Shape {
            mode: attr.mode,
            uid: attr.uid,
            gid: attr.gid,
            rdev: attr.rdev,
            damaged,
        };
        if let Some(&i) = self.shape_ids.get(&s) {
            return i;
        }
        let i = self.shapes.len() as u32;
        self.shapes.push(s);
        self.shape_ids.insert(s, i);
        i
    }

    fn set_attr_at(&mut self, i: usize, attr: &Attr, damaged: bool) {
        let shape = self.shape_of(attr, damaged);
        let key = i as u32;
        let r = &mut self.recs[i];
        r.size = attr.size;
        r.mtime = attr.mtime;
        r.ctime = attr.ctime;
        r.shape = shape;
        if attr.atime != attr.mtime {
            self.atimes.insert(key, attr.atime);
        } else {
            self.atimes.remove(&key);
        }
        if attr.nlink != 1 {
            self.nlinks.insert(key, attr.nlink);
        } else {
            self.nlinks.remove(&key);
        }
    }

    /// Adds an inode; returns its number, `None` when inode numbers are exhausted (the
    /// table counts them in 32 bits).
    pub fn push(&mut self, node: &Node) -> Option<u64> {
        let i = self.recs.len();
        u32::try_from(i + 1).ok()?;
        let (spool_off, spool_len) = node.spool.unwrap_or((NO_SPOOL, 0));
        self.recs.push(Rec {
            size: 0,
            mtime: 0,
            ctime: 0,
            spool_off,
            parent: u32::try_from(node.parent).unwrap_or(0),
            spool_len,
            shape: 0,
        });
        self.set_attr_at(i, &node.attr, node.damaged);
        Some(i as u64 + 1)
    }

    /// The inode `ino`.
    pub fn get(&self, ino: u64) -> Option<Node> {
        let i = Self::index(ino)?;
        let r = *self.recs.get(i)?;
        let s = self.shapes.get(r.shape as usize)?;
        let key = i as u32;
        Some(Node {
            parent: u64::from(r.parent),
            attr: Attr {
                mode: s.mode,
                uid: s.uid,
                gid: s.gid,
                nlink: self.nlinks.get(&key).copied().unwrap_or(1),
                rdev: s.rdev,
                size: r.size,
                mtime: r.mtime,
                atime: self.atimes.get(&key).copied().unwrap_or(r.mtime),
                ctime: r.ctime,
            },
            spool: (r.spool_off != NO_SPOOL).then_some((r.spool_off, r.spool_len)),
            damaged: s.damaged,
        })
    }

    /// Replaces the attributes and packed item of `ino` (a directory item arriving after a
    /// synthetic directory was made for it).
    pub fn replace(&mut self, ino: u64, attr: &Attr, spool: (u64, u32)) {
        let Some(i) = Self::index(ino).filter(|&i| i < self.recs.len()) else {
            return;
        };
        let damaged = self.shapes[self.recs[i].shape as usize].damaged;
        self.recs[i].spool_off = spool.0;
        self.recs[i].spool_len = spool.1;
        self.set_attr_at(i, attr, damaged);
    }

    /// Counts one more hardlink to `ino`.
    pub fn add_link(&mut self, ino: u64) {
        if let Some(i) = Self::index(ino).filter(|&i| i < self.recs.len()) {
            *self.nlinks.entry(i as u32).or_insert(1) += 1;
        }
    }

    /// Sets the parent of `ino`.
    pub fn set_parent(&mut self, ino: u64, parent: u64) {
        if let Some(r) = Self::index(ino).and_then(|i| self.recs.get_mut(i)) {
            r.parent = u32::try_from(parent).unwrap_or(0);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    name_off: u32,
    name_len: u32,
    dir: u32,
    child: u32,
}

/// The directory entries of all directories.
#[derive(Debug, Default)]
pub struct Dirs {
    entries: Vec<Entry>,
    names: Vec<u8>,
    /// Directory inode → its entries (numbers in `entries`), in insertion order.
    lists: HashMap<u32, Vec<u32>>,
    /// Open addressing over `entries` (number + 1, 0 = empty), keyed by (directory, name).
    table: Vec<u32>,
}

fn slot(dir: u32, name: &[u8], mask: usize) -> usize {
    xxh64(name, u64::from(dir)) as usize & mask
}

impl Dirs {
    fn name(&self, e: &Entry) -> &[u8] {
        let start = e.name_off as usize;
        &self.names[start..start + e.name_len as usize]
    }

    fn find(&self, dir: u32, name: &[u8]) -> Result<usize, usize> {
        if self.table.is_empty() {
            return Err(usize::MAX);
        }
        let mask = self.table.len() - 1;
        let mut s = slot(dir, name, mask);
        loop {
            match self.table[s] {
                0 => return Err(s),
                n => {
                    let e = &self.entries[n as usize - 1];
                    if e.dir == dir && self.name(e) == name {
                        return Ok(n as usize - 1);
                    }
                    s = (s + 1) & mask;
                }
            }
        }
    }

    fn grow(&mut self) {
        // At most 80 % full.
        let want = (self.entries.len() + 1).max(8).saturating_mul(5) / 4;
        let cap = want.next_power_of_two();
        if cap <= self.table.len() {
            return;
        }
        self.table = vec![0u32; cap];
        let mask = cap - 1;
        for (i, e) in self.entries.iter().enumerate() {
            let mut s = slot(e.dir, self.name(e), mask);
            while self.table[s] != 0 {
                s = (s + 1) & mask;
            }
            self.table[s] = i as u32 + 1;
        }
    }

    /// The inode `name` in directory `dir` names.
    pub fn lookup(&self, dir: u64, name: &[u8]) -> Option<u64> {
        let dir = u32::try_from(dir).ok()?;
        let i = self.find(dir, name).ok()?;
        Some(u64::from(self.entries[i].child))
    }

    /// Sets `name` in directory `dir` to `child`: in place if the name exists, else appended.
    pub fn insert(&mut self, dir: u64, name: &[u8], child: u64) {
        let (Ok(dir), Ok(child)) = (u32::try_from(dir), u32::try_from(child)) else {
            return;
        };
        if let Ok(i) = self.find(dir, name) {
            self.entries[i].child = child;
            return;
        }
        if (self.entries.len() + 1) * 5 > self.table.len() * 4 {
            self.grow();
        }
        // Names are addressed in 32 bits: beyond 4 GiB of names an entry is left out.
        let Ok(name_off) = u32::try_from(self.names.len()) else {
            return;
        };
        let Ok(name_len) = u32::try_from(name.len()) else {
            return;
        };
        let Err(s) = self.find(dir, name) else { return };
        let n = self.entries.len() as u32;
        self.entries.push(Entry {
            name_off,
            name_len,
            dir,
            child,
        });
        self.names.extend_from_slice(name);
        self.table[s] = n + 1;
        self.lists.entry(dir).or_default().push(n);
    }

    /// Gives back the growth room of the directory lists (after an archive is loaded).
    pub fn shrink(&mut self) {
        for l in self.lists.values_mut() {
            l.shrink_to_fit();
        }
    }

    /// Number of entries in directory `dir`.
    pub fn len_of(&self, dir: u64) -> usize {
        u32::try_from(dir)
            .ok()
            .and_then(|d| self.lists.get(&d))
            .map_or(0, Vec::len)
    }

    /// The `i`-th entry of directory `dir` (name, inode), in insertion order.
    pub fn entry(&self, dir: u64, i: usize) -> Option<(&[u8], u64)> {
        let d = u32::try_from(dir).ok()?;
        let n = *self.lists.get(&d)?.get(i)?;
        let e = &self.entries[n as usize];
        Some((self.name(e), u64::from(e.child)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(mode: u32, mtime: i64) -> Attr {
        Attr {
            mode,
            uid: 1,
            gid: 2,
            nlink: 1,
            rdev: 0,
            size: 7,
            mtime,
            atime: mtime,
            ctime: mtime + 1,
        }
    }

    #[test]
    fn nodes_round_trip_and_share_shapes() {
        let mut n = Nodes::default();
        let a = Node {
            parent: 1,
            attr: attr(0o100644, 5),
            spool: Some((10, 3)),
            damaged: false,
        };
        let mut b = a.clone();
        b.attr.atime = 99;
        b.attr.nlink = 3;
        b.damaged = true;
        b.spool = None;
        let ia = n.push(&a).unwrap();
        let ib = n.push(&b).unwrap();
        assert_eq!(n.get(ia).unwrap().attr, a.attr);
        let gb = n.get(ib).unwrap();
        assert_eq!((gb.attr, gb.spool, gb.damaged), (b.attr, None, true));
        for _ in 0..100 {
            n.push(&a).unwrap();
        }
        assert_eq!(n.shapes.len(), 2);
        n.add_link(ia);
        assert_eq!(n.get(ia).unwrap().attr.nlink, 2);
        n.replace(ia, &attr(0o40755, 8), (20, 4));
        let g = n.get(ia).unwrap();
        assert_eq!(
            (g.attr.mode, g.attr.mtime, g.spool),
            (0o40755, 8, Some((20, 4)))
        );
        assert!(n.get(0).is_none() && n.get(1000).is_none());
    }

    #[test]
    fn dirs_keep_order_and_replace_in_place() {
        let mut d = Dirs::default();
        for i in 0..1000u64 {
            d.insert(1 + i % 3, format!("n{i}").as_bytes(), i + 10);
        }
        d.insert(2, b"n1", 5);
        assert_eq!(d.lookup(2, b"n1"), Some(5));
        assert_eq!(d.lookup(1, b"n1"), None);
        assert_eq!(d.lookup(1, b"n3"), Some(13));
        assert_eq!(d.len_of(2), 333);
        assert_eq!(d.entry(2, 0), Some((&b"n1"[..], 5)));
        assert_eq!(d.entry(2, 1), Some((&b"n4"[..], 14)));
        assert_eq!(d.entry(2, 333), None);
        assert_eq!(d.len_of(9), 0);
    }
}
