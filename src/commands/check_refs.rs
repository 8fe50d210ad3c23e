//! The reference counts of `check`'s archives part (borg's `ChunkIndex` of refcounts): one
//! open-addressing table of 36-byte buckets (32-byte id, u32 count), sized from the number of
//! objects the repository lists, so it costs about 45 bytes per object (a general hash map
//! with growth slack costs twice that).

/// Marks an empty bucket.
const EMPTY: u32 = u32::MAX;
/// Marks a removed entry.
const DELETED: u32 = u32::MAX - 1;
/// Largest count kept (counts saturate there).
const MAX_COUNT: u32 = u32::MAX - 2;
/// Fill at which the table grows.
const MAX_LOAD: f64 = 0.85;

/// Object id → reference count.
#[derive(Debug, Clone)]
pub struct RefCounts {
    keys: Vec<[u8; 32]>,
    counts: Vec<u32>,
    len: usize,
    /// Buckets not empty (entries and tombstones).
    used: usize,
}

fn start(id: &[u8; 32], n: usize) -> usize {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id[..8]);
    (u64::from_le_bytes(b) % n as u64) as usize
}

impl RefCounts {
    /// An empty table with room for `entries` entries.
    pub fn with_capacity(entries: usize) -> Self {
        let n = ((entries as f64 / 0.75) as usize).max(16);
        RefCounts {
            keys: vec![[0u8; 32]; n],
            counts: vec![EMPTY; n],
            len: 0,
            used: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `Ok(bucket)` of `id`, or `Err(bucket)` where it would go.
    fn find(&self, id: &[u8; 32]) -> Result<usize, usize> {
        let n = self.keys.len();
        let mut i = start(id, n);
        let mut tomb = None;
        loop {
            match self.counts[i] {
                EMPTY => return Err(tomb.unwrap_or(i)),
                DELETED => {
                    tomb.get_or_insert(i);
                }
                _ if self.keys[i] == *id => return Ok(i),
                _ => {}
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// The count of `id`.
    pub fn get(&self, id: &[u8; 32]) -> Option<u32> {
        self.find(id).ok().map(|i| self.counts[i])
    }

    /// Whether `id` is present.
    pub fn contains_key(&self, id: &[u8; 32]) -> bool {
        self.find(id).is_ok()
    }

    /// Adds one reference to a present `id`; false when absent.
    pub fn increment(&mut self, id: &[u8; 32]) -> bool {
        match self.find(id) {
            Ok(i) => {
                self.counts[i] = self.counts[i].saturating_add(1).min(MAX_COUNT);
                true
            }
            Err(_) => false,
        }
    }

    /// Sets the count of `id`.
    pub fn insert(&mut self, id: [u8; 32], count: u32) {
        match self.find(&id) {
            Ok(i) => self.counts[i] = count.min(MAX_COUNT),
            Err(i) => {
                if self.counts[i] == EMPTY {
                    self.used += 1;
                }
                self.keys[i] = id;
                self.counts[i] = count.min(MAX_COUNT);
                self.len += 1;
                if self.used as f64 > self.keys.len() as f64 * MAX_LOAD {
                    self.rebuild();
                }
            }
        }
    }

    /// Removes `id`.
    pub fn remove(&mut self, id: &[u8; 32]) {
        if let Ok(i) = self.find(id) {
            self.counts[i] = DELETED;
            self.len -= 1;
        }
    }

    fn rebuild(&mut self) {
        let mut t = RefCounts::with_capacity(self.len * 2);
        for (k, c) in self.keys.iter().zip(&self.counts) {
            if *c != EMPTY && *c != DELETED {
                t.insert(*k, *c);
            }
        }
        *self = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&(i % 7).to_le_bytes());
        k[8..12].copy_from_slice(&i.to_le_bytes());
        k
    }

    #[test]
    fn counts_grow_remove_and_saturate() {
        let mut t = RefCounts::with_capacity(10);
        for i in 0..5000 {
            t.insert(id(i), 0);
        }
        for i in (0..5000).step_by(2) {
            assert!(t.increment(&id(i)));
        }
        for i in (0..5000).step_by(5) {
            t.remove(&id(i));
        }
        assert!(!t.increment(&id(5)));
        for i in 0..5000 {
            let want = (i % 5 != 0).then_some(u32::from(i % 2 == 0));
            assert_eq!(t.get(&id(i)), want, "{i}");
        }
        assert_eq!(t.len(), 4000);
        t.insert(id(1), u32::MAX);
        t.increment(&id(1));
        assert_eq!(t.get(&id(1)), Some(MAX_COUNT));
    }
}
