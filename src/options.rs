//! Options passed down as values, never through process globals: the environment a command
//! reads ([`Env`]) and how a repository is reached ([`RepoOptions`], carried by every
//! [`Location`](crate::location::Location) the command line parses). The CLI builds them once
//! from its arguments and the process environment; `hoard run` layers each job's variables
//! over them for its steps. This module sits at the bottom: it imports nothing of hoard.

use std::sync::Arc;

/// The environment variables a command reads, as a value: the process environment with
/// overrides on top (a value replaces a variable, `None` removes it). The process
/// environment itself is only read, never written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    overrides: Vec<(String, Option<String>)>,
}

impl Env {
    /// The process environment as it is, without overrides.
    pub fn process() -> Env {
        Env::default()
    }

    /// This environment with `name` set to `value` (`None`: removed); a later override of the
    /// same name wins.
    pub fn with(mut self, name: &str, value: Option<String>) -> Env {
        self.overrides.retain(|(k, _)| k != name);
        self.overrides.push((name.to_string(), value));
        self
    }

    /// The overrides, in the order set.
    pub fn overrides(&self) -> &[(String, Option<String>)] {
        &self.overrides
    }

    /// The value of `name` (lossily UTF-8), empty values included.
    pub fn var(&self, name: &str) -> Option<String> {
        match self.overrides.iter().find(|(k, _)| k == name) {
            Some((_, v)) => v.clone(),
            None => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        }
    }

    /// The value of `name` if set and not empty.
    pub fn nonempty(&self, name: &str) -> Option<String> {
        self.var(name).filter(|v| !v.is_empty())
    }
}

/// How `serve` over ssh is started and spoken to: the common options `--rsh`,
/// `--remote-path`, the log level, `--debug-topic`, `--upload-ratelimit` and
/// `--upload-buffer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// `--rsh` (else `BORG_RSH`, else `ssh`).
    pub rsh: Option<String>,
    /// `--remote-path` (else `BORG_REMOTE_PATH`, else `borg`).
    pub remote_path: Option<String>,
    /// The log-level flag passed on to `serve` (`--debug`, `--info`, `--error`, `--critical`;
    /// `None` for the default WARNING).
    pub log_level_flag: Option<String>,
    /// `--debug-topic` values.
    pub debug_topics: Vec<String>,
    /// `--upload-ratelimit` in KiB/s (0 = unlimited).
    pub upload_ratelimit: u64,
    /// `--upload-buffer` in MiB: how much may wait in a send queue (drained by a writer
    /// thread) before a request blocks; 0 writes straight into the pipe, as borg does.
    pub upload_buffer: u64,
}

/// How a repository is reached and unlocked (like rustic's `BackendOptions`): the
/// environment (`BORG_RSH`, `BORG_PASSCOMMAND`, `BORG_KEY_FILE`, …), the remote client
/// options and the S3 credentials command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoOptions {
    /// The environment the command runs with.
    pub env: Env,
    /// The `serve` client options.
    pub remote: ClientOptions,
    /// `--s3-credentials-command` (else `HOARD_S3_CREDENTIALS_COMMAND`).
    pub s3_credentials_command: Option<String>,
}

impl RepoOptions {
    /// Shared, for the locations that carry it.
    pub fn shared(self) -> Arc<RepoOptions> {
        Arc::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_removals_hide_the_process_value() {
        // PATH is set in every test environment.
        let env = Env::process();
        assert!(env.var("PATH").is_some());
        let env = env
            .with("PATH", None)
            .with("HOARD_OPTIONS_TEST", Some("a".into()))
            .with("HOARD_OPTIONS_TEST", Some("b".into()))
            .with("HOARD_OPTIONS_EMPTY", Some(String::new()));
        assert_eq!(env.var("PATH"), None);
        assert_eq!(env.var("HOARD_OPTIONS_TEST").as_deref(), Some("b"));
        assert_eq!(env.var("HOARD_OPTIONS_EMPTY").as_deref(), Some(""));
        assert_eq!(env.nonempty("HOARD_OPTIONS_EMPTY"), None);
        assert_eq!(env.overrides().len(), 3);
    }
}
