//! Keys, key envelopes, object encryption, id hashes, TAM and passphrases (FORMAT.md §4).
//!
//! This layer owns the cryptographic formats: key types and material, the encrypted key blob,
//! key files and their lookup, paper/QR key export, the repository object envelope, `id_hash`,
//! TAM, passphrase acquisition and AES-CTR counter reservation. It never reads or writes
//! repository files itself (the repository `nonce` goes through [`NonceStore`]), never
//! compresses (it takes and returns compression-framed bytes), and never prints except through
//! the interactive [`Prompter`] used for passphrase entry.

mod error;
mod key;
mod key_type;
mod keyblob;
mod keyfile;
mod nonce;
mod paper;
mod passphrase;
mod tam;

pub use error::CryptoError;
pub use key::{Key, KeyMaterial, ENCRYPTED_OVERHEAD};
pub use key_type::KeyType;
pub use keyblob::{
    decode_blob_text, decrypt_key_blob, decrypt_key_blob_bytes, encode_blob_text, encrypt_key_blob,
    encrypt_key_blob_bytes, BASE64_LINE_WIDTH, PBKDF2_ITERATIONS,
};
pub use keyfile::{
    check_key_file, find_key_file, find_key_file_in, find_key_file_with, format_key_file,
    key_file_name, new_key_file_path, new_key_file_path_in, new_key_file_path_with, parse_key_file,
    save_key_file, KEY_FILE_ID,
};
pub use nonce::{
    format_nonce_text, parse_nonce_text, MemoryNonceStore, NonceManager, NonceStore, SharedNonces,
    StoreError, NONCE_SPACE_RESERVATION,
};
pub use paper::{export_paper, export_qr_html, import_paper, PaperImport, PaperStep};
pub use passphrase::{
    unlock_key_blob, unlock_key_blob_for, unlock_key_blob_with, Passphrase, PassphraseEnv,
    Prompter, TtyPrompter,
};
pub use tam::TAM_SUITE;
