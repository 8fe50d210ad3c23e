//! `info`: the repository's information, and for `info REPO::ARCHIVE` (and `info REPO` with
//! `--first/--last/-a/-P`) borg's archive info text block and `--json`.

use clap::Args;
use serde_json::json;

use crate::commands::archive_info::{self, ArchiveDetails, ArchivesInfo, InfoTargets};
use crate::commands::list::shlex_quote;
use crate::commands::select::Selection;
use crate::commands::{self, CommandError};

use super::options::{ArchiveFilter, CommonOptions};
use super::{confirm, location, output, print_stdout, EXIT_SUCCESS};

const FLOAT_MARK: &str = "@@pyfloat@@";

fn float_json(v: f64) -> serde_json::Value {
    json!(format!("{FLOAT_MARK}{}{FLOAT_MARK}", output::py_float(v)))
}

/// Pretty JSON with the float placeholders replaced by Python's float text.
fn json_with_floats(v: &serde_json::Value) -> String {
    let text = output::json_pretty(v);
    let mut out = String::with_capacity(text.len());
    let quoted = format!("\"{FLOAT_MARK}");
    let mut rest = text.as_str();
    while let Some(pos) = rest.find(&quoted) {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + quoted.len()..];
        let end_mark = format!("{FLOAT_MARK}\"");
        match after.find(&end_mark) {
            Some(e) => {
                out.push_str(&after[..e]);
                rest = &after[e + end_mark.len()..];
            }
            None => {
                out.push_str(&rest[pos..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn archive_json(d: &ArchiveDetails) -> serde_json::Value {
    json!({
        "chunker_params": d.chunker_params,
        "command_line": d.command_line,
        "comment": d.comment,
        "cwd": d.cwd,
        "duration": float_json(d.duration),
        "end": crate::commands::list::iso_time(&d.end),
        "hostname": d.hostname,
        "id": d.id,
        "limits": {"max_archive_size": float_json(d.max_archive_size)},
        "name": d.name,
        "start": crate::commands::list::iso_time(&d.start),
        "stats": {
            "compressed_size": d.compressed_size,
            "deduplicated_size": d.deduplicated_size,
            "nfiles": d.nfiles,
            "original_size": d.original_size,
        },
        "username": d.username,
    })
}

/// True if `info` should describe archives rather than the repository.
pub fn wants_archives(a: &InfoArgs, has_archive: bool) -> bool {
    has_archive
        || a.filter.first.unwrap_or(0) > 0
        || a.filter.last.unwrap_or(0) > 0
        || a.filter.prefix.is_some()
        || a.filter
            .glob_archives
            .as_deref()
            .is_some_and(|g| !g.is_empty())
}

/// Runs `info` on archives and prints the result.
pub fn run_archives(
    a: &InfoArgs,
    loc: &crate::location::Location,
    common: &CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    let targets = match &loc.archive {
        // borg ignores the selection options when an archive is named
        Some(name) => InfoTargets::Name(name.as_bytes().to_vec()),
        None => InfoTargets::Selection(Selection::new(
            a.filter.prefix.clone(),
            a.filter.glob_archives.clone(),
            &a.filter.sort_by,
            a.filter.first,
            a.filter.last,
            true,
        )?),
    };
    let info = archive_info::archives_info(
        loc,
        &targets,
        common.consider_part_files,
        common.lock_spec(),
        confirm,
    )?;
    print(&info, a.json, common.iec);
    Ok(super::EXIT_SUCCESS)
}

fn print(info: &ArchivesInfo, as_json: bool, iec: bool) {
    let x = info.index;
    if as_json {
        let mut v = output::basic_json(&info.opened);
        v["archives"] = serde_json::Value::Array(info.archives.iter().map(archive_json).collect());
        v["cache"] = json!({
            "path": crate::commands::common::repo_cache_dir(&info.opened.id()).to_string_lossy(),
            "stats": {
                "total_chunks": x.total_chunks,
                "total_csize": x.total_csize,
                "total_size": x.total_size,
                "total_unique_chunks": x.total_unique_chunks,
                "unique_csize": x.unique_csize,
                "unique_size": x.unique_size,
            }
        });
        println!("{}", json_with_floats(&v));
        return;
    }
    let size = |v: u64| output::format_file_size(v as i128, iec);
    let n = info.archives.len();
    for (i, d) in info.archives.iter().enumerate() {
        let cmdline = d
            .command_line
            .iter()
            .map(|s| shlex_quote(s))
            .collect::<Vec<_>>()
            .join(" ");
        let time = |t: &chrono::NaiveDateTime| t.format("%a, %Y-%m-%d %H:%M:%S").to_string();
        println!(
            "Archive name: {}\nArchive fingerprint: {}\nComment: {}\nHostname: {}\nUsername: {}\nTime (start): {}\nTime (end): {}\nDuration: {}\nNumber of files: {}\nWorking Directory: {}\nCommand line: {}\nUtilization of maximum supported archive size: {:.0}%\n{}\n                       Original size      Compressed size    Deduplicated size\nThis archive:   {:>20} {:>20} {:>20}\nAll archives:   {:>20} {:>20} {:>20}\n\n                       Unique chunks         Total chunks\nChunk index:    {:>20} {:>20}",
            d.name,
            d.id,
            d.comment,
            d.hostname,
            d.username,
            time(&d.start),
            time(&d.end),
            output::format_timedelta(d.duration),
            d.nfiles,
            d.cwd,
            cmdline,
            d.max_archive_size * 100.0,
            "-".repeat(78),
            size(d.original_size),
            size(d.compressed_size),
            size(d.deduplicated_size),
            size(x.total_size),
            size(x.total_csize),
            size(x.unique_csize),
            x.total_unique_chunks,
            x.total_chunks,
        );
        if i + 1 < n {
            println!();
        }
    }
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

/// Runs `info`; returns the exit code.
pub fn run(a: InfoArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = location(a.location.as_deref(), common)?;
    if wants_archives(&a, loc.archive.is_some()) {
        return run_archives(&a, &loc, common, &confirm);
    }
    let info = commands::info::repo_info(&loc, common.lock_spec(), &confirm)?;
    print_repo_info(&info, a.json, common.iec);
    Ok(EXIT_SUCCESS)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_quotes_like_python() {
        assert_eq!(shlex_quote("a-b/c.d"), "a-b/c.d");
        assert_eq!(shlex_quote("a b"), "'a b'");
        assert_eq!(shlex_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shlex_quote(""), "''");
    }
}
