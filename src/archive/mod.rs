//! The archive layer: the manifest, archive metadata and the item model (FORMAT.md §7), and
//! [`objects::KeyedRepository`], which turns plaintext into repository objects and back
//! (compress → encrypt → put; get → decrypt → decompress → id check).
//! It never prints and never touches the filesystem being backed up.

pub mod item;
pub mod manifest;
pub mod meta;
pub mod objects;
pub mod pool;
pub mod stream;

pub use manifest::{ArchiveRef, Manifest, Operation};
pub use objects::{KeyedRepository, MANIFEST_ID};

/// Errors of the archive layer.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A repository error.
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// A key, MAC or TAM error.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// Undecodable compressed data.
    #[error(transparent)]
    Compress(#[from] crate::compress::CompressError),
    /// An object whose plaintext does not hash to its id.
    #[error("Object with ID {0} failed the ID check (data corrupted or wrong key)")]
    IdMismatch(String),
    /// Structurally invalid metadata.
    #[error("{0}")]
    Corrupt(String),
    /// The repository has no manifest.
    #[error("Repository has no manifest.")]
    NoManifest,
    /// The manifest demands features this version lacks.
    #[error("Unsupported repository feature(s) {}. A newer version of Borg is required to access this repository.", manifest::python_list(.0))]
    MandatoryFeatureUnsupported(Vec<String>),
}
