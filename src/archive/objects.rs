//! From plaintext to repository object and back: compression, encryption with counters that
//! are never reused, and the id check on every read (FORMAT.md §4.5–§4.7).

use crate::compress::{self, Compression};
use crate::crypto::{Key, NonceManager, NonceStore, SharedNonces};
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
/// (what [`KeyedRepository::decode`] does, usable without the store, e.g. on worker threads).
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

/// [`decode_object`] of an object the caller owns: decrypted in place (no copy of the
/// ciphertext), same results and errors.
pub fn decode_owned(
    key: &Key,
    id: &[u8; 32],
    mut object: Vec<u8>,
    size_hint: Option<usize>,
) -> Result<Vec<u8>, ArchiveError> {
    let framed = key.open_in_place(&mut object)?;
    let plain = compress::decompress(framed, size_hint)?;
    if *id != MANIFEST_ID && key.id_hash(&plain) != *id {
        return Err(ArchiveError::IdMismatch(hex::encode(id)));
    }
    Ok(plain)
}

/// A repository together with its key, the compression for new objects and the counter
/// reservation. Everything above the repository reads and writes objects through this.
pub struct KeyedRepository {
    /// The repository.
    pub repo: Box<dyn Repository>,
    /// The repository's key.
    pub key: Key,
    /// Compression for objects written from now on.
    pub compression: Compression,
    nonces: SharedNonces,
    local_nonce_file: std::path::PathBuf,
}

impl KeyedRepository {
    /// Wraps an open repository. `local_nonce_file` is the security dir's `nonce` file.
    pub fn new(
        repo: Box<dyn Repository>,
        key: Key,
        compression: Compression,
        local_nonce_file: std::path::PathBuf,
    ) -> Self {
        KeyedRepository {
            repo,
            key,
            compression,
            nonces: SharedNonces::default(),
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

    /// Encrypts compression-framed bytes into a repository object, reserving counters (in
    /// the repository and the local nonce file, before use) when needed.
    pub fn seal(&mut self, framed: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        if !self.key.key_type().is_encrypting() {
            return Ok(self.key.encrypt(framed, 0));
        }
        let blocks = Key::blocks_for(framed.len());
        if self.nonces.lock().is_none() {
            let manifest_nonce = match self.get_manifest_object()? {
                Some(obj) => Key::object_iv(&obj)
                    .map(|iv| iv + Key::blocks_for(obj.len()))
                    .unwrap_or(0),
                None => 0,
            };
            *self.nonces.lock() = Some(NonceManager::new(
                self.local_nonce_file.clone(),
                manifest_nonce,
            ));
        }
        let shared = self.nonces.clone();
        let mut guard = shared.lock();
        let nonces = guard
            .as_mut()
            .ok_or_else(|| ArchiveError::Corrupt("nonce manager".into()))?;
        let iv = nonces.reserve(&mut RepoNonces(self.repo.as_mut()), blocks)?;
        drop(guard);
        Ok(self.key.encrypt(framed, iv))
    }

    /// An encoder for worker threads: compresses like this store and encrypts with counters
    /// from this store's reservation (see [`ObjectEncoder`]).
    pub fn encoder(&self) -> ObjectEncoder {
        ObjectEncoder {
            key: self.key.clone(),
            compression: self.compression.clone(),
            nonces: self.nonces.clone(),
        }
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

/// What an [`ObjectEncoder`] made of a plaintext.
#[derive(Debug)]
pub enum Encoded {
    /// The finished repository object.
    Sealed(Vec<u8>),
    /// Compressed only: the reservation did not cover it, so the repository's owner must
    /// [`KeyedRepository::seal`] it (which extends the reservation first).
    Framed(Vec<u8>),
}

/// Compression + encryption without the repository, for worker threads. Counters come from
/// the store's persisted reservation only ([`SharedNonces::take_reserved`]), so each
/// encryption gets its own counter and none is used before it is persisted.
#[derive(Debug, Clone)]
pub struct ObjectEncoder {
    key: Key,
    compression: Compression,
    nonces: SharedNonces,
}

impl ObjectEncoder {
    /// Compresses and, if a counter is available without I/O, encrypts `plaintext`.
    pub fn encode(&self, plaintext: &[u8]) -> Encoded {
        self.seal_framed(compress::compress(&self.compression, plaintext))
    }

    /// Like [`ObjectEncoder::encode`], freeing the plaintext as soon as it is compressed.
    pub fn encode_owned(&self, plaintext: Vec<u8>) -> Encoded {
        let framed = compress::compress(&self.compression, &plaintext);
        drop(plaintext);
        self.seal_framed(framed)
    }

    /// Like [`ObjectEncoder::encode`], compressing straight into the object buffer after
    /// room for the envelope and encrypting there (one allocation, no copies).
    pub fn encode_in_place(&self, plaintext: &[u8]) -> Encoded {
        let env = self.key.envelope_len();
        self.encode_into(plaintext, Vec::with_capacity(env + 2 + plaintext.len()))
    }

    /// Bytes an object buffer for `plaintext_len` bytes needs so that
    /// [`ObjectEncoder::encode_into`] with `none` or `lz4` never grows it.
    pub fn buffer_capacity(&self, plaintext_len: usize) -> usize {
        self.key.envelope_len() + 2 + plaintext_len
    }

    /// [`ObjectEncoder::encode_in_place`] into a buffer the caller supplies (e.g. one reused
    /// from an earlier object; its contents are discarded).
    pub fn encode_into(&self, plaintext: &[u8], mut object: Vec<u8>) -> Encoded {
        let env = self.key.envelope_len();
        object.clear();
        object.resize(env, 0);
        compress::compress_into(&self.compression, plaintext, &mut object);
        if !self.key.key_type().is_encrypting() {
            self.key.seal_in_place(&mut object, 0);
            return Encoded::Sealed(object);
        }
        match self
            .nonces
            .take_reserved(Key::blocks_for(object.len() - env))
        {
            Some(iv) => {
                self.key.seal_in_place(&mut object, iv);
                Encoded::Sealed(object)
            }
            None => {
                object.drain(..env);
                Encoded::Framed(object)
            }
        }
    }

    fn seal_framed(&self, framed: Vec<u8>) -> Encoded {
        if !self.key.key_type().is_encrypting() {
            return Encoded::Sealed(self.key.encrypt(&framed, 0));
        }
        match self.nonces.take_reserved(Key::blocks_for(framed.len())) {
            Some(iv) => Encoded::Sealed(self.key.encrypt(&framed, iv)),
            None => Encoded::Framed(framed),
        }
    }

    /// The key (for id hashing in the same worker).
    pub fn key(&self) -> &Key {
        &self.key
    }
}
