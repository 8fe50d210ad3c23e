//! `export-tar`: clap arguments, output file / filter process handling.

use std::io::Write;
use std::process::{Command, Stdio};

use clap::Args;

use crate::commands::export_tar::{self, ExportTarOptions};
use crate::commands::extract;
use crate::commands::CommandError;

use super::extract_report::ExtractReporter;
use super::log;
use super::options::CommonOptions;
use super::options::{PatternOptions, Selector};
use super::progress_view::{Display, View};

/// `export-tar`
#[derive(Debug, Args)]
pub struct ExportTarArgs {
    /// archive to export
    #[arg(value_name = "ARCHIVE")]
    pub location: String,
    /// output tar file. "-" to write to stdout instead.
    #[arg(value_name = "FILE")]
    pub tarfile: String,
    /// paths to extract; patterns are supported
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// filter program to pipe data through
    #[arg(long = "tar-filter", value_name = "TAR_FILTER", default_value = "auto")]
    pub tar_filter: String,
    /// output verbose list of items (files, dirs, ...)
    #[arg(long = "list")]
    pub list: bool,
    /// select tar format: BORG, PAX or GNU (a hoard extension, as in borg 2; borg 1.4 always
    /// writes GNU, the default here)
    #[arg(
        long = "tar-format",
        value_name = "FMT",
        default_value = "GNU",
        value_parser = ["BORG", "PAX", "GNU"]
    )]
    pub tar_format: String,
    /// Remove the specified number of leading path elements. Paths with fewer elements will be silently skipped.
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "strip-components", value_name = "NUMBER", default_value_t = 0)]
    pub strip_components: usize,
    /// exclusion options
    #[command(flatten)]
    pub patterns: PatternOptions,
}

/// Runs `export-tar`; returns the exit code.
pub fn run(a: ExportTarArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = crate::location::Location::parse_with(Some(&a.location), &common.repo)?;
    let mut selector = Selector::new(&a.paths, &a.patterns)?;
    let filter_cmd: Option<String> = if a.tar_filter == "auto" {
        export_tar::auto_filter(&a.tarfile).map(str::to_string)
    } else {
        Some(a.tar_filter.clone()).filter(|f| !f.is_empty())
    };
    let (mut opened, meta) = extract::open_archive(&loc, common.lock_spec(), &super::confirm)?;
    let format = export_tar::TarFormat::parse(&a.tar_format)
        .ok_or_else(|| CommandError::new(format!("invalid --tar-format {:?}", a.tar_format)))?;
    let display = Display::for_process(common.progress);
    let opts = ExportTarOptions {
        strip_components: a.strip_components,
        consider_part_files: common.consider_part_files,
        // -p, or hoard's line on a terminal (see `progress_view`)
        progress: display.shown(),
        format,
    };
    let mut reporter =
        ExtractReporter::new(a.list, "Processing").with_view(View::new(display, common.iec));
    let partial = selector.is_partial();
    let mut sel = |p: &[u8]| selector.matches(p);

    let dest: Stdio = if a.tarfile == "-" {
        Stdio::inherit()
    } else {
        let f = std::fs::File::create(&a.tarfile)
            .map_err(|e| CommandError::new(format!("{}: {e}", a.tarfile)))?;
        if filter_cmd.is_none() {
            let mut w = std::io::BufWriter::new(f);
            let outcome = export_tar::export_tar(
                &mut opened.store,
                &meta,
                &opts,
                &mut sel,
                partial,
                &mut reporter,
                &mut w,
            )?;
            w.flush()?;
            return Ok(finish(&outcome, &selector, common.exit_codes));
        }
        Stdio::from(f)
    };
    let outcome = match filter_cmd {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            export_tar::export_tar(
                &mut opened.store,
                &meta,
                &opts,
                &mut sel,
                partial,
                &mut reporter,
                &mut out,
            )?
        }
        Some(cmd) => {
            let argv = shell_words::split(&cmd)
                .map_err(|e| CommandError::new(format!("invalid --tar-filter {cmd:?}: {e}")))?;
            let (prog, args) = argv
                .split_first()
                .ok_or_else(|| CommandError::new("empty --tar-filter"))?;
            let mut child = Command::new(prog)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(dest)
                .spawn()
                .map_err(|e| CommandError::new(format!("filter {cmd} failed to start: {e}")))?;
            let mut stdin = child
                .stdin
                .take()
                .ok_or_else(|| CommandError::new("filter stdin"))?;
            let res = export_tar::export_tar(
                &mut opened.store,
                &meta,
                &opts,
                &mut sel,
                partial,
                &mut reporter,
                &mut stdin,
            );
            drop(stdin);
            let status = child.wait()?;
            let outcome = res?;
            if !status.success() {
                return Err(CommandError::new(format!(
                    "filter {cmd} failed, rc={}",
                    status.code().unwrap_or(-1)
                )));
            }
            outcome
        }
    };
    Ok(finish(&outcome, &selector, common.exit_codes))
}

/// The exit code (borg 1.4's rule: one kind of warning gives its class's code in modern
/// mode, several kinds the generic warning).
fn finish(
    outcome: &crate::commands::extract::ExtractOutcome,
    selector: &Selector,
    mode: super::exit_codes::Mode,
) -> i32 {
    let mut codes: Vec<i32> = outcome
        .warning_classes
        .iter()
        .map(|c| super::exit_codes::warning_code(c))
        .collect();
    for w in selector.unmatched_warnings() {
        log::log(
            log::Level::Warning,
            "borg.archiver",
            Some("IncludePatternNeverMatchedWarning"),
            &w,
        );
        codes.push(super::exit_codes::warning_code(
            "IncludePatternNeverMatchedWarning",
        ));
    }
    super::exit_codes::for_mode(super::exit_codes::warnings_code(&codes), mode)
}
