//! The top of borg's command line: [`Cli`] and the [`Command`] list. Each command's own
//! arguments live in its `cmd_<command>.rs`, the groups several commands share (the common
//! options among them) in [`options`](super::options). Common options are global, so they may
//! stand before or after the subcommand, as borg allows.

use clap::{Parser, Subcommand};

/// The full `--version` text: borg's version first, so frontends keep working (the one
/// version constant lives in [`crate::version`]).
pub use crate::version::VERSION_TEXT;

/// hoard's command line.
#[derive(Debug, Parser)]
#[command(
    name = "hoard",
    version = VERSION_TEXT,
    about = "Deduplicated, compressed, encrypted backups in BorgBackup 1.x repositories",
    // `help` is hoard's own command (topics, --epilog-only, --usage-only), as borg's.
    disable_help_subcommand = true,
    // argparse semantics: a repeated option replaces the earlier value (`-d 3 -d 5`,
    // `--keep-last 2 --keep-secondly 4`) instead of being an error.
    args_override_self = true,
    // argparse accepts any unambiguous prefix of a long option (`--sort` for `--sort-by`)
    infer_long_args = true
)]
#[command(after_long_help = super::help_text::HOARD)]
pub struct Cli {
    /// Options every command accepts (listed apart from each command's own, as borg does).
    #[command(flatten, next_help_heading = "Common options")]
    pub common: super::options::CommonOptions,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Initialize an empty repository
    #[command(after_long_help = super::help_text::INIT)]
    Init(super::cmd_init::InitArgs),
    /// Manage a keyfile or repokey of a repository
    #[command(subcommand)]
    #[command(after_long_help = super::help_text::KEY)]
    Key(super::cmd_key::KeyCommand),
    /// Change repository key file passphrase (deprecated alias of `key change-passphrase`)
    #[command(after_long_help = super::help_text::KEY_CHANGE_PASSPHRASE)]
    ChangePassphrase(super::options::RepoArg),
    /// Break the repository lock (e.g. in case it was left by a dead borg process)
    #[command(after_long_help = super::help_text::BREAK_LOCK)]
    BreakLock(super::options::RepoArg),
    /// Verify repository
    #[command(after_long_help = super::help_text::CHECK)]
    Check(super::cmd_check::CheckArgs),
    /// Show archive details such as disk space used
    #[command(after_long_help = super::help_text::INFO)]
    Info(super::cmd_info::InfoArgs),
    /// Create new archive
    #[command(after_long_help = super::help_text::CREATE)]
    Create(Box<super::cmd_create::CreateArgs>),
    /// List archive or repository contents
    #[command(after_long_help = super::help_text::LIST)]
    List(super::cmd_list::ListArgs),
    /// Delete an existing repository or archives
    #[command(after_long_help = super::help_text::DELETE)]
    Delete(super::cmd_delete::DeleteArgs),
    /// Rename an existing archive
    #[command(after_long_help = super::help_text::RENAME)]
    Rename(super::cmd_rename::RenameArgs),
    /// Re-create archives
    #[command(after_long_help = super::help_text::RECREATE)]
    Recreate(Box<super::cmd_recreate::RecreateArgs>),
    /// Prune repository archives according to specified rules
    #[command(after_long_help = super::help_text::PRUNE)]
    Prune(super::cmd_prune::PruneArgs),
    /// Compact segment files in the repository
    #[command(after_long_help = super::help_text::COMPACT)]
    Compact(super::cmd_compact::CompactArgs),
    /// Get, set, and delete values in a repository or cache config file
    #[command(after_long_help = super::help_text::CONFIG)]
    Config(super::cmd_config::ConfigArgs),
    /// Upgrade a repository (here: authenticate archives again with a TAM)
    #[command(after_long_help = super::help_text::UPGRADE)]
    Upgrade(super::cmd_upgrade::UpgradeArgs),
    /// Run a user specified command with the repository lock held
    #[command(after_long_help = super::help_text::WITH_LOCK)]
    WithLock(super::cmd_with_lock::WithLockArgs),
    /// Extract archive contents
    #[command(after_long_help = super::help_text::EXTRACT)]
    Extract(super::cmd_extract::ExtractArgs),
    /// Export archive contents as a tarball
    #[command(after_long_help = super::help_text::EXPORT_TAR)]
    ExportTar(super::cmd_export_tar::ExportTarArgs),
    /// Create a backup archive from a tarball
    #[command(after_long_help = super::help_text::IMPORT_TAR)]
    // The shared archive options, worded as borg's import-tar words them.
    #[command(mut_arg("timestamp", |a| a
        .help("manually specify the archive creation date/time (UTC, yyyy-mm-ddThh:mm:ss format). alternatively, give a reference file/directory")
        .long_help(None::<&str>)))]
    #[command(mut_arg("chunker_params", |a| a
        .help("specify the chunker parameters (ALGO, CHUNK_MIN_EXP, CHUNK_MAX_EXP, HASH_MASK_BITS, HASH_WINDOW_SIZE). default: buzhash,19,23,21,4095")
        .long_help(None::<&str>)))]
    #[command(mut_arg("compression", |a| a
        .help("select compression algorithm, see the output of the \"borg help compression\" command for details")
        .long_help(None::<&str>)))]
    ImportTar(super::cmd_import_tar::ImportTarArgs),
    /// Diff contents of two archives
    #[command(after_long_help = super::help_text::DIFF)]
    Diff(super::cmd_diff::DiffArgs),
    /// Start in server mode. This command is usually not used manually.
    #[command(after_long_help = super::help_text::SERVE)]
    Serve(super::cmd_serve::ServeArgs),
    /// Mount archive or an entire repository as a FUSE filesystem
    #[command(after_long_help = super::help_text::MOUNT)]
    Mount(Box<super::cmd_mount::MountArgs>),
    /// un-mount the FUSE filesystem
    #[command(after_long_help = super::help_text::UMOUNT)]
    Umount(super::cmd_mount::UmountArgs),
    /// Run a configured backup job (create, prune, compact, check) with retries
    #[command(after_long_help = super::help_text::RUN)]
    Run(super::cmd_run::RunArgs),
    /// Print or install a crontab line or systemd timer for a backup job
    #[command(after_long_help = super::help_text::SCHEDULE)]
    Schedule(super::cmd_schedule::ScheduleArgs),
    /// Show every backup job's last run and whether it is healthy
    #[command(after_long_help = super::help_text::STATUS)]
    Status(super::cmd_status::StatusArgs),
    /// Write an HTML report (charts and archive table) of a repository or a backup job
    #[command(after_long_help = super::help_text::REPORT)]
    Report(super::cmd_report::ReportArgs),
    /// debugging command (not intended for normal use)
    #[command(subcommand)]
    Debug(super::cmd_debug::DebugCommand),
    /// benchmark command
    #[command(subcommand)]
    Benchmark(super::cmd_benchmark::BenchmarkCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_long_help = super::help_text::COMPLETION)]
    Completion(super::cmd_completion::CompletionArgs),
    /// Print or write manual pages for hoard and its commands
    #[command(after_long_help = super::help_text::MAN)]
    Man(super::cmd_completion::ManArgs),
    /// Display the borg client / borg server version
    Version(super::cmd_version::VersionArgs),
    /// Extra help: a command's help, or a topic (patterns, placeholders, compression)
    Help(super::cmd_help::HelpArgs),
}
