//! Errors of the crypto layer, with the messages borg 1.2 prints for them.

/// Everything that can go wrong in the crypto layer. `Display` gives borg's message text.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A TYPE byte no key class knows (`UnsupportedPayloadError`).
    #[error(
        "Unsupported payload type {0}. A newer version is required to access this repository."
    )]
    UnsupportedPayload(u8),
    /// A manifest starting with `c1c1c1c1` (`UnsupportedManifestError`).
    #[error(
        "Unsupported manifest envelope. A newer version is required to access this repository."
    )]
    UnsupportedManifest,
    /// An unknown `--encryption` value.
    #[error("Invalid encryption mode \"{0}\"")]
    InvalidEncryptionMode(String),
    /// Integrity failures (`IntegrityError`): bad MAC, wrong envelope, id mismatch.
    #[error("Data integrity error: {0}")]
    Integrity(String),
    /// The key blob's HMAC did not verify with the passphrase tried.
    #[error("passphrase is incorrect")]
    WrongPassphrase,
    /// A passphrase from BORG_PASSPHRASE / BORG_PASSCOMMAND / BORG_PASSPHRASE_FD was wrong
    /// (`PassphraseWrong`).
    #[error("passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect.")]
    PassphraseWrong,
    /// No passphrase could be obtained (`NoPassphraseFailure`).
    #[error("can not acquire a passphrase: {0}")]
    NoPassphrase(String),
    /// BORG_PASSCOMMAND failed (`PasscommandFailure`).
    #[error("passcommand supplied in BORG_PASSCOMMAND failed: {0}")]
    PasscommandFailure(String),
    /// Too many wrong interactive passphrases (`PasswordRetriesExceeded`).
    #[error("exceeded the maximum password retries")]
    PasswordRetriesExceeded,
    /// No key file for the repository (`KeyfileNotFoundError`).
    #[error("No key file for repository {repository} found in {dir}.")]
    KeyfileNotFound {
        /// Canonical repository location (may be empty if the caller did not supply one).
        repository: String,
        /// The keys directory searched.
        dir: String,
    },
    /// BORG_KEY_FILE does not start with `BORG_KEY ` (`KeyfileInvalidError`).
    #[error("Invalid key file for repository {repository} found in {path}.")]
    KeyfileInvalid {
        /// Canonical repository location (may be empty).
        repository: String,
        /// The key file.
        path: String,
    },
    /// The key file is for another repository (`KeyfileMismatchError`).
    #[error("Mismatch between repository {repository} and key file {path}.")]
    KeyfileMismatch {
        /// Canonical repository location (may be empty).
        repository: String,
        /// The key file.
        path: String,
    },
    /// The repository `config` has an empty key (`RepoKeyNotFoundError`).
    #[error("No key entry found in the config of repository {0}.")]
    RepoKeyNotFound(String),
    /// `init` with BORG_KEY_FILE pointing at an existing file.
    #[error("Aborting because key in \"{0}\" already exists.")]
    KeyfileExists(String),
    /// The key blob or key material is malformed.
    #[error("invalid key data: {0}")]
    InvalidKeyData(String),
    /// Key material version other than 1.
    #[error("key version {0} is not supported by this borg version.")]
    UnsupportedKeyVersion(i128),
    /// Envelope version other than 1.
    #[error("encrypted key version {0} is not supported by this borg version.")]
    UnsupportedEncryptedKeyVersion(i128),
    /// Envelope algorithm other than `sha256`.
    #[error("encrypted key algorithm '{0}' is not supported by this borg version.")]
    UnsupportedKeyAlgorithm(String),
    /// The manifest lacks a TAM although one is required (`TAMRequiredError`). The field is the
    /// canonical repository location (empty unless filled in with [`CryptoError::with_location`]).
    #[error("Manifest is unauthenticated, but it is required for this repository.\n\nThis either means that you are under attack, or that you modified this repository\nwith a Borg version older than 1.0.9 after TAM authentication was enabled.\n\nIn the latter case, use \"borg upgrade --tam --force '{0}'\" to re-authenticate the manifest.")]
    TamRequired(String),
    /// The manifest TAM is malformed or does not verify (`TAMInvalid`).
    #[error("Data integrity error: Manifest authentication did not verify")]
    TamInvalid,
    /// A TAM suite other than HKDF_HMAC_SHA512 when TAM is required (`TAMUnsupportedSuiteError`).
    #[error("Could not verify manifest: Unsupported suite '{0}'; a newer version is needed.")]
    TamUnsupportedSuite(String),
    /// An archive lacks its TAM although one is required (1.2.5+ `ArchiveTAMRequiredError`).
    #[error("Archive '{0}' is unauthenticated, but it is required for this repository.")]
    ArchiveTamRequired(String),
    /// An archive TAM is malformed or does not verify (1.2.5+ `ArchiveTAMInvalid`).
    #[error("Data integrity error: Archive authentication did not verify")]
    ArchiveTamInvalid,
    /// The metadata is not valid msgpack within the context's limits.
    #[error("invalid metadata: {0}")]
    Msgpack(#[from] crate::msgpack::DecodeError),
    /// A key backup file that does not start with `BORG_KEY` (`NotABorgKeyFile`).
    #[error("This file is not a borg key backup, aborting.")]
    NotABorgKeyFile,
    /// A key backup for another repository (`RepoIdMismatch`).
    #[error("This key backup seems to be for a different backup repository, aborting.")]
    RepoIdMismatch,
    /// A paper key import was aborted by the user.
    #[error("aborted")]
    Aborted,
    /// AES-CTR counter bookkeeping failed.
    #[error("nonce error: {0}")]
    Nonce(String),
    /// A file operation failed.
    #[error("{0}")]
    Io(String),
}

impl CryptoError {
    /// Fills the repository location into errors that name it (borg prints the canonical path).
    pub fn with_location(self, location: &str) -> CryptoError {
        match self {
            CryptoError::TamRequired(_) => CryptoError::TamRequired(location.to_string()),
            CryptoError::RepoKeyNotFound(_) => CryptoError::RepoKeyNotFound(location.to_string()),
            CryptoError::KeyfileNotFound { dir, .. } => CryptoError::KeyfileNotFound {
                repository: location.to_string(),
                dir,
            },
            CryptoError::KeyfileInvalid { path, .. } => CryptoError::KeyfileInvalid {
                repository: location.to_string(),
                path,
            },
            CryptoError::KeyfileMismatch { path, .. } => CryptoError::KeyfileMismatch {
                repository: location.to_string(),
                path,
            },
            other => other,
        }
    }

    /// Whether this is an integrity failure (borg's `IntegrityError` family).
    pub fn is_integrity_error(&self) -> bool {
        matches!(
            self,
            CryptoError::Integrity(_)
                | CryptoError::TamRequired(_)
                | CryptoError::TamInvalid
                | CryptoError::TamUnsupportedSuite(_)
                | CryptoError::ArchiveTamRequired(_)
                | CryptoError::ArchiveTamInvalid
        )
    }
}
