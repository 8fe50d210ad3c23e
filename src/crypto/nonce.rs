//! AES-CTR counter ("nonce") reservation, as borg's `NonceManager` does it (FORMAT.md §4.7).
//! The counter counts 16-byte blocks and must never repeat for a key; space is reserved in
//! the repository `nonce` file (through a [`NonceStore`]) and in the local security-dir `nonce`
//! file *before* any counter in it is used.

use std::path::PathBuf;

use super::CryptoError;
use crate::paths;

/// Blocks reserved beyond what is needed right now (borg's `NONCE_SPACE_RESERVATION`, 2^28).
pub const NONCE_SPACE_RESERVATION: u64 = 1 << 28;

/// The boxed error a [`NonceStore`] may return.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// The repository side of the reservation: borg's `get_free_nonce` /
/// `commit_nonce_reservation` repository calls (they need the exclusive lock).
pub trait NonceStore {
    /// The repository's first unreserved counter, `None` if it has no `nonce` file.
    fn get_free_nonce(&mut self) -> Result<Option<u64>, StoreError>;
    /// Stores `next_unreserved`; `start_nonce` is the value read before (compare-and-swap:
    /// the store must refuse if its current value differs).
    fn commit_nonce_reservation(
        &mut self,
        next_unreserved: u64,
        start_nonce: Option<u64>,
    ) -> Result<(), StoreError>;
}

/// Hands out AES-CTR counters for one session with one key.
#[derive(Debug, Clone)]
pub struct NonceManager {
    local_nonce_file: PathBuf,
    manifest_nonce: u64,
    next_iv: u64,
    end_of_reservation: Option<u64>,
}

/// Parses a `nonce` file's content: 16 hex digits, an 8-byte big-endian number.
pub fn parse_nonce_text(text: &str) -> Result<u64, CryptoError> {
    let t = text.trim();
    let mut b = [0u8; 8];
    hex::decode_to_slice(t, &mut b)
        .map_err(|_| CryptoError::Nonce(format!("invalid nonce file content {t:?}")))?;
    Ok(u64::from_be_bytes(b))
}

/// Formats a counter as a `nonce` file's content (16 lowercase hex digits, no newline).
pub fn format_nonce_text(n: u64) -> String {
    hex::encode(n.to_be_bytes())
}

impl NonceManager {
    /// A manager for this session. `local_nonce_file` is `<security dir>/<repo id hex>/nonce`;
    /// `manifest_nonce` is [`super::Key::manifest_nonce`] of the current manifest (0 for a new
    /// repository). The first counter handed out is at least `manifest_nonce`.
    pub fn new(local_nonce_file: PathBuf, manifest_nonce: u64) -> NonceManager {
        NonceManager {
            local_nonce_file,
            manifest_nonce,
            next_iv: manifest_nonce,
            end_of_reservation: None,
        }
    }

    /// The default local nonce file of a repository: `<security dir>/<repo id hex>/nonce`
    /// (FORMAT.md §4.8).
    pub fn local_nonce_file_for(repository_id: &[u8; 32]) -> PathBuf {
        paths::security_base_dir()
            .join(hex::encode(repository_id))
            .join("nonce")
    }

    /// The counter the next object would start at if the reservation covers it.
    pub fn next_iv(&self) -> u64 {
        self.next_iv
    }

    /// The end of the current reservation, if one was made.
    pub fn end_of_reservation(&self) -> Option<u64> {
        self.end_of_reservation
    }

    /// Like [`NonceManager::reserve`], but only from the space already reserved (and so
    /// already persisted): `None` when that does not cover `blocks` (then the caller, who
    /// owns the repository, must call [`NonceManager::reserve`]). Never does I/O.
    pub fn take_reserved(&mut self, blocks: u64) -> Option<u64> {
        let end = self.end_of_reservation?;
        let after = self.next_iv.checked_add(blocks)?;
        if after > end {
            return None;
        }
        let iv = self.next_iv;
        self.next_iv = after;
        Some(iv)
    }

    fn read_local(&self) -> Result<Option<u64>, CryptoError> {
        match std::fs::read_to_string(&self.local_nonce_file) {
            Ok(t) => parse_nonce_text(&t).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CryptoError::Io(format!(
                "{}: {e}",
                self.local_nonce_file.display()
            ))),
        }
    }

    fn commit_local(&self, next_unreserved: u64, start: Option<u64>) -> Result<(), CryptoError> {
        if self.read_local()? != start {
            return Err(CryptoError::Nonce(
                "nonce space reservation with mismatched previous state".into(),
            ));
        }
        let io = |e: std::io::Error| {
            CryptoError::Io(format!("{}: {e}", self.local_nonce_file.display()))
        };
        if let Some(dir) = self.local_nonce_file.parent() {
            paths::ensure_dir(dir).map_err(io)?;
        }
        paths::write_atomic(
            &self.local_nonce_file,
            format_nonce_text(next_unreserved).as_bytes(),
        )
        .map_err(io)
    }

    /// Returns the counter to encrypt the next object with, which needs `blocks` blocks
    /// ([`super::Key::blocks_for`] of its framed length), and advances past it. When the
    /// current reservation does not cover it, reserves
    /// `[max(repo, local, manifest, previous end), … + blocks + 2^28)` first: repository file
    /// (compare-and-swap through `store`), then the local file (atomic write).
    pub fn reserve(&mut self, store: &mut dyn NonceStore, blocks: u64) -> Result<u64, CryptoError> {
        if let Some(iv) = self.take_reserved(blocks) {
            return Ok(iv);
        }
        let repo = store
            .get_free_nonce()
            .map_err(|e| CryptoError::Nonce(format!("reading the repository nonce: {e}")))?;
        let local = self.read_local()?;
        let free = [
            repo,
            local,
            Some(self.manifest_nonce),
            self.end_of_reservation,
            Some(self.next_iv),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        let end = free
            .checked_add(blocks)
            .and_then(|x| x.checked_add(NONCE_SPACE_RESERVATION))
            .filter(|x| *x < u64::MAX)
            .ok_or_else(|| CryptoError::Nonce("AES-CTR counter space exhausted".into()))?;
        store
            .commit_nonce_reservation(end, repo)
            .map_err(|e| CryptoError::Nonce(format!("reserving repository nonce space: {e}")))?;
        self.commit_local(end, local)?;
        self.end_of_reservation = Some(end);
        self.next_iv = free + blocks;
        Ok(free)
    }
}

/// A [`NonceManager`] shared between threads: the owner of the repository extends the
/// reservation ([`NonceManager::reserve`]); worker threads encrypting in parallel take unique
/// counters from what is already reserved ([`SharedNonces::take_reserved`]). Every counter is
/// handed out exactly once, under the lock.
#[derive(Debug, Clone, Default)]
pub struct SharedNonces(std::sync::Arc<std::sync::Mutex<Option<NonceManager>>>);

impl SharedNonces {
    /// Locks the manager (`None` until the first encryption set it up).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Option<NonceManager>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A counter for an object of `blocks` blocks from the persisted reservation, if it
    /// covers it (see [`NonceManager::take_reserved`]).
    pub fn take_reserved(&self, blocks: u64) -> Option<u64> {
        self.lock().as_mut()?.take_reserved(blocks)
    }
}

/// A [`NonceStore`] kept in memory (tests, and repositories without a `nonce` file API).
#[derive(Debug, Clone, Default)]
pub struct MemoryNonceStore {
    /// The stored value (`None` = no repository nonce file).
    pub value: Option<u64>,
}

impl NonceStore for MemoryNonceStore {
    fn get_free_nonce(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(self.value)
    }

    fn commit_nonce_reservation(
        &mut self,
        next_unreserved: u64,
        start_nonce: Option<u64>,
    ) -> Result<(), StoreError> {
        if self.value != start_nonce {
            return Err("nonce space reservation with mismatched previous state".into());
        }
        self.value = Some(next_unreserved);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        assert_eq!(format_nonce_text(0x1000001c), "000000001000001c");
        assert_eq!(parse_nonce_text("000000001000001c").unwrap(), 0x1000001c);
        assert!(parse_nonce_text("xyz").is_err());
    }

    #[test]
    fn fresh_repository_like_borg_init() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("sec").join("nonce");
        let mut store = MemoryNonceStore::default();
        let mut nm = NonceManager::new(local.clone(), 0);
        // borg init encrypts the manifest (28 blocks) first
        assert_eq!(nm.reserve(&mut store, 28).unwrap(), 0);
        assert_eq!(store.value, Some(0x1000001c));
        assert_eq!(std::fs::read_to_string(&local).unwrap(), "000000001000001c");
        assert_eq!(nm.reserve(&mut store, 2).unwrap(), 28);
        assert_eq!(nm.reserve(&mut store, 5).unwrap(), 30);
        assert_eq!(store.value, Some(0x1000001c));
    }

    #[test]
    fn never_reuses_across_sessions_and_respects_max() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("nonce");
        let mut store = MemoryNonceStore { value: Some(1000) };
        let mut used: Vec<(u64, u64)> = vec![];
        let mut nm = NonceManager::new(local.clone(), 0);
        let iv = nm.reserve(&mut store, 10).unwrap();
        assert_eq!(iv, 1000);
        used.push((iv, 10));
        // next session: repo was rolled back, but local file protects
        store.value = Some(5);
        let mut nm = NonceManager::new(local.clone(), 0);
        let iv = nm.reserve(&mut store, 3).unwrap();
        assert!(iv >= 1000 + 10 + NONCE_SPACE_RESERVATION);
        used.push((iv, 3));
        // manifest nonce higher than both
        let m = iv + (1 << 40);
        let mut nm = NonceManager::new(local.clone(), m);
        let iv = nm.reserve(&mut store, 1).unwrap();
        assert_eq!(iv, m);
        used.push((iv, 1));
        // repo higher than local and manifest
        let r = m + (1 << 41);
        store.value = Some(r);
        let mut nm = NonceManager::new(local.clone(), 0);
        let iv = nm.reserve(&mut store, 1).unwrap();
        assert_eq!(iv, r);
        used.push((iv, 1));
        // exhaust a reservation within a session: new reservation follows
        let start = nm.next_iv();
        let iv2 = nm.reserve(&mut store, NONCE_SPACE_RESERVATION).unwrap();
        assert!(iv2 >= start);
        used.push((iv2, NONCE_SPACE_RESERVATION));
        used.sort();
        for w in used.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlap {w:?}");
        }
    }

    #[test]
    fn shared_counters_are_unique_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedNonces::default();
        assert_eq!(shared.take_reserved(1), None, "nothing reserved yet");
        let mut store = MemoryNonceStore::default();
        let first = {
            let mut g = shared.lock();
            let nm = g.insert(NonceManager::new(dir.path().join("nonce"), 0));
            nm.reserve(&mut store, 3).unwrap()
        };
        assert_eq!(first, 0);
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let s = shared.clone();
                std::thread::spawn(move || {
                    (0..500)
                        .map(|i| {
                            let blocks = 1 + (i + t) % 3;
                            (s.take_reserved(blocks).unwrap(), blocks)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut used: Vec<(u64, u64)> = vec![(first, 3)];
        for h in handles {
            used.extend(h.join().unwrap());
        }
        used.sort();
        for w in used.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlap {w:?}");
        }
        // beyond the reservation: refused without I/O
        assert_eq!(shared.take_reserved(NONCE_SPACE_RESERVATION), None);
        assert_eq!(store.value, Some(3 + NONCE_SPACE_RESERVATION));
    }

    #[test]
    fn local_file_changed_behind_our_back() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("nonce");
        let mut store = MemoryNonceStore::default();
        let mut nm = NonceManager::new(local.clone(), 0);
        nm.reserve(&mut store, 1).unwrap();
        std::fs::write(&local, "garbage").unwrap();
        let mut nm2 = NonceManager::new(local, 0);
        assert!(nm2.reserve(&mut store, 1).is_err());
    }
}
