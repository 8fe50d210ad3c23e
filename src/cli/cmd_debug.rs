//! `hoard debug …`: arguments and output of [`commands::debug`](crate::commands::debug), and
//! the `--debug-profile FILE` wrapper around a whole run (format: see
//! [`commands::debug::profile`](crate::commands::debug::profile)).

use std::io::Write;

use clap::{Args, Subcommand};

use super::options::CommonOptions;
use super::{confirm, location, print_stdout, repo_location, EXIT_SUCCESS};
use crate::commands::debug::{self, dump, objects, profile, OpenFlags};
use crate::commands::CommandError;

/// `debug …` (debugging commands, not intended for normal use)
#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// show system infos for debugging / bug reports (debug)
    Info,
    /// dump archive items (metadata) (debug)
    DumpArchiveItems(ArchiveArg),
    /// dump decoded archive metadata (debug)
    DumpArchive(ArchivePathArgs),
    /// dump decoded repository metadata (debug)
    DumpManifest(RepoPathArgs),
    /// dump repo objects (debug)
    DumpRepoObjs(DumpRepoObjsArgs),
    /// search repo objects (debug)
    SearchRepoObjs(SearchArgs),
    /// compute id-hash for some file content (debug)
    IdHash(RepoPathArgs),
    /// get object from repository (debug)
    GetObj(ObjPathArgs),
    /// put object to repository (debug)
    PutObj(ObjPathArgs),
    /// delete object from repository (debug)
    DeleteObj(IdsArgs),
    /// show refcount for object from repository (debug)
    RefcountObj(IdsArgs),
    /// dump repo hints (debug)
    DumpHints(RepoPathArgs),
    /// convert Borg profile to Python profile (debug)
    ConvertProfile(ConvertProfileArgs),
}

/// `ARCHIVE`
#[derive(Debug, Args)]
pub struct ArchiveArg {
    /// archive to dump
    #[arg(value_name = "ARCHIVE")]
    pub location: String,
}

/// `ARCHIVE PATH`
#[derive(Debug, Args)]
pub struct ArchivePathArgs {
    /// archive to dump
    #[arg(value_name = "ARCHIVE")]
    pub location: String,
    /// file to dump data into
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// `REPOSITORY PATH`
#[derive(Debug, Args)]
pub struct RepoPathArgs {
    /// repository to use
    #[arg(value_name = "REPOSITORY")]
    pub location: String,
    /// file to dump data into (id-hash: content for which the id-hash shall get computed)
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// `dump-repo-objs`
#[derive(Debug, Args)]
pub struct DumpRepoObjsArgs {
    /// repository to dump
    #[arg(value_name = "REPOSITORY")]
    pub location: String,
    /// dump all segment file contents, including deleted/uncommitted objects and commits.
    #[arg(long)]
    pub ghost: bool,
    /// used together with --ghost: limit processing to given segment.
    #[arg(long, value_name = "SEG", value_parser = positive_int)]
    pub segment: Option<u32>,
    /// used together with --ghost: limit processing to given offset.
    #[arg(long, value_name = "OFFS", value_parser = positive_int)]
    pub offset: Option<u32>,
}

/// borg's `positive_int_validator` (here: 1 ..= 2**32 - 1, what a segment number or offset
/// can be).
fn positive_int(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive integer")),
    }
}

/// `search-repo-objs`
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// repository to search
    #[arg(value_name = "REPOSITORY")]
    pub location: String,
    /// term to search the repo for, either hex:1234abcd or str:text
    #[arg(value_name = "WANTED")]
    pub wanted: String,
}

/// `REPOSITORY ID PATH`
#[derive(Debug, Args)]
pub struct ObjPathArgs {
    /// repository to use
    #[arg(value_name = "REPOSITORY")]
    pub location: String,
    /// hex object ID
    #[arg(value_name = "ID")]
    pub id: String,
    /// file to write object data into (put-obj: file to read and create object from)
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// `REPOSITORY IDs…`
#[derive(Debug, Args)]
pub struct IdsArgs {
    /// repository to use
    #[arg(value_name = "REPOSITORY")]
    pub location: String,
    /// hex object ID(s)
    #[arg(value_name = "IDs", required = true, num_args = 1..)]
    pub ids: Vec<String>,
}

/// `convert-profile`
#[derive(Debug, Args)]
pub struct ConvertProfileArgs {
    /// Borg profile
    #[arg(value_name = "INPUT")]
    pub input: String,
    /// Output file
    #[arg(value_name = "OUTPUT")]
    pub output: String,
}

fn flags(common: &CommonOptions) -> OpenFlags {
    OpenFlags {
        exclusive: false,
        lock_wait: common.lock_wait,
        lock: !common.bypass_lock,
    }
}

/// Opens a dump's output: stdout for `-`, else the file (created or truncated).
fn opener(path: &str) -> impl FnMut() -> Result<Box<dyn Write>, CommandError> + '_ {
    move || {
        if path == "-" {
            return Ok(Box::new(std::io::stdout()) as Box<dyn Write>);
        }
        let f = std::fs::File::create(path)
            .map_err(|e| CommandError::new(format!("{path}: {}", crate::platform::strerror(&e))))?;
        Ok(Box::new(std::io::BufWriter::new(f)) as Box<dyn Write>)
    }
}

fn archive_location(
    text: &str,
    common: &CommonOptions,
) -> Result<crate::location::Location, CommandError> {
    let loc = location(Some(text), common)?;
    if loc.archive.is_none() {
        return Err(CommandError::new(format!(
            "argument ARCHIVE: \"{text}\": No archive specified"
        )));
    }
    Ok(loc)
}

/// Runs one `debug` subcommand.
pub fn run(cmd: DebugCommand, common: &CommonOptions) -> Result<i32, CommandError> {
    let mut say = |line: &str| print_stdout(line);
    match cmd {
        DebugCommand::Info => {
            let argv: Vec<String> = std::env::args().collect();
            for line in debug::info::lines(crate::version::BORG_VERSION, &argv) {
                print_stdout(&line);
            }
        }
        DebugCommand::DumpArchiveItems(a) => {
            let loc = archive_location(&a.location, common)?;
            dump::dump_archive_items(&loc, flags(common), &confirm, &mut say)?;
        }
        DebugCommand::DumpArchive(a) => {
            let loc = archive_location(&a.location, common)?;
            dump::dump_archive(&loc, flags(common), &confirm, &mut opener(&a.path))?;
        }
        DebugCommand::DumpManifest(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            dump::dump_manifest(&loc, flags(common), &confirm, &mut opener(&a.path))?;
        }
        DebugCommand::DumpRepoObjs(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            let opts = dump::RepoObjsOptions {
                ghost: a.ghost,
                segment: a.segment,
                offset: a.offset,
            };
            let mut warn = |m: &str| super::log::error(m, None);
            dump::dump_repo_objs(&loc, flags(common), opts, &mut say, &mut warn)?;
        }
        DebugCommand::SearchRepoObjs(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            dump::search_repo_objs(&loc, flags(common), &a.wanted, &mut say)?;
        }
        DebugCommand::IdHash(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            let id = objects::id_hash(&loc, flags(common), &a.path, &confirm)?;
            print_stdout(&hex::encode(id));
        }
        DebugCommand::GetObj(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            objects::get_obj(&loc, flags(common), &a.id, &a.path, &mut say)?;
        }
        DebugCommand::PutObj(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            objects::put_obj(&loc, flags(common), &a.id, &a.path, &mut say)?;
        }
        DebugCommand::DeleteObj(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            objects::delete_obj(&loc, flags(common), &a.ids, &mut say)?;
        }
        DebugCommand::RefcountObj(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            objects::refcount_obj(&loc, flags(common), &a.ids, &confirm, &mut say)?;
        }
        DebugCommand::DumpHints(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            dump::dump_hints(&loc, flags(common), &mut opener(&a.path))?;
        }
        DebugCommand::ConvertProfile(a) => {
            let input = read_limited(&a.input)?;
            let converted = profile::convert(&input)?;
            std::fs::write(&a.output, converted).map_err(|e| {
                CommandError::new(format!("{}: {}", a.output, crate::platform::strerror(&e)))
            })?;
        }
    }
    Ok(EXIT_SUCCESS)
}

fn read_limited(path: &str) -> Result<Vec<u8>, CommandError> {
    use std::io::Read;
    let err =
        |e: std::io::Error| CommandError::new(format!("{path}: {}", crate::platform::strerror(&e)));
    let f = std::fs::File::open(path).map_err(err)?;
    let mut data = Vec::new();
    f.take(profile::MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(err)?;
    if data.len() as u64 > profile::MAX_PROFILE_BYTES {
        return Err(CommandError::new(format!(
            "{path}: a profile larger than {} bytes is not read",
            profile::MAX_PROFILE_BYTES
        )));
    }
    Ok(data)
}

/// The `--debug-profile FILE` wrapper: opens `FILE` before the command runs (so that a bad
/// path fails early, as in borg), runs it, then writes the profile whatever the outcome.
pub fn run_profiled(
    path: &str,
    command_name: &str,
    run: impl FnOnce() -> Result<i32, CommandError>,
) -> Result<i32, CommandError> {
    let started = std::time::Instant::now();
    super::log::log(
        super::log::Level::Debug,
        "borg.archiver",
        None,
        &format!("Writing execution profile to {path}"),
    );
    let mut file = std::fs::File::create(path)
        .map_err(|e| CommandError::new(format!("{path}: {}", crate::platform::strerror(&e))))?;
    let result = run();
    let (cpu_user, cpu_system) = profile::cpu_times();
    let wall = started.elapsed().as_secs_f64();
    let times = profile::RunTimes {
        command: command_name.to_string(),
        wall,
        command_wall: wall,
        cpu_user,
        cpu_system,
    };
    let written = profile::encode_profile(&times, path).and_then(|bytes| {
        file.write_all(&bytes)
            .map_err(|e| CommandError::new(format!("{path}: {}", crate::platform::strerror(&e))))
    });
    match (result, written) {
        (Ok(code), Ok(())) => Ok(code),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    }
}

/// The name of a parsed command as borg's handler names it (`create`, `debug_info`, …).
pub fn command_name(cmd: &impl std::fmt::Debug) -> String {
    // The variant name of the clap enum, as clap spells the subcommand (kebab-case words).
    let text = format!("{cmd:?}");
    let variant: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut out = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_whole_command_line_is_a_valid_clap_definition() {
        // clap checks positional order and the like only when a subcommand is first used;
        // this finds such mistakes in every subcommand at once.
        super::super::args::Cli::command().debug_assert();
    }

    #[test]
    fn command_names_follow_borgs_handlers() {
        let cli = super::super::args::Cli::try_parse_from(["hoard", "debug", "info"]).unwrap();
        assert_eq!(command_name(&cli.command), "debug");
        let cli = super::super::args::Cli::try_parse_from(["hoard", "break-lock", "r"]).unwrap();
        assert_eq!(command_name(&cli.command), "break_lock");
    }
}
