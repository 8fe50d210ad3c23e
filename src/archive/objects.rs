//! From plaintext to repository object and back: compression, encryption with counters that
//! are never reused, and the id check on every read (spec §4.5–§4.7).

use crate::compress::{self, Compression};
use crate::crypto::{Key, NonceManager, NonceStore};
use crate::repo::{RepoError, Repository};

use super::ArchiveError;

/// The manifest's repository key: 32 zero bytes.
pub const MANIFEST_ID: [u8; 32] = [0; 32];

/// Adapts a repository to the crypto layer's nonce store.
struct RepoNonces<'a>(&'a mut dyn Repository);

impl NonceStore for RepoNonces<'_> {
    fn get_free_nonce(&mut self) -> Result<Option<u64>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.get_free_nonce()?)
    }

    fn commit_nonce_reservation(
        &mut self,
        next_unreserved: u64,
        start_nonce: Option<u64>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self
            .0
            .commit_nonce_reservation(next_unreserved, start_nonce)?)
    }
}

/// Decrypts and decompresses an object with `key`; checks its id unless it is the manifest
/// (what [`ObjectStore::decode`] does, usable without the store, e.g. on worker threads).
pub fn decode_object(
    key: &Key,
    id: &[u8; 32],
    object: &[u8],
    size_hint: Option<usize>,
) -> Result<Vec<u8>, ArchiveError> {
    let framed = key.decrypt(object)?;
    let plain = compress::decompress(&framed, size_hint)?;
    if *id != MANIFEST_ID && key.id_hash(&plain) != *id {
        return Err(ArchiveError::IdMismatch(hex::encode(id)));
    }
    Ok(plain)
}

/// A repository together with its key, the compression for new objects and the counter
/// reservation. Everything above the repository reads and writes objects through this.
pub struct ObjectStore {
    /// The repository.
    pub repo: Box<dyn Repository>,
    /// The repository's key.
    pub key: Key,
    /// Compression for objects written from now on.
    pub compression: Compression,
    nonces: Option<NonceManager>,
    local_nonce_file: std::path::PathBuf,
}

impl ObjectStore {
    /// Wraps an open repository. `local_nonce_file` is the security dir's `nonce` file.
    pub fn new(
        repo: Box<dyn Repository>,
        key: Key,
        compression: Compression,
        local_nonce_file: std::path::PathBuf,
    ) -> Self {
        ObjectStore {
            repo,
            key,
            compression,
            nonces: None,
            local_nonce_file,
        }
    }

    /// Reads the raw manifest object, if there is one.
    pub fn get_manifest_object(&mut self) -> Result<Option<Vec<u8>>, ArchiveError> {
        match self.repo.get(&MANIFEST_ID) {
            Ok(data) => Ok(Some(data)),
            Err(RepoError::ObjectNotFound(..)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Decrypts and decompresses an object; checks its id unless it is the manifest.
    pub fn decode(
        &self,
        id: &[u8; 32],
        object: &[u8],
        size_hint: Option<usize>,
    ) -> Result<Vec<u8>, ArchiveError> {
        decode_object(&self.key, id, object, size_hint)
    }

    /// Fetches and decodes an object.
    pub fn get(
        &mut self,
        id: &[u8; 32],
        size_hint: Option<usize>,
    ) -> Result<Vec<u8>, ArchiveError> {
        let object = self.repo.get(id)?;
        self.decode(id, &object, size_hint)
    }

    /// Compresses and encrypts `plaintext` into a repository object (reserving counters).
    pub fn encode(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        let framed = compress::compress(&self.compression, plaintext);
        self.seal(&framed)
    }

    fn seal(&mut self, framed: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        if !self.key.key_type().is_encrypting() {
            return Ok(self.key.encrypt(framed, 0));
        }
        let blocks = Key::blocks_for(framed.len());
        if self.nonces.is_none() {
            let manifest_nonce = match self.get_manifest_object()? {
                Some(obj) => Key::object_iv(&obj)
                    .map(|iv| iv + Key::blocks_for(obj.len()))
                    .unwrap_or(0),
                None => 0,
            };
            self.nonces = Some(NonceManager::new(
                self.local_nonce_file.clone(),
                manifest_nonce,
            ));
        }
        let nonces = self
            .nonces
            .as_mut()
            .ok_or_else(|| ArchiveError::Corrupt("nonce manager".into()))?;
        let iv = nonces.reserve(&mut RepoNonces(self.repo.as_mut()), blocks)?;
        Ok(self.key.encrypt(framed, iv))
    }

    /// Stores `plaintext` under its id hash; returns (id, stored object length = csize).
    pub fn put(&mut self, plaintext: &[u8]) -> Result<([u8; 32], usize), ArchiveError> {
        let id = self.key.id_hash(plaintext);
        let object = self.encode(plaintext)?;
        self.repo.put(&id, &object)?;
        Ok((id, object.len()))
    }

    /// Writes the manifest object (the plaintext is already packed with its TAM).
    pub fn put_manifest(&mut self, plaintext: &[u8]) -> Result<(), ArchiveError> {
        let object = self.encode(plaintext)?;
        self.repo.put(&MANIFEST_ID, &object)?;
        Ok(())
    }
}
