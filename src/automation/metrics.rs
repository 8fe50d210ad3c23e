//! A job's status as a Prometheus text-format file (exposition format 0.0.4) for
//! node_exporter's textfile collector: one gauge per figure, labelled `job="NAME"`, with HELP
//! and TYPE lines. Figures that are unknown (no archive made, repository unreadable,
//! verification coverage not measured) are left out rather than written as zero.
//! [`status::write_atomic`](super::status::write_atomic) writes the file.

use std::fmt::Write;

use super::status::JobStatus;

/// The exposition format's label value escaping: backslash, double quote and newline.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The metrics text for one job's last run.
pub fn render(s: &JobStatus) -> String {
    let label = format!("{{job=\"{}\"}}", escape_label(&s.job));
    let ts =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_micros() as f64 / 1e6);
    let sizes = s.sizes.as_ref();
    let gauges: [(&str, &str, Option<f64>); 14] = [
        (
            "hoard_job_last_success_timestamp_seconds",
            "Unix time the job last ended with exit code 0 or 1.",
            ts(s.last_success_time()),
        ),
        (
            "hoard_job_last_run_timestamp_seconds",
            "Unix time the job's last run ended.",
            ts(s.end_time()),
        ),
        (
            "hoard_job_last_run_success",
            "1 if the job's last run succeeded (exit code 0 or 1), else 0.",
            Some(if s.succeeded() { 1.0 } else { 0.0 }),
        ),
        (
            "hoard_job_last_run_exit_code",
            "Exit code of the job's last run (0 success, 1 warning, 2 failure).",
            Some(f64::from(s.exit_code)),
        ),
        (
            "hoard_job_last_run_duration_seconds",
            "Duration of the job's last run.",
            Some(s.duration_seconds),
        ),
        (
            "hoard_job_last_run_tries",
            "Attempts the backup step used in the job's last run.",
            Some(f64::from(s.tries)),
        ),
        (
            "hoard_job_last_archive_files",
            "Files in the archive the last run made.",
            sizes.map(|z| z.files as f64),
        ),
        (
            "hoard_job_last_archive_original_bytes",
            "Original size of the archive the last run made.",
            sizes.map(|z| z.original as f64),
        ),
        (
            "hoard_job_last_archive_compressed_bytes",
            "Compressed size of the archive the last run made.",
            sizes.map(|z| z.compressed as f64),
        ),
        (
            "hoard_job_last_archive_deduplicated_bytes",
            "Deduplicated size (data added to the repository) of the archive the last run made.",
            sizes.map(|z| z.deduplicated as f64),
        ),
        (
            "hoard_job_last_archive_duration_seconds",
            "Time the last run's create step took.",
            sizes.map(|z| z.duration_seconds),
        ),
        (
            "hoard_job_repository_archives",
            "Archives in the job's repository after its last run.",
            s.archive_count.map(|n| n as f64),
        ),
        (
            "hoard_job_repository_size_bytes",
            "Stored (deduplicated, compressed) size of the job's repository after its last run.",
            s.repository_size.map(|n| n as f64),
        ),
        (
            "hoard_job_verification_coverage_ratio",
            "Share of the repository's data verified recently (0 to 1).",
            s.verification_coverage,
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in gauges {
        let Some(v) = value.filter(|v| v.is_finite()) else {
            continue;
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name}{label} {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automation::status::ArchiveSizes;

    #[test]
    fn unknown_figures_are_left_out_and_labels_escaped() {
        let mut s = JobStatus {
            job: "we\"ird\\job\n".into(),
            repository: "/r".into(),
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-01-01T00:01:00.5Z".into(),
            duration_seconds: 60.5,
            result: "failure".into(),
            exit_code: 2,
            tries: 3,
            steps: Vec::new(),
            archive: None,
            sizes: None,
            archive_count: None,
            repository_size: None,
            repository_original_size: None,
            last_success: None,
            verification_coverage: None,
            verification_coverage_days: None,
            reason: None,
        };
        let text = render(&s);
        assert!(text.contains("hoard_job_last_run_success{job=\"we\\\"ird\\\\job\\n\"} 0\n"));
        assert!(
            text.contains("hoard_job_last_run_timestamp_seconds{job=")
                && text.contains("} 1767225660.5\n")
        );
        assert!(!text.contains("hoard_job_last_success_timestamp_seconds"));
        assert!(!text.contains("archive_files"));
        assert!(!text.contains("coverage"));
        s.sizes = Some(ArchiveSizes {
            files: 2,
            original: 10,
            compressed: 8,
            deduplicated: 5,
            duration_seconds: 0.25,
        });
        s.verification_coverage = Some(0.5);
        let text = render(&s);
        assert!(text.contains("# TYPE hoard_job_last_archive_deduplicated_bytes gauge\nhoard_job_last_archive_deduplicated_bytes{job="));
        assert!(text
            .contains("hoard_job_verification_coverage_ratio{job=\"we\\\"ird\\\\job\\n\"} 0.5\n"));
    }
}
