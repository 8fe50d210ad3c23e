//! Job configuration: the classic `~/backup_scripts/<job>/config.yaml` layout, loaded and
//! validated up front so a bad job fails at load time with the file, line and key named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::step::StepRunner;

/// Name of the passphrase file in a job folder (read like `BORG_PASSCOMMAND 'cat FILE'`).
pub const PASSPHRASE_FILE: &str = "BORGKeyPassword.file";
/// Name of the exported key in a job folder (used as `BORG_KEY_FILE`).
pub const KEY_FILE: &str = "BORGKey.bak";
/// Name of the optional ssh key in a job folder (used through `BORG_RSH`).
pub const SSH_KEY_FILE: &str = "SSHKey.pem";

/// A configuration error: one line naming the file, the line and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    #[serde(default)]
    backup: Option<String>,
    #[serde(default)]
    cleanup: Option<String>,
}

/// Retention rules (`cleanup:`), passed to prune as `--keep-*`.
#[derive(Debug, Deserialize, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    /// `--keep-within`
    #[serde(default)]
    pub within: Option<String>,
    /// `--keep-last`
    #[serde(default)]
    pub last: Option<u32>,
    /// `--keep-hourly`
    #[serde(default)]
    pub hourly: Option<u32>,
    /// `--keep-daily`
    #[serde(default)]
    pub daily: Option<u32>,
    /// `--keep-weekly`
    #[serde(default)]
    pub weekly: Option<u32>,
    /// `--keep-monthly`
    #[serde(default)]
    pub monthly: Option<u32>,
    /// `--keep-13weekly` (key `13weekly`, or `keep_13weekly`)
    #[serde(default, rename = "13weekly", alias = "keep_13weekly")]
    pub weekly13: Option<u32>,
    /// `--keep-3monthly` (key `3monthly`, or `keep_3monthly`)
    #[serde(default, rename = "3monthly", alias = "keep_3monthly")]
    pub monthly3: Option<u32>,
    /// `--keep-yearly`
    #[serde(default)]
    pub yearly: Option<u32>,
}

impl Keep {
    /// The `--keep-*` arguments for prune.
    pub fn args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(w) = &self.within {
            v.push(format!("--keep-within={w}"));
        }
        for (name, n) in [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("13weekly", self.weekly13),
            ("3monthly", self.monthly3),
            ("yearly", self.yearly),
        ] {
            if let Some(n) = n {
                v.push(format!("--keep-{name}={n}"));
            }
        }
        v
    }
}

/// How many attempts each step gets.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tries {
    /// create
    #[serde(default = "three")]
    pub backup: u32,
    /// prune and compact
    #[serde(default = "three")]
    pub cleanup: u32,
    /// check
    #[serde(default = "one")]
    pub check: u32,
}

fn three() -> u32 {
    3
}
fn one() -> u32 {
    1
}

impl Default for Tries {
    fn default() -> Self {
        Tries {
            backup: 3,
            cleanup: 3,
            check: 1,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    #[serde(default)]
    every: Option<String>,
    #[serde(default)]
    verify_data: bool,
    #[serde(default)]
    max_duration: Option<RawSeconds>,
    #[serde(default)]
    coverage_days: Option<u64>,
}

/// Seconds as a YAML number or a duration text (`3600`, `1h`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSeconds {
    Number(u64),
    Text(String),
}

/// The periodic `check` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    /// Minimum seconds between two checks (0: every run).
    pub every_secs: u64,
    /// `--verify-data`
    pub verify_data: bool,
    /// `max_duration:` (`--max-duration`): verify data for at most this many seconds per run,
    /// least recently verified segments first; 0: the whole repository every time.
    pub max_duration_secs: u64,
    /// `coverage_days:`: the window of the status's `verification_coverage` (default 7).
    pub coverage_days: u64,
}

/// Shell commands run around the job.
#[derive(Debug, Deserialize, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Before the first step; a failure fails the job.
    #[serde(default)]
    pub before: Vec<String>,
    /// After the last step, whatever the outcome.
    #[serde(default)]
    pub after: Vec<String>,
    /// After `after`, only when the job failed.
    #[serde(default)]
    pub on_error: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPing {
    url: String,
    #[serde(default)]
    timeout: Option<f64>,
}

/// A Healthchecks-style monitor: `URL/start`, `URL`, `URL/fail`.
#[derive(Debug, Clone, PartialEq)]
pub struct PingConfig {
    /// Base URL.
    pub url: String,
    /// Timeout of each request, seconds.
    pub timeout: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    backup: Vec<String>,
    target: String,
    #[serde(default)]
    options: RawOptions,
    #[serde(default)]
    cleanup: Option<Keep>,
    #[serde(default)]
    tries: Tries,
    #[serde(default)]
    retry_wait: Option<f64>,
    #[serde(default)]
    check: Option<RawCheck>,
    #[serde(default)]
    compact: bool,
    #[serde(default)]
    archive_name: Option<String>,
    #[serde(default)]
    optional: Vec<String>,
    #[serde(default)]
    strict_permissions: bool,
    #[serde(default)]
    hooks: Hooks,
    #[serde(default)]
    ping: Option<RawPing>,
    #[serde(default)]
    log_file: Option<String>,
    #[serde(default)]
    encryption: Option<String>,
    #[serde(default)]
    metrics: Option<String>,
}

/// A loaded, validated job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The job's name (its folder's name).
    pub name: String,
    /// The job folder (key, passphrase, state and lock live here).
    pub dir: PathBuf,
    /// The config file.
    pub file: PathBuf,
    /// Paths to back up, environment variables expanded.
    pub backup: Vec<String>,
    /// Backup paths whose absence is not an error.
    pub optional: Vec<String>,
    /// The repository, environment variables expanded.
    pub target: String,
    /// Extra create options (already validated).
    pub create_options: Vec<String>,
    /// Extra prune/compact options (already validated).
    pub cleanup_options: Vec<String>,
    /// Retention.
    pub keep: Keep,
    /// Attempts per step.
    pub tries: Tries,
    /// The wait between two tries of a step.
    pub retry_wait: RetryWait,
    /// Periodic check, if configured.
    pub check: Option<CheckConfig>,
    /// Run compact after prune.
    pub compact: bool,
    /// Archive name pattern; `None` is the Unix time with microseconds (`1765068111.123456`).
    pub archive_name: Option<String>,
    /// Refuse (instead of warn) on group/world readable secrets.
    pub strict_permissions: bool,
    /// Hooks.
    pub hooks: Hooks,
    /// Monitor.
    pub ping: Option<PingConfig>,
    /// Extra log file.
    pub log_file: Option<PathBuf>,
    /// Encryption mode for `--init` (default `repokey`); `none` needs no passphrase file.
    pub encryption: String,
    /// `BORGKeyPassword.file`, when present.
    pub passphrase_file: Option<PathBuf>,
    /// `BORGKey.bak`, when present.
    pub key_file: Option<PathBuf>,
    /// `SSHKey.pem`, when present (required for an ssh target unless `BORG_RSH` is set).
    pub ssh_key: Option<PathBuf>,
    /// `metrics:`: the Prometheus text file written after each run (relative to the job
    /// folder), for node_exporter's textfile collector.
    pub metrics: Option<PathBuf>,
}

/// How long a job waits before trying a failed step again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryWait {
    /// No `retry_wait:` in the config: [`RetryWait::CLASSIC_SECS`] before every new try, as
    /// the classic script waited.
    Classic,
    /// `retry_wait: S`: a linear back-off, try n waits `S × n` seconds before the next.
    Backoff(f64),
}

impl RetryWait {
    /// The classic script's fixed wait between two tries, in seconds.
    pub const CLASSIC_SECS: f64 = 10.0;

    /// The wait after failed try number `attempt` (1-based), before the next one.
    pub fn after(&self, attempt: u32) -> std::time::Duration {
        let secs = match self {
            RetryWait::Classic => Self::CLASSIC_SECS,
            RetryWait::Backoff(base) => base * f64::from(attempt),
        };
        std::time::Duration::from_secs_f64(secs)
    }
}

/// Where `--config NAME` points: an existing file or folder, else `NAME` under
/// `$HOARD_CONFIG_DIR` (default `~/backup_scripts`). Returns (job folder, config file).
pub fn resolve(name: &str) -> Result<(PathBuf, PathBuf), ConfigError> {
    let direct = PathBuf::from(name);
    let candidate = if direct.exists() {
        direct
    } else if !name.contains('/') {
        config_root()?.join(name)
    } else {
        return Err(ConfigError(format!(
            "{name}: no such job folder or config file"
        )));
    };
    let candidate = std::fs::canonicalize(&candidate)
        .map_err(|e| ConfigError(format!("{}: {e}", candidate.display())))?;
    if candidate.is_dir() {
        let file = candidate.join("config.yaml");
        if !file.is_file() {
            return Err(ConfigError(format!("{}: no such file", file.display())));
        }
        Ok((candidate, file))
    } else {
        let dir = candidate
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok((dir, candidate))
    }
}

/// Where jobs live by default: `$HOARD_CONFIG_DIR`, else `~/backup_scripts`.
pub fn config_root() -> Result<PathBuf, ConfigError> {
    if let Some(d) = std::env::var_os("HOARD_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join("backup_scripts"))
        .ok_or_else(|| ConfigError("HOME is not set and HOARD_CONFIG_DIR is not given".into()))
}

/// Loads `--config NAME`. `for_init` allows a missing passphrase file (`--init` creates it);
/// `runner` checks the step options with hoard's own parser.
pub fn load(name: &str, for_init: bool, runner: &dyn StepRunner) -> Result<JobConfig, ConfigError> {
    let (dir, file) = resolve(name)?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| ConfigError(format!("{}: {e}", file.display())))?;
    parse(&text, &dir, &file, for_init, runner)
}

/// Parses a config text (`dir` is the job folder, `file` names it in errors).
pub fn parse(
    text: &str,
    dir: &Path,
    file: &Path,
    for_init: bool,
    runner: &dyn StepRunner,
) -> Result<JobConfig, ConfigError> {
    let fname = file.display().to_string();
    let raw: RawConfig = yaml_serde::from_str(text).map_err(|e| {
        let msg = e.to_string();
        match e.location() {
            Some(l) => {
                // yaml_serde appends " at line L column C"; keep our own prefix instead.
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                ConfigError(format!(
                    "{fname}: line {}, column {}: {msg}",
                    l.line(),
                    l.column()
                ))
            }
            None => ConfigError(format!("{fname}: {msg}")),
        }
    })?;
    let at = |path: &[&str]| -> String {
        match key_line(text, path) {
            Some(l) => format!("{fname}: line {l}: {}", path.join(".")),
            None => format!("{fname}: {}", path.join(".")),
        }
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    if raw.backup.is_empty() {
        return Err(ConfigError(format!(
            "{}: at least one path is needed",
            at(&["backup"])
        )));
    }
    let mut backup = Vec::new();
    for p in &raw.backup {
        backup.push(expand_env(p).map_err(|e| ConfigError(format!("{}: {e}", at(&["backup"]))))?);
    }
    let mut optional = Vec::new();
    for p in &raw.optional {
        optional
            .push(expand_env(p).map_err(|e| ConfigError(format!("{}: {e}", at(&["optional"]))))?);
    }
    let target =
        expand_env(&raw.target).map_err(|e| ConfigError(format!("{}: {e}", at(&["target"]))))?;
    if target.is_empty() {
        return Err(ConfigError(format!(
            "{}: empty repository",
            at(&["target"])
        )));
    }
    let split = |s: &Option<String>, key: &str| -> Result<Vec<String>, ConfigError> {
        match s {
            None => Ok(Vec::new()),
            Some(s) => shell_words::split(s)
                .map_err(|e| ConfigError(format!("{}: {e}", at(&["options", key])))),
        }
    };
    let create_options = split(&raw.options.backup, "backup")?;
    let cleanup_options = split(&raw.options.cleanup, "cleanup")?;
    // Validate with hoard's own parser now, not at 2 a.m.
    let mut argv = vec!["hoard".to_string(), "create".into()];
    argv.extend(create_options.iter().cloned());
    argv.extend(["/validate::x".to_string(), "/".into()]);
    runner
        .check(&argv)
        .map_err(|e| ConfigError(format!("{}: {e}", at(&["options", "backup"]))))?;
    let keep = raw.cleanup.unwrap_or_default();
    for sub in ["prune", "compact"] {
        if sub == "compact" && !raw.compact {
            continue;
        }
        let mut argv = vec!["hoard".to_string(), sub.into()];
        argv.extend(cleanup_options.iter().cloned());
        if sub == "prune" {
            argv.extend(keep.args());
        }
        argv.push("/validate".into());
        runner
            .check(&argv)
            .map_err(|e| ConfigError(format!("{}: {e}", at(&["options", "cleanup"]))))?;
    }
    if keep == Keep::default() {
        return Err(ConfigError(format!(
            "{}: at least one keep rule (daily, weekly, …) is needed",
            at(&["cleanup"])
        )));
    }
    for (k, n) in [
        ("backup", raw.tries.backup),
        ("cleanup", raw.tries.cleanup),
        ("check", raw.tries.check),
    ] {
        if n == 0 {
            return Err(ConfigError(format!(
                "{}: must be at least 1",
                at(&["tries", k])
            )));
        }
    }
    let retry_wait = match raw.retry_wait {
        None => RetryWait::Classic,
        // (an upper bound keeps the back-off representable as a Duration)
        Some(w) if w.is_finite() && (0.0..=1e9).contains(&w) => RetryWait::Backoff(w),
        Some(_) => {
            return Err(ConfigError(format!(
                "{}: must be a number of seconds >= 0",
                at(&["retry_wait"])
            )))
        }
    };
    let check = match raw.check {
        None => None,
        Some(c) => Some(CheckConfig {
            every_secs: match &c.every {
                None => 0,
                Some(e) => parse_duration(e)
                    .map_err(|m| ConfigError(format!("{}: {m}", at(&["check", "every"]))))?,
            },
            verify_data: c.verify_data,
            max_duration_secs: match &c.max_duration {
                None => 0,
                Some(RawSeconds::Number(n)) => *n,
                Some(RawSeconds::Text(t)) => parse_duration(t)
                    .map_err(|m| ConfigError(format!("{}: {m}", at(&["check", "max_duration"]))))?,
            },
            coverage_days: match c.coverage_days {
                None => crate::commands::verify_state::DEFAULT_COVERAGE_DAYS,
                Some(0) => {
                    return Err(ConfigError(format!(
                        "{}: must be at least 1",
                        at(&["check", "coverage_days"])
                    )))
                }
                Some(d) => d,
            },
        }),
    };
    if let Some(c) = &check {
        if c.max_duration_secs > 0 && !c.verify_data {
            return Err(ConfigError(format!(
                "{}: needs verify_data: true (only the data verification is done a slice at a time)",
                at(&["check", "max_duration"])
            )));
        }
    }
    if let Some(n) = &raw.archive_name {
        crate::placeholders::replace_placeholders(n)
            .map_err(|e| ConfigError(format!("{}: {e}", at(&["archive_name"]))))?;
    }
    let ping = match raw.ping {
        None => None,
        Some(p) => {
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "{}: must be an http:// or https:// URL",
                    at(&["ping", "url"])
                )));
            }
            let timeout = p.timeout.unwrap_or(10.0);
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err(ConfigError(format!(
                    "{}: must be > 0",
                    at(&["ping", "timeout"])
                )));
            }
            Some(PingConfig {
                url: p.url,
                timeout,
            })
        }
    };
    let log_file = match &raw.log_file {
        None => None,
        Some(f) => {
            let f =
                expand_env(f).map_err(|e| ConfigError(format!("{}: {e}", at(&["log_file"]))))?;
            let p = PathBuf::from(f);
            Some(if p.is_absolute() { p } else { dir.join(p) })
        }
    };
    let metrics = match &raw.metrics {
        None => None,
        Some(f) => {
            let f = expand_env(f).map_err(|e| ConfigError(format!("{}: {e}", at(&["metrics"]))))?;
            if f.is_empty() {
                return Err(ConfigError(format!(
                    "{}: empty file name",
                    at(&["metrics"])
                )));
            }
            let p = PathBuf::from(f);
            Some(if p.is_absolute() { p } else { dir.join(p) })
        }
    };
    let encryption = raw.encryption.unwrap_or_else(|| "repokey".into());
    let existing = |n: &str| Some(dir.join(n)).filter(|p| p.is_file());
    let passphrase_file = existing(PASSPHRASE_FILE);
    if passphrase_file.is_none() && encryption != "none" && !for_init {
        return Err(ConfigError(format!(
            "{fname}: passphrase file {} is missing (encryption: {encryption}); create it or run with --init",
            dir.join(PASSPHRASE_FILE).display()
        )));
    }
    let ssh_key = existing(SSH_KEY_FILE);
    if ssh_key.is_none() && needs_ssh_key(&target) {
        // The classic script stopped here; plain ssh would fail on every try instead.
        return Err(ConfigError(format!(
            "SSH key {} not available!",
            dir.join(SSH_KEY_FILE).display()
        )));
    }
    Ok(JobConfig {
        name,
        dir: dir.to_path_buf(),
        file: file.to_path_buf(),
        backup,
        optional,
        target,
        create_options,
        cleanup_options,
        keep,
        tries: raw.tries,
        retry_wait,
        check,
        compact: raw.compact,
        archive_name: raw.archive_name,
        strict_permissions: raw.strict_permissions,
        hooks: raw.hooks,
        ping,
        log_file,
        encryption,
        passphrase_file,
        key_file: existing(KEY_FILE),
        ssh_key,
        metrics,
    })
}

/// True when `target` is reached over ssh and nothing else says how: the job folder's
/// `SSHKey.pem` is then required. A `BORG_RSH` in the environment (an agent, `~/.ssh/config`)
/// is the way to run a remote job without the key file.
fn needs_ssh_key(target: &str) -> bool {
    let ssh = crate::location::Location::parse(Some(target), None)
        .is_ok_and(|l| l.proto == crate::location::Proto::Ssh);
    ssh && crate::paths::env_nonempty("BORG_RSH").is_none()
}

/// The 1-based line of a (nested) key in block-style YAML, found by indentation.
fn key_line(text: &str, path: &[&str]) -> Option<usize> {
    let mut depth = 0;
    let mut min_indent = 0usize;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if depth > 0 && indent < min_indent {
            return None;
        }
        let want = path[depth];
        if trimmed.starts_with(&format!("{want}:")) && indent >= min_indent {
            depth += 1;
            if depth == path.len() {
                return Some(i + 1);
            }
            min_indent = indent + 1;
        }
    }
    None
}

/// Expands `$VAR` and `${VAR}`; an unset variable is an error.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut name = String::new();
        if chars.peek() == Some(&'{') {
            chars.next();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                name.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
        }
        if name.is_empty() {
            out.push('$');
            continue;
        }
        match std::env::var(&name) {
            Ok(v) => out.push_str(&v),
            Err(_) => return Err(format!("environment variable {name} is not set")),
        }
    }
    Ok(out)
}

/// Parses `30m`, `12h`, `7d`, `2w` (or plain seconds) into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let units: BTreeMap<char, u64> = [
        ('s', 1),
        ('m', 60),
        ('h', 3600),
        ('d', 86400),
        ('w', 604800),
    ]
    .into_iter()
    .collect();
    let (num, mult) = match t.chars().last() {
        Some(c) if units.contains_key(&c) => (&t[..t.len() - 1], units[&c]),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("invalid duration {text:?} (use e.g. 12h, 7d, 2w)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runner that accepts every command line (these tests are about the YAML).
    struct AcceptAll;

    impl StepRunner for AcceptAll {
        fn check(&self, _argv: &[String]) -> Result<(), String> {
            Ok(())
        }
        fn run(
            &self,
            _argv: &[String],
            _env: &crate::automation::step::StepEnv,
        ) -> crate::automation::step::Outcome {
            crate::automation::step::Outcome::default()
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(7 * 86400));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn retry_wait_defaults_to_the_classic_ten_seconds() {
        let dir = Path::new("/nonexistent-job");
        let base =
            "backup: [/tmp]\ntarget: /nonexistent/repo\ncleanup: {daily: 7}\nencryption: none\n";
        let c = parse(base, dir, &dir.join("config.yaml"), false, &AcceptAll).unwrap();
        assert_eq!(c.retry_wait, RetryWait::Classic);
        for attempt in 1..=3 {
            assert_eq!(
                c.retry_wait.after(attempt),
                std::time::Duration::from_secs(10)
            );
        }
        let text = format!("{base}retry_wait: 30\n");
        let c = parse(&text, dir, &dir.join("config.yaml"), false, &AcceptAll).unwrap();
        assert_eq!(c.retry_wait, RetryWait::Backoff(30.0));
        assert_eq!(c.retry_wait.after(1), std::time::Duration::from_secs(30));
        assert_eq!(c.retry_wait.after(3), std::time::Duration::from_secs(90));
        let text = format!("{base}retry_wait: -1\n");
        let e = parse(&text, dir, &dir.join("config.yaml"), false, &AcceptAll).unwrap_err();
        assert!(e.0.contains("line 5: retry_wait: must be a number"), "{e}");
    }

    #[test]
    fn check_max_duration_takes_seconds_or_durations_and_needs_verify_data() {
        let dir = Path::new("/nonexistent-job");
        let base =
            "backup: [/tmp]\ntarget: /nonexistent/repo\ncleanup: {daily: 7}\nencryption: none\n";
        let parse_check = |check: &str| {
            let text = format!("{base}check:\n{check}");
            parse(&text, dir, &dir.join("config.yaml"), false, &AcceptAll)
        };
        let c = parse_check("  verify_data: true\n  max_duration: 3600\n").unwrap();
        let check = c.check.unwrap();
        assert_eq!((check.max_duration_secs, check.coverage_days), (3600, 7));
        let c =
            parse_check("  verify_data: true\n  max_duration: 2h\n  coverage_days: 14\n").unwrap();
        let check = c.check.unwrap();
        assert_eq!((check.max_duration_secs, check.coverage_days), (7200, 14));
        assert_eq!(
            parse_check("  verify_data: true\n")
                .unwrap()
                .check
                .unwrap()
                .max_duration_secs,
            0
        );
        let e = parse_check("  max_duration: 3600\n").unwrap_err();
        assert!(
            e.0.contains("check.max_duration: needs verify_data: true"),
            "{e}"
        );
        let e = parse_check("  verify_data: true\n  max_duration: soon\n").unwrap_err();
        assert!(e.0.contains("invalid duration"), "{e}");
        let e = parse_check("  verify_data: true\n  coverage_days: 0\n").unwrap_err();
        assert!(e.0.contains("coverage_days: must be at least 1"), "{e}");
    }

    #[test]
    fn keep_13weekly_and_3monthly_become_prune_options() {
        let k: Keep = yaml_serde::from_str("daily: 7\n13weekly: 4\n3monthly: 2\n").unwrap();
        assert_eq!(
            k.args(),
            ["--keep-daily=7", "--keep-13weekly=4", "--keep-3monthly=2"]
        );
        let k: Keep = yaml_serde::from_str("keep_13weekly: 1\nkeep_3monthly: 3\n").unwrap();
        assert_eq!(k.args(), ["--keep-13weekly=1", "--keep-3monthly=3"]);
    }

    #[test]
    fn key_lines() {
        let t = "backup:\n  - a\noptions:\n  cleanup: x\n  backup: y\n";
        assert_eq!(key_line(t, &["options", "backup"]), Some(5));
        assert_eq!(key_line(t, &["backup"]), Some(1));
    }
}
