//! The borg-compatible command line: clap definitions ([`args`]), logging ([`log`]), output
//! formats ([`output`]), prompts, and the mapping of results to borg's exit codes
//! (0 success, 1 warning, 2 error). This is the only layer that prints.

pub mod args;
pub mod cmd_benchmark;
pub mod cmd_compact;
pub mod cmd_completion;
pub mod cmd_config;
pub mod cmd_create;
pub mod cmd_debug;
pub mod cmd_delete;
pub mod cmd_diff;
pub mod cmd_export_tar;
pub mod cmd_extract;
pub mod cmd_import_tar;
pub mod cmd_info_archive;
pub mod cmd_list;
pub mod cmd_mount;
pub mod cmd_prune;
pub mod cmd_recreate;
pub mod cmd_related_secrets;
pub mod cmd_rename;
pub mod cmd_run;
pub mod cmd_schedule;
pub mod cmd_serve;
pub mod cmd_upgrade;
pub mod cmd_with_lock;
pub mod exit_codes;
pub mod help_text;
pub mod help_topics;
pub mod log;
pub mod output;

use std::io::{BufRead, Write};

use clap::Parser;
use serde_json::json;

use crate::commands::{self, CommandError};
use crate::location::Location;
use args::{Cli, Command, CommonOptions, KeyCommand};

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

fn location(text: Option<&str>) -> Result<Location, CommandError> {
    Ok(Location::parse_env(text)?)
}

/// A repository location for a command that works on the whole repository (borg's
/// `location_validator(archive=False)`): `REPO::ARCHIVE` is refused, never ignored, so that
/// `prune repo::name` cannot prune the whole repository.
fn repo_location(text: Option<&str>) -> Result<Location, CommandError> {
    let loc = Location::parse_env(text)?;
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

/// Parses the file-size syntax (`10M`, `1.5T`; powers of 1000) for `--storage-quota`.
fn parse_quota(text: &str) -> Result<u64, CommandError> {
    let parsed = crate::repo::config::parse_file_size(text)
        .map_err(|e| CommandError::new(format!("argument --storage-quota: {e}")))?;
    if parsed < 10_000_000 {
        return Err(CommandError::new(format!(
            "argument --storage-quota: quota is too small ({text}). At least 10M are required."
        )));
    }
    Ok(parsed)
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
    let lock_wait = common.lock_wait;
    if let Some(n) = common.workers {
        commands::workers::set_option(n as usize);
    }
    commands::workers::resolve().map_err(CommandError::new)?;
    if let Some(c) = &common.s3_credentials_command {
        // read by the object-storage backend (repo::objstore)
        std::env::set_var("HOARD_S3_CREDENTIALS_COMMAND", c);
    }
    match cmd {
        Command::Init(a) => {
            let loc = repo_location(a.location.as_deref())?;
            let opts = commands::init::InitOptions {
                encryption: a.encryption,
                append_only: a.append_only,
                storage_quota: a.storage_quota.as_deref().map(parse_quota).transpose()?,
                make_parent_dirs: a.make_parent_dirs,
                related_secrets: cmd_related_secrets::import(a.import_related_secrets.as_deref())?,
            };
            log::info(&format!(
                "Initializing repository at \"{}\"",
                loc.canonical()
            ));
            let outcome = commands::init::run(&loc, &opts)?;
            if let commands::common::KeyLocation::File(p) = &outcome.key_location {
                log::info(&format!("Key in \"{}\" created.", p.display()));
                log::info("Keep this key safe. Your data will be inaccessible without it.");
            }
            if outcome.key_type == crate::crypto::KeyType::Plaintext {
                log::info("Encryption NOT enabled.\nUse the \"--encryption=repokey|keyfile\" to enable encryption.");
            } else {
                log::warning(&format!(
                    "\nBy default repositories initialized with this version will produce security\nerrors if written to with an older version (up to and including Borg 1.0.8).\n\nIf you want to use these older versions, you can disable the check by running:\nborg upgrade --disable-tam {}\n\nSee https://borgbackup.readthedocs.io/en/stable/changes.html#pre-1-0-9-manifest-spoofing-vulnerability for details about the security implications.",
                    shell_words::quote(&outcome.location)
                ));
                log::warning("\nIMPORTANT: you will need both KEY AND PASSPHRASE to access this repo!\nIf you used a repokey mode, the key is stored in the repo, but you should back it up separately.\nUse \"borg key export\" to export the key, optionally in printable format.\nWrite down the passphrase. Store both at safe place(s).\n");
            }
            Ok(EXIT_SUCCESS)
        }
        Command::Key(KeyCommand::Export(a)) => {
            let loc = repo_location(a.location.as_deref())?;
            let format = if a.paper {
                commands::key::ExportFormat::Paper
            } else if a.qr_html {
                commands::key::ExportFormat::QrHtml
            } else {
                commands::key::ExportFormat::KeyFile
            };
            let data = commands::key::export(&loc, format, lock_wait)?;
            match a.path.as_deref() {
                None | Some("-") => {
                    let _ = std::io::stdout().write_all(&data);
                }
                Some(p) => {
                    if std::path::Path::new(p).is_dir() {
                        return Err(CommandError::new(format!(
                            "'{p}' must be a file, not a directory"
                        )));
                    }
                    std::fs::write(p, &data).map_err(|e| CommandError::new(format!("{p}: {e}")))?;
                }
            }
            Ok(EXIT_SUCCESS)
        }
        Command::Key(KeyCommand::Import(a)) => {
            let loc = repo_location(a.location.as_deref())?;
            if a.paper {
                if a.path.is_some() {
                    return Err(CommandError::new(
                        "with --paper import from file is not supported",
                    ));
                }
                let stdin = std::io::stdin();
                let mut read_line = |prompt: &str| {
                    print!("{prompt}");
                    let _ = std::io::stdout().flush();
                    let mut line = String::new();
                    match stdin.lock().read_line(&mut line) {
                        Ok(0) | Err(_) => None,
                        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
                    }
                };
                let mut say = |m: &str| println!("{m}");
                if commands::key::import_paper(&loc, lock_wait, &mut read_line, &mut say)?.is_none()
                {
                    println!("\n - aborted");
                }
                return Ok(EXIT_SUCCESS);
            }
            let Some(path) = a.path else {
                return Err(CommandError::new("input file to import key from expected"));
            };
            commands::key::import(&loc, &path, lock_wait)?;
            Ok(EXIT_SUCCESS)
        }
        Command::Key(KeyCommand::ExportRelatedSecrets(a)) => cmd_related_secrets::run(a, common),
        Command::Key(KeyCommand::ChangePassphrase(a)) | Command::ChangePassphrase(a) => {
            let loc = repo_location(a.location.as_deref())?;
            let where_ = commands::key::change_passphrase(&loc, lock_wait, &confirm)?;
            log::info("Key updated");
            if let commands::common::KeyLocation::File(p) = where_ {
                log::info(&format!("Key location: {}", p.display()));
            }
            Ok(EXIT_SUCCESS)
        }
        Command::BreakLock(a) => {
            let loc = repo_location(a.location.as_deref())?;
            commands::break_lock::run(&loc)?;
            Ok(EXIT_SUCCESS)
        }
        Command::Check(a) => {
            let loc = location(a.location.as_deref())?;
            let glob = match (&a.filter.glob_archives, &a.filter.prefix) {
                (Some(g), _) => Some(g.clone()),
                (None, Some(p)) => Some(format!("{p}*")),
                (None, None) => None,
            };
            let opts = commands::check::CheckOptions {
                repository_only: a.repository_only,
                archives_only: a.archives_only,
                verify_data: a.verify_data,
                repair: a.repair,
                save_space: a.save_space,
                max_duration: a.max_duration,
                has_archive_filter: a.filter.first.is_some()
                    || a.filter.last.is_some()
                    || a.filter.glob_archives.is_some()
                    || a.filter.prefix.is_some(),
                selection: commands::check_archives::Selection {
                    archive: loc.archive.clone(),
                    glob,
                    sort_by: a.filter.sort_by.clone(),
                    first: a.filter.first,
                    last: a.filter.last,
                },
            };
            if opts.repair
                && !ask_yes(
                    "This is a potentially dangerous function.\ncheck --repair might lead to data loss (for kinds of corruption it is not\ncapable of dealing with). BE VERY CAREFUL!\n\nType 'YES' if you understand this and want to continue: ",
                    "BORG_CHECK_I_KNOW_WHAT_I_AM_DOING",
                    &["YES"],
                )
            {
                return Err(cancelled_by_user());
            }
            commands::check::validate(&opts)?;
            let mut print_repository = |report: &crate::repo::CheckReport| {
                // A remote check reports through the server's log lines ("Remote: …").
                if report.messages.is_empty() {
                    return;
                }
                log::log(
                    log::Level::Info,
                    "borg.repository",
                    None,
                    "Starting repository check",
                );
                let last = report.messages.len().saturating_sub(1);
                for (i, m) in report.messages.iter().enumerate() {
                    let level = if i == last && report.errors == 0 {
                        log::Level::Info
                    } else {
                        log::Level::Error
                    };
                    log::log(level, "borg.repository", None, m);
                }
            };
            let show_progress = common.progress;
            let json = log::json_enabled();
            let mut progress = |ev: &commands::check_archives::ProgressEvent| {
                if show_progress {
                    use std::io::Write;
                    let text = commands::check_archives::render_progress(ev, json);
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(text.as_bytes());
                    let _ = err.flush();
                }
            };
            let outcome = commands::check::run(
                &loc,
                &opts,
                common.lock_spec(),
                &mut print_repository,
                &mut progress,
            )?;
            Ok(if outcome.ok {
                EXIT_SUCCESS
            } else {
                EXIT_WARNING
            })
        }
        Command::Create(a) => cmd_create::run(*a, common, &confirm),
        Command::List(a) => cmd_list::run(a, common, &confirm),
        Command::Delete(a) => cmd_delete::run(a, common, &confirm),
        Command::Rename(a) => cmd_rename::run(a, common, &confirm),
        Command::Recreate(a) => cmd_recreate::run(*a, common, &confirm),
        Command::Extract(a) => cmd_extract::run(a, common),
        Command::ExportTar(a) => cmd_export_tar::run(a, common),
        Command::ImportTar(a) => cmd_import_tar::run(a, common, &confirm),
        Command::Diff(a) => cmd_diff::run(a, common),
        Command::Info(a) => {
            let loc = location(a.location.as_deref())?;
            if cmd_info_archive::wants_archives(&a, loc.archive.is_some()) {
                return cmd_info_archive::run(&a, &loc, common, &confirm);
            }
            let info = commands::info::repo_info(&loc, common.lock_spec(), &confirm)?;
            print_repo_info(&info, a.json, common.iec);
            Ok(EXIT_SUCCESS)
        }
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
        Command::Debug(a) => cmd_debug::run(a, common),
        Command::Benchmark(a) => cmd_benchmark::run(a, common),
        Command::Completion(a) => cmd_completion::completion(&a),
        Command::Man(a) => cmd_completion::man(&a),
        Command::Help(a) => Ok(run_help(&a)),
        Command::Version(a) => {
            let loc = repo_location(a.location.as_deref())?;
            let v = commands::version::run(&loc, lock_wait)?;
            print_stdout(&format!(
                "{} / {}",
                crate::version::format_version(&v.client),
                crate::version::format_version(&v.server)
            ));
            Ok(EXIT_SUCCESS)
        }
    }
}

/// `help [TOPIC] [--epilog-only | --usage-only]`, as borg's: the whole help, a topic, or a
/// command's help (only its description, or only its usage and options). An unknown topic
/// is an error that lists what there is.
fn run_help(a: &args::HelpArgs) -> i32 {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.build();
    let Some(topic) = a.topic.as_deref() else {
        print_stdout(&cli.render_long_help().to_string());
        return EXIT_SUCCESS;
    };
    if let Some(text) = help_topics::topic(topic) {
        print_stdout(text);
        return EXIT_SUCCESS;
    }
    let commands: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let Some(cmd) = cli.find_subcommand_mut(topic) else {
        let mut names = commands;
        names.sort();
        eprintln!(
            "{}
hoard: error: No help available on {topic}.
Try one of the following:
    Commands: {}
    Topics: {}",
            Cli::command().render_usage(),
            names.join(", "),
            help_topics::TOPICS.join(", ")
        );
        return EXIT_ERROR;
    };
    if a.epilog_only {
        // the description: the long text when the command has one, and what follows the
        // options
        let about = cmd
            .get_long_about()
            .or_else(|| cmd.get_about())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let after = cmd
            .get_after_long_help()
            .or_else(|| cmd.get_after_help())
            .map(|t| t.to_string())
            .unwrap_or_default();
        print_stdout([about, after].join("\n\n").trim());
    } else if a.usage_only {
        // the short help: usage, the one-line description and the options
        print_stdout(&cmd.render_help().to_string());
    } else {
        print_stdout(&cmd.render_long_help().to_string());
    }
    EXIT_SUCCESS
}

fn print_repo_info(info: &commands::info::RepoInfo, as_json: bool, iec: bool) {
    use commands::common::KeyLocation;
    let s = info.stats;
    if as_json {
        let mut encryption = json!({"mode": info.key_type.mode_name()});
        if let KeyLocation::File(p) = &info.key_location {
            encryption["keyfile"] = json!(p.to_string_lossy());
        }
        let v = json!({
            "cache": {
                "path": info.cache_path.to_string_lossy(),
                "stats": {
                    "total_chunks": s.total_chunks,
                    "total_csize": s.total_csize,
                    "total_size": s.total_size,
                    "total_unique_chunks": s.total_unique_chunks,
                    "unique_csize": s.unique_csize,
                    "unique_size": s.unique_size,
                }
            },
            "encryption": encryption,
            "repository": {
                "id": hex::encode(info.id),
                "last_modified": output::json_timestamp_seconds(&info.last_modified),
                "location": info.location,
            },
            "security_dir": info.security_dir.to_string_lossy(),
        });
        print_stdout(&output::json_pretty(&v));
        return;
    }
    let mut encryption = info.key_type.info_encryption();
    if let KeyLocation::File(p) = &info.key_location {
        encryption.push_str(&format!("\nKey file: {}", p.display()));
    }
    let size = |v: u64| output::format_file_size(v as i128, iec);
    print_stdout(&format!(
        "Repository ID: {}\nLocation: {}\n{}\nCache: {}\nSecurity dir: {}",
        hex::encode(info.id),
        info.location,
        encryption,
        info.cache_path.display(),
        info.security_dir.display()
    ));
    print_stdout(&"-".repeat(78));
    print_stdout("                       Original size      Compressed size    Deduplicated size");
    print_stdout(&format!(
        "All archives:   {:>20} {:>20} {:>20}\n\n                       Unique chunks         Total chunks\nChunk index:    {:>20} {:>20}",
        size(s.total_size),
        size(s.total_csize),
        size(s.unique_csize),
        s.total_unique_chunks,
        s.total_chunks
    ));
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

/// Hands the remote-repository options to the client and routes the server's log lines
/// through borg-style logging.
fn configure_remote(common: &CommonOptions) {
    let log_level_flag = if common.debug {
        Some("--debug")
    } else if common.info {
        Some("--info")
    } else if common.critical {
        Some("--critical")
    } else if common.error {
        Some("--error")
    } else {
        None
    };
    crate::repo::remote::set_client_options(crate::repo::remote::ClientOptions {
        rsh: common.rsh.clone(),
        remote_path: common.remote_path.clone(),
        log_level_flag: log_level_flag.map(str::to_string),
        debug_topics: common.debug_topic.clone(),
        upload_ratelimit: common.upload_ratelimit.unwrap_or(0),
        upload_buffer: common.upload_buffer.unwrap_or(0),
    });
    crate::repo::remote::logline::set_sink(remote_log_sink);
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
                eprintln!("{message}");
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
    configure_remote(&cli.common);
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
    let outcome = match cli.common.debug_profile.clone() {
        Some(path) => {
            let name = cmd_debug::command_name(&cli.command);
            cmd_debug::run_profiled(&path, &name, || run_command(cli.command, &cli.common))
        }
        None => run_command(cli.command, &cli.common),
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
