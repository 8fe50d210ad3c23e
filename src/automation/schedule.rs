//! `hoard schedule`: a crontab line or a systemd service + timer pair for a job.

use std::path::Path;

/// Parses `HH:MM` into (hour, minute).
pub fn parse_at(at: &str) -> Result<(u32, u32), String> {
    let (h, m) = at
        .split_once(':')
        .ok_or_else(|| format!("--at {at:?}: expected HH:MM"))?;
    let h: u32 = h.parse().map_err(|_| format!("--at {at:?}: bad hour"))?;
    let m: u32 = m.parse().map_err(|_| format!("--at {at:?}: bad minute"))?;
    if h > 23 || m > 59 {
        return Err(format!("--at {at:?}: out of range"));
    }
    Ok((h, m))
}

/// The crontab line running `exe run --config job_dir` daily at `h:m`.
pub fn crontab_line(exe: &Path, job_dir: &Path, h: u32, m: u32) -> String {
    // `%` is special in crontab: the paths are quoted and must not contain it.
    format!(
        "{m} {h} * * * {} run --config {}",
        shell_words::quote(&exe.to_string_lossy()),
        shell_words::quote(&job_dir.to_string_lossy())
    )
}

/// The systemd (service, timer) units for the job.
pub fn systemd_units(exe: &Path, job_dir: &Path, name: &str, h: u32, m: u32) -> (String, String) {
    let q = |p: &Path| {
        let s = p.to_string_lossy();
        if s.contains([' ', '"', '\\']) {
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            s.into_owned()
        }
    };
    let service = format!(
        "[Unit]\nDescription=hoard backup job {name}\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart={} run --config {}\n",
        q(exe),
        q(job_dir)
    );
    let timer = format!(
        "[Unit]\nDescription=Daily hoard backup job {name}\n\n[Timer]\nOnCalendar=*-*-* {h:02}:{m:02}:00\nPersistent=true\nRandomizedDelaySec=300\n\n[Install]\nWantedBy=timers.target\n"
    );
    (service, timer)
}

/// A unit-name-safe version of a job name.
pub fn unit_name(job: &str) -> String {
    let safe: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("hoard-{safe}")
}
