//! `version [REPO]` (borg 1.4's `do_version`): the client's borg version and the server's,
//! which for a remote repository is what its `serve` announced in `negotiate`.

use crate::location::{Location, Proto};
use crate::version::BORG_VERSION_TUPLE;

/// Client and server version tuples (borg's `parse_version` form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// This program's borg version.
    pub client: Vec<i64>,
    /// The server's; the client's own for a repository hoard opens itself.
    pub server: Vec<i64>,
}

/// Asks the server behind `loc` for its version (opening the repository without a lock,
/// as borg does); a local or object-store repository is not opened at all.
pub fn run(loc: &Location, lock_wait: f64) -> super::Result<Versions> {
    let client = BORG_VERSION_TUPLE.to_vec();
    let server = match loc.proto {
        Proto::Ssh => {
            let repo = crate::repo::remote::RemoteRepository::open(
                loc,
                &crate::repo::remote::RemoteOpenOptions {
                    lock: false,
                    lock_wait: Some(lock_wait),
                    ..Default::default()
                },
            )?;
            repo.server_version().to_vec()
        }
        _ => client.clone(),
    };
    Ok(Versions { client, server })
}
