//! `hoard serve`: argument handling (including borg's forced-command rules for
//! `SSH_ORIGINAL_COMMAND`) and the logging setup of the server; the protocol is in
//! [`crate::serve`].

use clap::Args;

use super::options::CommonOptions;

/// `serve`
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// restrict repository access to PATH. Can be specified multiple times to allow the client
    /// access to several directories. Access to all sub-directories is granted implicitly;
    /// PATH doesn't need to directly point to a repository.
    #[arg(long = "restrict-to-path", value_name = "PATH")]
    pub restrict_to_paths: Vec<String>,
    /// restrict repository access. Only the repository located at PATH (no sub-directories are
    /// considered) is accessible. Can be specified multiple times to allow the client access
    /// to several repositories.
    #[arg(long = "restrict-to-repository", value_name = "PATH")]
    pub restrict_to_repositories: Vec<String>,
    /// only allow appending to repository segment files
    #[arg(long = "append-only")]
    pub append_only: bool,
    /// Override storage quota of the repository (e.g. 5G, 1.5T). When a new repository is
    /// initialized, sets the storage quota on the new repository as well. Default: no quota.
    #[arg(long = "storage-quota", value_name = "QUOTA")]
    pub storage_quota: Option<String>,
}

fn level_of(common: &CommonOptions) -> u8 {
    if common.debug {
        10
    } else if common.info {
        20
    } else if common.critical {
        50
    } else if common.error {
        40
    } else {
        30
    }
}

/// Applies borg's forced-command rule: if `SSH_ORIGINAL_COMMAND` is a `serve` invocation,
/// only its log level, `--debug-topic` and `--lock-wait` are taken from it; everything else
/// (restrictions, append-only, quota, umask) stays as the forced command says.
pub fn apply_original_command(common: &mut CommonOptions, original: &str) {
    let Ok(words) = shell_words::split(original) else {
        return;
    };
    // Leading VAR=value words are dropped, not interpreted.
    let words: Vec<String> = words.into_iter().skip_while(|w| w.contains('=')).collect();
    if words.is_empty() {
        return;
    }
    let Some(c) = super::serve_common(&words) else {
        return;
    };
    common.debug = c.debug;
    common.info = c.info;
    common.warning = c.warning;
    common.error = c.error;
    common.critical = c.critical;
    common.debug_topic = c.debug_topic;
    common.lock_wait = c.lock_wait;
}

/// Runs `serve` on stdin/stdout; returns the exit code.
pub fn main(args: &ServeArgs, common: &CommonOptions) -> i32 {
    let mut common = common.clone();
    if let Ok(orig) = std::env::var("SSH_ORIGINAL_COMMAND") {
        apply_original_command(&mut common, &orig);
    }
    // SAFETY: umask only changes this process's file creation mask.
    unsafe {
        libc::umask(common.umask.unwrap_or(0o077) as libc::mode_t);
    }
    crate::serve::set_log_level(level_of(&common));
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(crate::serve::ServeLogLayer);
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
    let storage_quota = match args.storage_quota.as_deref() {
        None => None,
        Some(t) => match crate::repo::config::parse_file_size(t) {
            Ok(q) if q >= 10_000_000 => Some(q),
            Ok(_) => {
                eprintln!("argument --storage-quota: quota is too small ({t}). At least 10M are required.");
                return 2;
            }
            Err(e) => {
                eprintln!("argument --storage-quota: {e}");
                return 2;
            }
        },
    };
    let opts = crate::serve::ServeOptions {
        restrict_to_paths: args.restrict_to_paths.iter().map(Into::into).collect(),
        restrict_to_repositories: args
            .restrict_to_repositories
            .iter()
            .map(Into::into)
            .collect(),
        append_only: args.append_only,
        storage_quota,
    };
    let mut server = crate::serve::Server::new(opts);
    // SIGTERM/SIGHUP/SIGINT end the session like a vanished client: the repository is closed
    // (lock released, uncommitted transaction dropped), then borg's message and exit code.
    let signals = match crate::serve::stdio::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Cannot install signal handlers: {e}");
            return 2;
        }
    };
    let code = server.serve(signals.input(), signals.output());
    match signals.received() {
        Some(sig) => {
            let (message, code) = crate::serve::stdio::exit_for(sig);
            crate::serve::log(40, "borg.archiver", message);
            code
        }
        None => code,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;

    #[test]
    fn forced_command_keeps_policy_and_takes_log_level() {
        let mut cli =
            Cli::try_parse_from(["hoard", "serve", "--restrict-to-path", "/srv"]).unwrap();
        apply_original_command(
            &mut cli.common,
            "LANG=C borg serve --debug --umask=000 --lock-wait 5 --append-only",
        );
        assert!(cli.common.debug);
        assert_eq!(cli.common.lock_wait, 5.0);
        assert_eq!(cli.common.umask, None);
        let Command::Serve(a) = cli.command else {
            panic!("not serve")
        };
        assert!(!a.append_only);
        assert_eq!(a.restrict_to_paths, ["/srv"]);
    }
}
