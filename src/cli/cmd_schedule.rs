//! `hoard schedule`: prints (or installs) a crontab line or systemd service + timer.

use clap::Args;

use super::options::CommonOptions;
use crate::automation::{config, schedule};
use crate::commands::CommandError;

/// `schedule`
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// job name or path (as for `hoard run --config`)
    #[arg(long, value_name = "NAME")]
    pub config: String,
    /// daily start time
    #[arg(long, value_name = "HH:MM", default_value = "02:00")]
    pub at: String,
    /// emit a systemd service + timer instead of a crontab line
    #[arg(long)]
    pub systemd: bool,
    /// install it (crontab of this user, or ~/.config/systemd/user)
    #[arg(long)]
    pub install: bool,
}

/// Prints or installs the schedule.
pub fn run(a: ScheduleArgs, _common: &CommonOptions) -> Result<i32, CommandError> {
    let (dir, _file) = config::resolve(&a.config).map_err(|e| CommandError::new(e.0))?;
    let (h, m) = schedule::parse_at(&a.at).map_err(CommandError::new)?;
    let exe = std::env::current_exe()
        .map_err(|e| CommandError::new(format!("cannot find the hoard executable: {e}")))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    if a.systemd {
        let (service, timer) = schedule::systemd_units(&exe, &dir, &name, h, m);
        let unit = schedule::unit_name(&name);
        if a.install {
            let home =
                std::env::var_os("HOME").ok_or_else(|| CommandError::new("HOME is not set"))?;
            let d = std::path::PathBuf::from(home).join(".config/systemd/user");
            std::fs::create_dir_all(&d)
                .map_err(|e| CommandError::new(format!("{}: {e}", d.display())))?;
            for (ext, text) in [("service", &service), ("timer", &timer)] {
                let p = d.join(format!("{unit}.{ext}"));
                std::fs::write(&p, text)
                    .map_err(|e| CommandError::new(format!("{}: {e}", p.display())))?;
                println!("wrote {}", p.display());
            }
            println!("enable with: systemctl --user daemon-reload && systemctl --user enable --now {unit}.timer");
        } else {
            println!("# {unit}.service\n{service}\n# {unit}.timer\n{timer}");
        }
    } else {
        let line = schedule::crontab_line(&exe, &dir, h, m);
        if a.install {
            let current = std::process::Command::new("crontab")
                .arg("-l")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if current.lines().any(|l| l == line) {
                println!("already installed: {line}");
                return Ok(0);
            }
            let mut text = current;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            text.push('\n');
            let mut child = std::process::Command::new("crontab")
                .arg("-")
                .stdin(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| CommandError::new(format!("crontab: {e}")))?;
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                stdin
                    .write_all(text.as_bytes())
                    .map_err(|e| CommandError::new(format!("crontab: {e}")))?;
            }
            let st = child
                .wait()
                .map_err(|e| CommandError::new(format!("crontab: {e}")))?;
            if !st.success() {
                return Err(CommandError::new(format!("crontab - failed: {st}")));
            }
            println!("installed: {line}");
        } else {
            println!("{line}");
        }
    }
    Ok(0)
}
