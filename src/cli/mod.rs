//! The borg-compatible command line: the command tree ([`args`]), one `cmd_<command>` module
//! per command with its arguments and output, the option groups several commands share
//! ([`options`]), logging ([`log`]), output formats ([`output`]), the output several commands
//! share ([`archive_report`] for `create` / `import-tar` / `recreate`, [`extract_report`] for
//! `extract` / `export-tar`; no `cmd_` module imports another), prompts, and the mapping of
//! results to borg's exit codes (0 success, 1 warning, 2 error). This is the only layer that
//! prints. The options passed down to the commands are resolved here, once
//! ([`options::CommonOptions::resolve`]).

pub mod archive_report;
pub mod args;
pub mod cmd_benchmark;
pub mod cmd_break_lock;
pub mod cmd_check;
pub mod cmd_compact;
pub mod cmd_completion;
pub mod cmd_config;
pub mod cmd_create;
pub mod cmd_debug;
pub mod cmd_delete;
pub mod cmd_diff;
pub mod cmd_export_tar;
pub mod cmd_extract;
pub mod cmd_help;
pub mod cmd_import_tar;
pub mod cmd_info;
pub mod cmd_init;
pub mod cmd_key;
pub mod cmd_list;
pub mod cmd_mount;
pub mod cmd_prune;
pub mod cmd_recreate;
pub mod cmd_rename;
pub mod cmd_report;
pub mod cmd_run;
pub mod cmd_schedule;
pub mod cmd_serve;
pub mod cmd_status;
pub mod cmd_upgrade;
pub mod cmd_version;
pub mod cmd_with_lock;
pub mod exit_codes;
pub mod extract_report;
pub mod help_text;
pub mod help_topics;
pub mod log;
pub mod options;
pub mod output;
pub mod progress_view;

use std::io::{BufRead, Write};

use clap::Parser;

use crate::commands::CommandError;
use crate::location::Location;
use args::{Cli, Command};
use options::CommonOptions;

/// borg's exit codes.
pub const EXIT_SUCCESS: i32 = 0;
/// A warning (some files could not be read, check found problems).
pub const EXIT_WARNING: i32 = 1;
/// An error.
pub const EXIT_ERROR: i32 = 2;

const TRUISH: [&str; 6] = ["Yes", "YES", "yes", "Y", "y", "1"];
const FALSISH: [&str; 6] = ["No", "NO", "no", "N", "n", "0"];
const DEFAULTISH: [&str; 6] = ["Default", "DEFAULT", "default", "D", "d", ""];

/// borg's `yes()`: the answer comes from `env_var` if set, else from stdin; default no.
/// `truish` narrows what counts as yes (the I_KNOW_WHAT_I_AM_DOING variables take only `YES`).
/// With `--log-json` each step is a `question_*` record whose msgid is `env_var`, as in 1.4.
pub fn ask_yes(message: &str, env_var: &str, truish: &[&str]) -> bool {
    log::question("prompt", env_var, message, None);
    let answer = match std::env::var(env_var) {
        Ok(v) => {
            log::question(
                "env_answer",
                env_var,
                &format!("{v} (from {env_var})"),
                Some(env_var),
            );
            v
        }
        Err(_) => {
            let mut line = String::new();
            match std::io::stdin().lock().read_line(&mut line) {
                // borg: EOF answers with the first falsish word
                Ok(0) | Err(_) => FALSISH[0].to_string(),
                Ok(_) => line.trim_end_matches(['\n', '\r']).to_string(),
            }
        }
    };
    if DEFAULTISH.contains(&answer.as_str()) {
        // the default (no), without a message
        return false;
    }
    if truish.contains(&answer.as_str()) {
        return true;
    }
    if FALSISH.contains(&answer.as_str()) {
        log::question("accepted_false", env_var, "Aborting.", None);
    } else {
        log::question("invalid_answer", env_var, "Invalid answer, aborting.", None);
    }
    false
}

/// borg 1.4's `CancelledByUser` (a question answered no; modern exit code 3).
pub(crate) fn cancelled_by_user() -> CommandError {
    CommandError::with_id("Cancelled by user.", "CancelledByUser")
}

fn confirm(message: &str, env_var: &str) -> bool {
    ask_yes(message, env_var, &TRUISH)
}

/// A location named on the command line (`BORG_REPO` when absent), carrying the options for
/// reaching it.
fn location(text: Option<&str>, common: &CommonOptions) -> Result<Location, CommandError> {
    Ok(Location::parse_with(text, &common.repo)?)
}

/// A repository location for a command that works on the whole repository (borg's
/// `location_validator(archive=False)`): `REPO::ARCHIVE` is refused, never ignored, so that
/// `prune repo::name` cannot prune the whole repository.
fn repo_location(text: Option<&str>, common: &CommonOptions) -> Result<Location, CommandError> {
    let loc = Location::parse_with(text, &common.repo)?;
    if loc.archive.is_some() {
        return Err(CommandError::new(format!(
            "argument REPOSITORY: \"{}\": No archive can be specified",
            text.unwrap_or_default()
        )));
    }
    Ok(loc)
}

fn print_stdout(text: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "{text}");
}

/// The whole command tree (help, completion scripts, man pages).
pub(crate) fn command_tree() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses a hoard command line (`argv[0]` is the program name) into the command and its
/// common options.
pub(crate) fn parse_argv<I, T>(argv: I) -> Result<(Command, CommonOptions), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(argv).map(|cli| (cli.command, cli.common))
}

/// The common options of a `serve` command line (`None` for anything else).
fn serve_common(words: &[String]) -> Option<CommonOptions> {
    match parse_argv(words) {
        Ok((Command::Serve(_), common)) => Some(common),
        _ => None,
    }
}

/// Whether `--bypass-lock` is allowed with `cmd`: borg 1.4.5 allows it only for commands
/// that do not change the repository (check, config, diff, export-tar, extract, info, list,
/// mount, umount) and refuses every other one before it starts. hoard's own commands (`run`,
/// `schedule`, `completion`, `man`) pass it on to what they run.
fn bypass_lock_allowed(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Check(_)
            | Command::Config(_)
            | Command::Diff(_)
            | Command::ExportTar(_)
            | Command::Extract(_)
            | Command::Info(_)
            | Command::List(_)
            | Command::Mount(_)
            | Command::Umount(_)
            | Command::Run(_)
            | Command::Schedule(_)
            | Command::Completion(_)
            | Command::Man(_)
    )
}

/// Runs one parsed command and returns its exit code (also used in-process by `hoard run`).
/// `common` has been resolved ([`CommonOptions::resolve`]).
pub fn run_command(cmd: Command, common: &CommonOptions) -> Result<i32, CommandError> {
    // After a signal, the next command of an in-process sequence (`hoard run`'s steps and
    // retries) does not start.
    if let Some(stop) = crate::platform::signals::stop() {
        return Err(CommandError::stopped(stop));
    }
    if crate::platform::signals::checkpoint_requested() {
        return Err(CommandError::interrupted());
    }
    if common.bypass_lock && !bypass_lock_allowed(&cmd) {
        return Err(CommandError::with_id(
            "Error: Not allowed to bypass locking mechanism for chosen command",
            "Error",
        ));
    }
    match cmd {
        Command::Init(a) => cmd_init::run(a, common),
        Command::Key(a) => cmd_key::run(a, common),
        Command::ChangePassphrase(a) => cmd_key::change_passphrase(a, common),
        Command::BreakLock(a) => cmd_break_lock::run(a, common),
        Command::Check(a) => cmd_check::run(a, common),
        Command::Info(a) => cmd_info::run(a, common),
        Command::Version(a) => cmd_version::run(a, common),
        Command::Create(a) => cmd_create::run(*a, common, &confirm),
        Command::List(a) => cmd_list::run(a, common, &confirm),
        Command::Delete(a) => cmd_delete::run(a, common, &confirm),
        Command::Rename(a) => cmd_rename::run(a, common, &confirm),
        Command::Recreate(a) => cmd_recreate::run(*a, common, &confirm),
        Command::Extract(a) => cmd_extract::run(a, common),
        Command::ExportTar(a) => cmd_export_tar::run(a, common),
        Command::ImportTar(a) => cmd_import_tar::run(a, common, &confirm),
        Command::Diff(a) => cmd_diff::run(a, common),
        Command::Prune(a) => cmd_prune::run(a, common),
        Command::Compact(a) => cmd_compact::run(a, common),
        Command::Config(a) => cmd_config::run(a, common),
        Command::WithLock(a) => cmd_with_lock::run(a, common),
        Command::Upgrade(a) => cmd_upgrade::run(a, common),
        Command::Serve(a) => Ok(cmd_serve::main(&a, common)),
        Command::Mount(a) => cmd_mount::run(*a, common, &confirm),
        Command::Umount(a) => cmd_mount::run_umount(a),
        Command::Run(a) => cmd_run::run(a, common),
        Command::Schedule(a) => cmd_schedule::run(a, common),
        Command::Status(a) => cmd_status::run(a, common),
        Command::Report(a) => cmd_report::run(a, common, &confirm),
        Command::Debug(a) => cmd_debug::run(a, common),
        Command::Benchmark(a) => cmd_benchmark::run(a, common),
        Command::Completion(a) => cmd_completion::completion(&a),
        Command::Man(a) => cmd_completion::man(&a),
        Command::Help(a) => Ok(cmd_help::run(&a)),
    }
}

fn configure_logging(common: &CommonOptions) {
    let level = if common.debug {
        log::Level::Debug
    } else if common.info {
        log::Level::Info
    } else if common.critical {
        log::Level::Critical
    } else if common.error {
        log::Level::Error
    } else {
        log::Level::Warning
    };
    log::configure(level, common.log_json);
    log::install();
}

fn remote_log_sink(line: crate::repo::remote::logline::RemoteLog) {
    use crate::repo::remote::logline::RemoteLog;
    match line {
        RemoteLog::Record(level, name, message) => {
            let level = match level {
                0..=10 => log::Level::Debug,
                11..=20 => log::Level::Info,
                21..=30 => log::Level::Warning,
                31..=40 => log::Level::Error,
                _ => log::Level::Critical,
            };
            let name = if name.is_empty() {
                "borg.remote"
            } else {
                &name
            };
            log::log(level, name, None, &message);
        }
        RemoteLog::Plain(message) => {
            if log::json_enabled() {
                log::log(log::Level::Warning, "", None, &message);
            } else {
                use std::io::Write;
                let mut err = std::io::stderr().lock();
                log::clear_line(&mut err);
                let _ = writeln!(err, "{message}");
            }
        }
    }
}

/// Prints borg's line for a stop signal ("Received SIGTERM", …).
fn report_stop(stop: crate::platform::signals::Stop) {
    log::log(
        log::Level::Error,
        "borg.archiver",
        stop.msgid(),
        stop.message(),
    );
}

/// Runs hoard with the process's arguments and returns the exit code.
pub fn main() -> i32 {
    let mut cli = match Cli::try_parse() {
        Ok(c) => c,
        // borg without a command prints its help and succeeds
        Err(e)
            if e.kind() == clap::error::ErrorKind::MissingSubcommand
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            use clap::CommandFactory;
            print_stdout(&Cli::command().render_long_help().to_string());
            return EXIT_SUCCESS;
        }
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    if let Command::Serve(a) = &cli.command {
        return cmd_serve::main(a, &cli.common);
    }
    cli.common.exit_codes =
        exit_codes::Mode::from_env_value(std::env::var("BORG_EXIT_CODES").ok().as_deref());
    let mode = cli.common.exit_codes;
    configure_logging(&cli.common);
    // The server's log lines go through borg-style logging (a process-wide sink, like the
    // logger itself).
    crate::repo::remote::logline::set_sink(remote_log_sink);
    // `mount` waits for its own signals (it unmounts first); everything else gets borg's
    // handling: a message, locks released, exit 128 + N.
    if !matches!(cli.command, Command::Mount(_) | Command::Umount(_)) {
        let show_rc = cli.common.show_rc;
        let report = move |stop: crate::platform::signals::Stop| {
            report_stop(stop);
            if show_rc {
                log_rc(stop.exit_code());
            }
        };
        if let Err(e) = crate::platform::signals::install(Box::new(report)) {
            log::warning(&format!("cannot install signal handlers: {e}"));
        }
    }
    if let Some(mask) = cli.common.umask {
        // SAFETY: umask only changes this process's file creation mask.
        unsafe {
            libc::umask(mask as libc::mode_t);
        }
    } else {
        unsafe {
            libc::umask(0o077);
        }
    }
    if cli.common.show_version {
        // borg: `borgbackup version X` at INFO on `borg.output.show-version`, shown at any
        // log level. The version text comes from the one constant `--version` uses.
        let text = format!("borgbackup version {}", args::VERSION_TEXT);
        log::log_always(log::Level::Info, "borg.output.show-version", None, &text);
    }
    let outcome = match cli.common.resolve(&crate::options::Env::process(), None) {
        Err(e) => Err(e),
        Ok(()) => match cli.common.debug_profile.clone() {
            Some(path) => {
                let name = cmd_debug::command_name(&cli.command);
                cmd_debug::run_profiled(&path, &name, || run_command(cli.command, &cli.common))
            }
            None => run_command(cli.command, &cli.common),
        },
    };
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            let stop = crate::platform::signals::stop();
            let is_stop = stop.is_some_and(|s| e.is_stop(s));
            if !is_stop || crate::platform::signals::claim_report() {
                log::log(
                    log::Level::Error,
                    "borg.archiver",
                    e.msgid.as_deref(),
                    &e.message,
                );
            }
            // An error's modern code comes from its class (msgid); signals keep 128 + N.
            if e.exit_code == EXIT_ERROR && mode == exit_codes::Mode::Modern {
                exit_codes::error_code(e.msgid.as_deref())
            } else {
                e.exit_code
            }
        }
    };
    // A stop signal that arrived after the last point the command looked (during its final
    // commit, say) still ends the run as borg's exception would.
    let code = match crate::platform::signals::stop() {
        Some(stop) if code != stop.exit_code() => {
            if crate::platform::signals::claim_report() {
                report_stop(stop);
            }
            stop.exit_code()
        }
        _ => code,
    };
    if cli.common.show_rc {
        log_rc(code);
    }
    code
}

/// `--show-rc`: borg's closing line.
fn log_rc(code: i32) {
    // borg 1.4's `classify_ec`: 128 + N is a signal, 100–127 a warning, 3–99 an error
    let kind = match exit_codes::classify(code) {
        exit_codes::Class::Success => "success",
        exit_codes::Class::Warning => "warning",
        exit_codes::Class::Error => "error",
        exit_codes::Class::Signal => "signal",
    };
    let text = format!("terminating with {kind} status, rc {code}");
    // borg's rc logger is switched to show this line whatever the log level.
    log::log(log::Level::Critical, "borg.output.show-rc", None, &text);
}
