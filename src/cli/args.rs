//! clap definitions of borg 1.2's command line. Common options are global, so they may stand
//! before or after the subcommand, as borg allows.

use clap::{Args, Parser, Subcommand};

/// The version borg-aware frontends see (they parse the second word of `--version`).
pub const BORG_COMPAT_VERSION: &str = "1.2.4";

/// The full `--version` text: borg's version first, so frontends keep working.
pub const VERSION_TEXT: &str = concat!("1.2.4 (hoard ", env!("CARGO_PKG_VERSION"), ")");

/// hoard's command line.
#[derive(Debug, Parser)]
#[command(
    name = "hoard",
    version = VERSION_TEXT,
    about = "Deduplicated, compressed, encrypted backups in BorgBackup 1.x repositories",
    disable_help_subcommand = false,
    // argparse semantics: a repeated option replaces the earlier value (`-d 3 -d 5`,
    // `--keep-last 2 --keep-secondly 4`) instead of being an error.
    args_override_self = true,
    // argparse accepts any unambiguous prefix of a long option (`--sort` for `--sort-by`)
    infer_long_args = true
)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub common: CommonOptions,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// borg's common options.
#[derive(Debug, Args, Clone)]
pub struct CommonOptions {
    /// work on log level CRITICAL
    #[arg(long, global = true)]
    pub critical: bool,
    /// work on log level ERROR
    #[arg(long, global = true)]
    pub error: bool,
    /// work on log level WARNING (default)
    #[arg(long, global = true)]
    pub warning: bool,
    /// work on log level INFO
    #[arg(long = "info", short = 'v', visible_alias = "verbose", global = true)]
    pub info: bool,
    /// enable debug output, work on log level DEBUG
    #[arg(long, global = true)]
    pub debug: bool,
    /// enable TOPIC debugging (accepted for compatibility)
    #[arg(long = "debug-topic", global = true, value_name = "TOPIC")]
    pub debug_topic: Vec<String>,
    /// show progress information
    #[arg(short = 'p', long, global = true)]
    pub progress: bool,
    /// format units with IEC (binary) prefixes
    #[arg(long, global = true)]
    pub iec: bool,
    /// output one JSON object per log line instead of formatted text
    #[arg(long = "log-json", global = true)]
    pub log_json: bool,
    /// wait at most SECONDS for acquiring a repository/cache lock (default: 1)
    #[arg(
        long = "lock-wait",
        global = true,
        value_name = "SECONDS",
        default_value_t = 1.0
    )]
    pub lock_wait: f64,
    /// bypass locking mechanism
    #[arg(long = "bypass-lock", global = true)]
    pub bypass_lock: bool,
    /// show/log the borg version
    #[arg(long = "show-version", global = true)]
    pub show_version: bool,
    /// show/log the return code (rc)
    #[arg(long = "show-rc", global = true)]
    pub show_rc: bool,
    /// set umask to M (local only, default: 0077)
    #[arg(long, global = true, value_name = "M", value_parser = parse_octal)]
    pub umask: Option<u32>,
    /// use PATH as borg executable on the remote (default: "borg")
    #[arg(long = "remote-path", global = true, value_name = "PATH")]
    pub remote_path: Option<String>,
    /// use this command to connect to the 'borg serve' process (default: 'ssh')
    #[arg(long, global = true, value_name = "RSH")]
    pub rsh: Option<String>,
    /// set network upload rate limit in kiByte/s (default: 0=unlimited)
    #[arg(
        long = "upload-ratelimit",
        alias = "remote-ratelimit",
        global = true,
        value_name = "RATE"
    )]
    pub upload_ratelimit: Option<u64>,
    /// set network upload buffer size in MiB
    #[arg(long = "upload-buffer", global = true, value_name = "UPLOAD_BUFFER")]
    pub upload_buffer: Option<u64>,
    /// treat part files like normal files (e.g. to list/extract them)
    #[arg(long = "consider-part-files", global = true)]
    pub consider_part_files: bool,
    /// run CMD to get S3 credentials (AWS credential_process JSON on stdout)
    #[arg(long = "s3-credentials-command", global = true, value_name = "CMD")]
    pub s3_credentials_command: Option<String>,
    /// write execution profile in Borg format into FILE (accepted, ignored)
    #[arg(long = "debug-profile", global = true, value_name = "FILE")]
    pub debug_profile: Option<String>,
    /// use N worker threads (hoard only; default: $HOARD_WORKERS, else the number of cores)
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: Option<u64>,
}

/// borg's `GlobSpec`/`PrefixSpec`/`CommentSpec`: the value with placeholders (`{hostname}`,
/// `{now}`, …) replaced when the command line is parsed.
pub fn placeholder_spec(s: &str) -> Result<String, String> {
    crate::placeholders::replace_placeholders(s).map_err(|e| e.to_string())
}

fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|e| format!("invalid umask {s:?}: {e}"))
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Initialize an empty repository
    Init(InitArgs),
    /// Manage a keyfile or repokey of a repository
    #[command(subcommand)]
    Key(KeyCommand),
    /// Change repository key file passphrase (deprecated alias of `key change-passphrase`)
    ChangePassphrase(RepoArg),
    /// Break the repository lock (e.g. in case it was left by a dead borg process)
    BreakLock(RepoArg),
    /// Verify repository
    Check(CheckArgs),
    /// Show archive details such as disk space used
    Info(InfoArgs),
    /// Create new archive
    Create(Box<super::cmd_create::CreateArgs>),
    /// List archive or repository contents
    List(super::cmd_list::ListArgs),
    /// Delete an existing repository or archives
    Delete(super::cmd_delete::DeleteArgs),
    /// Rename an existing archive
    Rename(super::cmd_rename::RenameArgs),
    /// Re-create archives
    Recreate(Box<super::cmd_recreate::RecreateArgs>),
    /// Prune repository archives according to specified rules
    Prune(super::cmd_prune::PruneArgs),
    /// Compact segment files in the repository
    Compact(super::cmd_compact::CompactArgs),
    /// Get, set, and delete values in a repository or cache config file
    Config(super::cmd_config::ConfigArgs),
    /// Upgrade a repository (here: authenticate archives again with a TAM)
    Upgrade(super::cmd_upgrade::UpgradeArgs),
    /// Run a user specified command with the repository lock held
    WithLock(super::cmd_with_lock::WithLockArgs),
    /// Extract archive contents
    Extract(super::cmd_extract::ExtractArgs),
    /// Export archive contents as a tarball
    ExportTar(super::cmd_export_tar::ExportTarArgs),
    /// Create a backup archive from a tarball
    ImportTar(super::cmd_import_tar::ImportTarArgs),
    /// Diff contents of two archives
    Diff(super::cmd_diff::DiffArgs),
    /// Start in server mode. This command is usually not used manually.
    Serve(super::cmd_serve::ServeArgs),
    /// Mount archive or an entire repository as a FUSE filesystem
    Mount(Box<super::cmd_mount::MountArgs>),
    /// un-mount the FUSE filesystem
    Umount(super::cmd_mount::UmountArgs),
    /// Run a configured backup job (create, prune, compact, check) with retries
    Run(super::cmd_run::RunArgs),
    /// Print or install a crontab line or systemd timer for a backup job
    Schedule(super::cmd_schedule::ScheduleArgs),
}

/// A single optional repository argument (`BORG_REPO` when absent).
#[derive(Debug, Args)]
pub struct RepoArg {
    /// repository
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
}

/// `init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// repository to create
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// select encryption key mode **(required)**
    #[arg(short = 'e', long, value_name = "MODE", required = true)]
    pub encryption: String,
    /// create an append-only mode repository
    #[arg(long = "append-only")]
    pub append_only: bool,
    /// Set storage quota of the new repository (e.g. 5G, 1.5T)
    #[arg(long = "storage-quota", value_name = "QUOTA")]
    pub storage_quota: Option<String>,
    /// create the parent directories of the repository directory, if they are missing
    #[arg(long = "make-parent-dirs")]
    pub make_parent_dirs: bool,
}

/// `key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Export the repository key for backup
    Export(KeyExportArgs),
    /// Import the repository key from backup
    Import(KeyImportArgs),
    /// Change repository key file passphrase
    ChangePassphrase(RepoArg),
}

/// `key export`
#[derive(Debug, Args)]
pub struct KeyExportArgs {
    /// repository
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// where to store the backup
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
    /// Create an export suitable for printing and later type-in
    #[arg(long)]
    pub paper: bool,
    /// Create an html file suitable for printing and later type-in or qr scan
    #[arg(long = "qr-html")]
    pub qr_html: bool,
}

/// `key import`
#[derive(Debug, Args)]
pub struct KeyImportArgs {
    /// repository
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// path to the backup ('-' to read from stdin)
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
    /// interactively import from a backup done with --paper
    #[arg(long)]
    pub paper: bool,
}

/// Archive selection options shared by several commands.
#[derive(Debug, Args, Clone, Default)]
pub struct ArchiveFilter {
    /// only consider archive names starting with this prefix
    #[arg(short = 'P', long, value_name = "PREFIX", value_parser = placeholder_spec)]
    pub prefix: Option<String>,
    /// only consider archive names matching the glob
    #[arg(short = 'a', long = "glob-archives", value_name = "GLOB", value_parser = placeholder_spec)]
    pub glob_archives: Option<String>,
    /// Comma-separated list of sorting keys; valid keys are: timestamp, name, id
    #[arg(long = "sort-by", value_name = "KEYS", default_value = "timestamp")]
    pub sort_by: String,
    /// consider first N archives after other filters were applied
    #[arg(long, value_name = "N")]
    pub first: Option<usize>,
    /// consider last N archives after other filters were applied
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

/// `check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// repository or archive to check consistency of
    #[arg(value_name = "REPOSITORY_OR_ARCHIVE")]
    pub location: Option<String>,
    /// only perform repository checks
    #[arg(long = "repository-only")]
    pub repository_only: bool,
    /// only perform archives checks
    #[arg(long = "archives-only")]
    pub archives_only: bool,
    /// perform cryptographic archive data integrity verification
    #[arg(long = "verify-data")]
    pub verify_data: bool,
    /// attempt to repair any inconsistencies found
    #[arg(long)]
    pub repair: bool,
    /// work slower, but using less space
    #[arg(long = "save-space")]
    pub save_space: bool,
    /// do only a partial repo check for max. SECONDS seconds (Default: unlimited)
    #[arg(long = "max-duration", value_name = "SECONDS", default_value_t = 0)]
    pub max_duration: u64,
    /// archive selection
    #[command(flatten)]
    pub filter: ArchiveFilter,
}

/// `info`
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// repository or archive to display information about
    #[arg(value_name = "REPOSITORY_OR_ARCHIVE")]
    pub location: Option<String>,
    /// format output as JSON
    #[arg(long)]
    pub json: bool,
    /// archive selection
    #[command(flatten)]
    pub filter: ArchiveFilter,
}

impl CommonOptions {
    /// `--lock-wait` and `--bypass-lock` for the commands that honour both.
    pub fn lock_spec(&self) -> crate::commands::common::LockSpec {
        crate::commands::common::LockSpec {
            wait: self.lock_wait,
            lock: !self.bypass_lock,
        }
    }
}
