//! Running a job: environment from the job folder, job lock, hooks, pings, and the steps
//! create → prune → compact → check, each retried with a back-off and run through the
//! [`StepRunner`] the CLI passes in (hoard's own dispatcher, in-process; no secrets in any
//! argument vector or log line). The job's environment is a [`StepEnv`] handed to each step
//! and child process; this process's environment is never changed.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;

use super::config::{self, JobConfig, KEY_FILE, PASSPHRASE_FILE};
use super::ping;
use super::status::{self as job_status, JobId, RunFacts, StepFacts};
use super::step::{apply_env, Outcome, StepEnv, StepRunner};

/// Exit status of a job or step: 0 success, 1 warning, 2 failure.
pub type Status = i32;

/// The last line on success (mail filters match on it).
pub const SUCCESS_LINE: &str = "Jobs successful finished.";
/// The last line on failure.
pub const FAILURE_LINE: &str = "At least one job failed.";

/// `hoard run` switches.
#[derive(Debug, Clone, Default)]
pub struct RunFlags {
    /// `--shell`: start `$SHELL` with the job environment instead of running.
    pub shell: bool,
    /// `--nocreate`: skip create.
    pub nocreate: bool,
    /// `--nocleanup`: skip prune and compact.
    pub nocleanup: bool,
    /// `--dry-run`: create and prune with `--dry-run`; no compact, check, hooks or pings.
    pub dry_run: bool,
    /// `--init`: create the repository, passphrase file and key export when missing.
    pub init: bool,
    /// `--json`: a JSON summary on stdout.
    pub json: bool,
    /// `--progress`: passed to create.
    pub progress: bool,
    /// `--metrics-file`: the Prometheus file to write (instead of the job's `metrics:`).
    pub metrics_file: Option<std::path::PathBuf>,
}

/// Timestamped job log: stderr and optionally a file; `started` is the run's start (for the
/// status file).
struct JobLog {
    file: Option<File>,
    started: chrono::DateTime<chrono::Utc>,
}

impl JobLog {
    fn line(&mut self, level: &str, msg: &str) {
        let ts = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
        let text = format!("{ts} {level} {msg}\n");
        let _ = std::io::stderr().write_all(text.as_bytes());
        if let Some(f) = &mut self.file {
            let _ = f.write_all(text.as_bytes());
        }
    }
    fn info(&mut self, msg: &str) {
        self.line("INFO", msg);
    }
    fn warn(&mut self, msg: &str) {
        self.line("WARNING", msg);
    }
    fn error(&mut self, msg: &str) {
        self.line("ERROR", msg);
    }
}

/// One step's outcome for the summary.
struct StepResult {
    name: &'static str,
    status: Status,
    attempts: u32,
    message: Option<String>,
}

/// Runs `hoard run --config NAME` with `runner` for the steps and returns the exit status.
pub fn run(config_name: &str, flags: &RunFlags, runner: &dyn StepRunner) -> Status {
    let cfg = match config::load(config_name, flags.init, runner) {
        Ok(c) => c,
        Err(e) => {
            let mut log = JobLog {
                file: None,
                started: chrono::Utc::now(),
            };
            log.error(&e.0);
            if !flags.dry_run && !flags.shell {
                record_unloadable(config_name, flags, &mut log, &e.0);
            }
            log.line("ERROR", FAILURE_LINE);
            return 2;
        }
    };
    let file = cfg.log_file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(p)
            .ok()
    });
    let mut log = JobLog {
        file: None,
        started: chrono::Utc::now(),
    };
    if let (Some(p), None) = (&cfg.log_file, &file) {
        log.warn(&format!("cannot open log file {}", p.display()));
    }
    // With a log file, everything written to stderr (our lines, the steps' own messages,
    // hook output) goes to both; without a tee, only our lines reach the file.
    let tee = match file {
        Some(f) if !flags.shell => match StderrTee::start(f.try_clone().ok()) {
            Some(t) => Some(t),
            None => {
                log.file = Some(f);
                None
            }
        },
        _ => None,
    };
    let status = run_loaded(&cfg, flags, runner, &mut log);
    if !flags.shell {
        if status >= 2 {
            log.error(FAILURE_LINE);
        } else {
            log.info(SUCCESS_LINE);
        }
    }
    if let Some(t) = tee {
        t.stop();
    }
    status
}

/// Copies everything written to fd 2 (by this process and its children) to the real stderr
/// and a log file, through a pipe and a thread.
struct StderrTee {
    saved: libc::c_int,
    thread: std::thread::JoinHandle<()>,
}

impl StderrTee {
    fn start(file: Option<File>) -> Option<StderrTee> {
        use std::io::Read;
        use std::os::unix::io::FromRawFd;
        let mut file = file?;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: plain fd syscalls on descriptors this function owns.
        unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return None;
            }
            let saved = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
            let out_fd = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
            if saved < 0 || out_fd < 0 || libc::dup2(fds[1], 2) < 0 {
                libc::close(fds[0]);
                libc::close(fds[1]);
                return None;
            }
            libc::close(fds[1]);
            let mut read = File::from_raw_fd(fds[0]);
            let mut out = File::from_raw_fd(out_fd);
            let thread = std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match read.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let _ = out.write_all(&buf[..n]);
                            let _ = file.write_all(&buf[..n]);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            });
            Some(StderrTee { saved, thread })
        }
    }

    fn stop(self) {
        let _ = std::io::stderr().flush();
        // SAFETY: restores fd 2 from our saved copy; the pipe's write end closes with it.
        unsafe {
            libc::dup2(self.saved, 2);
            libc::close(self.saved);
        }
        // A background child of a hook may still hold the pipe; don't wait for it forever.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !self.thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.thread.is_finished() {
            let _ = self.thread.join();
        }
    }
}

fn run_loaded(
    cfg: &JobConfig,
    flags: &RunFlags,
    runner: &dyn StepRunner,
    log: &mut JobLog,
) -> Status {
    // The job lock: two runs of the same job never overlap.
    let lock_path = cfg.dir.join(".hoard-job.lock");
    let lock = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
    {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("cannot open job lock {}: {e}", lock_path.display());
            return refused(cfg, flags, log, &msg);
        }
    };
    // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        // Not recorded: the running job owns the status files, and it records its own run.
        log.error(&format!(
            "job {} is already running (lock {})",
            cfg.name,
            lock_path.display()
        ));
        return 2;
    }
    let mut worst: Status = 0;
    if flags.init {
        if let Err(m) = init_files(cfg, log) {
            return refused(cfg, flags, log, &m);
        }
    }
    // Files may have been created by --init: re-read what is present.
    let passphrase_file = Some(cfg.dir.join(PASSPHRASE_FILE)).filter(|p| p.is_file());
    let key_file = Some(cfg.dir.join(KEY_FILE)).filter(|p| p.is_file());
    for p in [&passphrase_file, &key_file, &cfg.ssh_key]
        .into_iter()
        .flatten()
    {
        if let Ok(m) = std::fs::metadata(p) {
            if m.permissions().mode() & 0o077 != 0 {
                let msg = format!(
                    "{} is group/world accessible (mode {:o}); chmod 600 it",
                    p.display(),
                    m.permissions().mode() & 0o777
                );
                if cfg.strict_permissions {
                    let msg = format!("{msg} (strict_permissions: refusing to run)");
                    return refused(cfg, flags, log, &msg);
                }
                log.warn(&msg);
                worst = worst.max(1);
            }
        }
    }
    let env = job_env(cfg, passphrase_file.as_deref(), key_file.as_deref());
    let watch = Arc::new(Mutex::new(Watch::default()));
    let steps_run = Steps {
        cfg,
        runner,
        env: &env,
        watch: &watch,
    };
    if flags.shell {
        return shell(&env, log);
    }
    // A signal that ends the process before the job winds down by itself (during a hook,
    // or a step that does not poll) still leaves the run's record.
    let _on_signal = (!flags.dry_run).then(|| {
        let watch = Arc::clone(&watch);
        let cfg = cfg.clone();
        let metrics = flags.metrics_file.clone();
        let started = log.started;
        crate::platform::signals::on_emergency_exit(move || {
            record_signalled(&watch, &cfg, metrics.as_deref(), started)
        })
    });
    log.info(&format!(
        "Starting job {} ({})",
        cfg.name,
        cfg.file.display()
    ));
    let pings = !flags.dry_run;
    if pings {
        send_ping(cfg, "/start", log);
    }
    if flags.init {
        let s = init_repo(&steps_run, log);
        if s == 2 {
            return finish(&steps_run, flags, log, 2, Vec::new(), None, pings);
        }
    }
    let mut names = ArchiveNames::new(cfg.archive_name.clone());
    let mut archive = match names.fresh() {
        Ok(a) => a,
        Err(m) => {
            log.error(&m);
            return finish(&steps_run, flags, log, 2, Vec::new(), None, pings);
        }
    };
    watch_lock(&watch).archive = Some(archive.clone());
    let mut steps = Vec::new();
    if !flags.dry_run {
        if let Err(m) = run_hooks(
            &steps_run,
            "before",
            &cfg.hooks.before,
            "running",
            None,
            &archive,
            log,
        ) {
            log.error(&m);
            return finish(&steps_run, flags, log, 2, steps, Some(&archive), pings);
        }
    }
    if !flags.nocreate {
        // Checked after the `before` hooks (they may mount or snapshot a source). A missing
        // path refuses the whole job, as the classic script did: an archive of "the rest"
        // would look like a good backup while silently lacking data.
        let mut paths = Vec::new();
        let mut missing = 0;
        for p in cfg.backup.iter().chain(cfg.optional.iter()) {
            let optional = cfg.optional.contains(p);
            if Path::new(p).symlink_metadata().is_ok() {
                paths.push(p.clone());
            } else if optional {
                log.info(&format!("optional backup path {p} is missing; skipped"));
            } else {
                log.error(&format!("backup path {p} does not exist"));
                missing += 1;
            }
        }
        if missing > 0 {
            log.error(MISSING_PATH_LINE);
            return finish(&steps_run, flags, log, 2, steps, Some(&archive), pings);
        }
        if paths.is_empty() {
            log.error("nothing to back up");
            return finish(&steps_run, flags, log, 2, steps, Some(&archive), pings);
        }
        let r = create_step(&steps_run, flags, &paths, &mut names, log);
        archive = names.current().to_string();
        watch_lock(&watch).archive = Some(archive.clone());
        steps.push(r);
    }
    if !flags.nocleanup {
        let mut argv = vec!["hoard".to_string(), "prune".into()];
        argv.extend(cfg.cleanup_options.iter().cloned());
        argv.extend(cfg.keep.args());
        // The classic script's log: every kept/pruned archive, and the statistics.
        argv.push("--list".into());
        if flags.dry_run {
            argv.push("--dry-run".into());
        } else if !cfg.cleanup_options.iter().any(|o| o == "--quick-stats") {
            // (borg 1.4's prune refuses --stats together with --quick-stats)
            argv.push("--stats".into());
        }
        argv.push(cfg.target.clone());
        steps.push(step(&steps_run, "prune", argv, cfg.tries.cleanup, log));
        if cfg.compact && !flags.dry_run {
            let mut argv = vec!["hoard".to_string(), "compact".into()];
            argv.extend(cfg.cleanup_options.iter().cloned());
            argv.push(cfg.target.clone());
            steps.push(step(&steps_run, "compact", argv, cfg.tries.cleanup, log));
        }
    }
    if let Some(c) = &cfg.check {
        if !flags.dry_run {
            let state = cfg.dir.join(".hoard-state.json");
            let last = std::fs::read_to_string(&state)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["last_check"].as_i64())
                .unwrap_or(0);
            let now = chrono::Utc::now().timestamp();
            if now - last >= c.every_secs as i64 {
                let mut argv = vec!["hoard".to_string(), "check".into()];
                if c.verify_data {
                    argv.push("--verify-data".into());
                    if c.max_duration_secs > 0 {
                        // a slice of the data per run, the least recently verified first
                        argv.push("--max-duration".into());
                        argv.push(c.max_duration_secs.to_string());
                    }
                    argv.push("--coverage-days".into());
                    argv.push(c.coverage_days.to_string());
                }
                argv.push(cfg.target.clone());
                let r = step(&steps_run, "check", argv, cfg.tries.check, log);
                if r.status == 0 {
                    let _ = std::fs::write(&state, json!({ "last_check": now }).to_string());
                }
                steps.push(r);
            } else {
                log.info(&format!(
                    "check: not due (last {}s ago, every {}s)",
                    now - last,
                    c.every_secs
                ));
            }
        }
    }
    for s in &steps {
        worst = worst.max(s.status);
    }
    finish(&steps_run, flags, log, worst, steps, Some(&archive), pings)
}

/// What every step and hook of one run needs: the job, the runner, the job environment and
/// the run so far (for a record made at a signal).
struct Steps<'a> {
    cfg: &'a JobConfig,
    runner: &'a dyn StepRunner,
    env: &'a StepEnv,
    watch: &'a Arc<Mutex<Watch>>,
}

/// The run so far, shared with the cleanup the signal watcher runs before it ends the
/// process: whichever of the two records the run first, the other leaves it.
#[derive(Debug, Default)]
struct Watch {
    /// The run was recorded.
    recorded: bool,
    /// The steps that ended.
    steps: Vec<StepFacts>,
    /// The step in progress and its attempt.
    current: Option<(&'static str, u32)>,
    /// The archive name in use.
    archive: Option<String>,
}

/// Locks the run's [`Watch`] (a poisoned lock still holds the facts).
fn watch_lock(w: &Mutex<Watch>) -> MutexGuard<'_, Watch> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl Steps<'_> {
    /// Notes the step in progress (`None` when it ended with `done`).
    fn note(&self, current: Option<(&'static str, u32)>, done: Option<&StepResult>) {
        let mut w = watch_lock(self.watch);
        w.current = current;
        if let Some(r) = done {
            w.steps.push(step_facts(r));
        }
    }
}

/// The status file's facts of one step.
fn step_facts(s: &StepResult) -> StepFacts {
    StepFacts {
        name: s.name.into(),
        result: job_status::result_word(s.status).into(),
        exit_code: s.status,
        tries: s.attempts,
    }
}

/// The emergency record of a run ended by a signal (called by the signal watcher before the
/// process exits): the steps so far, the one in progress failed with the signal's exit code.
fn record_signalled(
    watch: &Mutex<Watch>,
    cfg: &JobConfig,
    metrics: Option<&Path>,
    started: chrono::DateTime<chrono::Utc>,
) {
    let Some(stop) = crate::platform::signals::stop() else {
        return;
    };
    // The main thread may be recording the run itself right now: wait for it a little.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut w = loop {
        match watch.try_lock() {
            Ok(g) => break g,
            Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                if std::time::Instant::now() >= deadline {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    if w.recorded {
        return;
    }
    w.recorded = true;
    let code = stop.exit_code();
    let mut steps = w.steps.clone();
    let reason = match w.current {
        Some((name, attempt)) => {
            steps.push(StepFacts {
                name: name.into(),
                result: job_status::result_word(code).into(),
                exit_code: code,
                tries: attempt,
            });
            format!("{} (during {name})", stop.message())
        }
        None => stop.message().to_string(),
    };
    let facts = RunFacts {
        started,
        ended: chrono::Utc::now(),
        exit_code: code,
        steps,
        archive: w.archive.clone(),
        reason: Some(reason),
    };
    let mut log = JobLog {
        file: None,
        started,
    };
    let (st, problems) = super::record::record_refused(job_id(cfg, metrics), facts);
    for p in problems {
        log.warn(&p);
    }
    log.info(&job_status::summary_line(&st));
    log.error(FAILURE_LINE);
}

/// The job as the status files name it; `metrics` (`--metrics-file`) before the job's own.
fn job_id<'a>(cfg: &'a JobConfig, metrics: Option<&'a Path>) -> JobId<'a> {
    JobId {
        name: &cfg.name,
        dir: &cfg.dir,
        repository: &cfg.target,
        metrics: metrics.or(cfg.metrics.as_deref()),
    }
}

/// A run refused before its steps (lock, secrets, `--init` files): the error line, and the
/// failed run in the status file, history and metrics so that a monitor sees it. Returns 2.
fn refused(cfg: &JobConfig, flags: &RunFlags, log: &mut JobLog, reason: &str) -> Status {
    log.error(reason);
    if !flags.dry_run && !flags.shell {
        record_refusal(job_id(cfg, flags.metrics_file.as_deref()), log, reason);
    }
    2
}

/// Records a refused run (exit code 2, no steps) with its reason and logs the summary line.
fn record_refusal(job: JobId<'_>, log: &mut JobLog, reason: &str) {
    let facts = RunFacts {
        started: log.started,
        ended: chrono::Utc::now(),
        exit_code: 2,
        steps: Vec::new(),
        archive: None,
        reason: Some(reason.to_string()),
    };
    let (st, problems) = super::record::record_refused(job, facts);
    for p in problems {
        log.warn(&p);
    }
    log.info(&job_status::summary_line(&st));
}

/// A config that does not load: the failed run is recorded in the job folder when that is
/// known and safe — `NAME` resolves to a folder's `config.yaml` (the layout `hoard status`
/// lists), the folder belongs to this user, and no run of the job holds its lock. Only
/// `--metrics-file` is written (the config's `metrics:` is not known).
fn record_unloadable(config_name: &str, flags: &RunFlags, log: &mut JobLog, reason: &str) {
    use std::os::unix::fs::MetadataExt;
    let Ok((dir, file)) = config::resolve(config_name) else {
        return;
    };
    if file.file_name() != Some(std::ffi::OsStr::new("config.yaml")) || file.parent() != Some(&*dir)
    {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() && m.uid() == me => {}
        _ => return,
    }
    let Ok(lock) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join(".hoard-job.lock"))
    else {
        return;
    };
    // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return;
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    let job = JobId {
        name: &name,
        dir: &dir,
        repository: "",
        metrics: flags.metrics_file.as_deref(),
    };
    record_refusal(job, log, reason);
}

impl Steps<'_> {
    /// Runs one hoard command line in the job environment.
    fn run(&self, argv: &[String]) -> Outcome {
        self.runner.run(argv, self.env)
    }
}

fn finish(
    steps_run: &Steps<'_>,
    flags: &RunFlags,
    log: &mut JobLog,
    mut status: Status,
    steps: Vec<StepResult>,
    archive: Option<&str>,
    pings: bool,
) -> Status {
    let cfg = steps_run.cfg;
    let word = |s: Status| match s {
        0 => "success",
        1 => "warning",
        _ => "failure",
    };
    // A run ended by SIGTERM, SIGHUP or a second SIGINT ends with its exit code (128 + N),
    // as the process does.
    let stop = crate::platform::signals::stop();
    if let Some(stop) = stop {
        status = stop.exit_code();
    }
    if !flags.dry_run {
        let st = word(status);
        if let Err(m) = run_hooks(
            steps_run,
            "after",
            &cfg.hooks.after,
            st,
            Some(status),
            archive.unwrap_or(""),
            log,
        ) {
            log.error(&m);
            status = 2;
        }
        if status >= 2 {
            if let Err(m) = run_hooks(
                steps_run,
                "on_error",
                &cfg.hooks.on_error,
                "failure",
                Some(2),
                archive.unwrap_or(""),
                log,
            ) {
                log.error(&m);
            }
        }
    }
    if pings {
        send_ping(cfg, if status >= 2 { "/fail" } else { "" }, log);
    }
    if !flags.dry_run {
        // Held while recording: a signal's emergency record waits for this one.
        let mut w = watch_lock(steps_run.watch);
        if !w.recorded {
            w.recorded = true;
            let reason = stop.map(|s| s.message().to_string());
            record_run(
                cfg,
                steps_run.env,
                flags,
                log,
                status,
                &steps,
                archive,
                reason,
            );
        }
    }
    if flags.json {
        let v = json!({
            "job": cfg.name,
            "config": cfg.file.to_string_lossy(),
            "repository": cfg.target,
            "archive": archive,
            "status": word(status),
            "exit_code": status,
            "steps": steps.iter().map(|s| json!({
                "name": s.name,
                "status": word(s.status),
                "exit_code": s.status,
                "attempts": s.attempts,
                "message": s.message,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    status
}

/// Writes the status file, history and metrics of a finished run, and logs its summary line.
#[allow(clippy::too_many_arguments)]
fn record_run(
    cfg: &JobConfig,
    env: &StepEnv,
    flags: &RunFlags,
    log: &mut JobLog,
    status: Status,
    steps: &[StepResult],
    archive: Option<&str>,
    reason: Option<String>,
) {
    let facts = RunFacts {
        started: log.started,
        ended: chrono::Utc::now(),
        exit_code: status,
        steps: steps.iter().map(step_facts).collect(),
        archive: archive.filter(|a| !a.is_empty()).map(str::to_string),
        reason,
    };
    let (st, problems) = super::record::record(cfg, env, facts, flags.metrics_file.as_deref());
    for p in problems {
        log.warn(&p);
    }
    log.info(&super::status::summary_line(&st));
}

/// Runs one step (the same arguments each try) up to `tries` times with the job's wait.
fn step(
    steps_run: &Steps<'_>,
    name: &'static str,
    argv: Vec<String>,
    tries: u32,
    log: &mut JobLog,
) -> StepResult {
    retrying(steps_run, name, tries, log, |_, _| Ok(argv.clone()))
}

/// `create` with the job's paths into a fresh archive name. A name that already exists (two
/// runs in the same instant, or a pattern without a time in it) is retried at once with a
/// fresh name instead of failing the job.
fn create_step(
    steps_run: &Steps<'_>,
    flags: &RunFlags,
    paths: &[String],
    names: &mut ArchiveNames,
    log: &mut JobLog,
) -> StepResult {
    let cfg = steps_run.cfg;
    retrying(
        steps_run,
        "create",
        cfg.tries.backup,
        log,
        |collided, log| {
            if collided {
                let old = names.current().to_string();
                let new = names.fresh()?;
                log.info(&format!(
                    "create: archive {old} already exists; using {new}"
                ));
            }
            let mut argv = vec!["hoard".to_string(), "create".into()];
            argv.extend(cfg.create_options.iter().cloned());
            if flags.progress {
                argv.push("--progress".into());
            }
            if flags.dry_run {
                argv.push("--dry-run".into());
            } else {
                // The classic script's log: the archive's statistics after each backup; the same
                // figures as values for the status file.
                argv.push("--stats".into());
                super::status::forget_create_stats(&cfg.dir);
                argv.push(format!(
                    "{}={}",
                    super::status::CREATE_STATS_OPTION,
                    cfg.dir.join(super::status::CREATE_STATS_FILE).display()
                ));
            }
            argv.push(format!(
                "{}::{}",
                cfg.target,
                escape_placeholders(names.current())
            ));
            argv.extend(paths.iter().cloned());
            Ok(argv)
        },
    )
}

/// Runs a step up to `tries` times. `argv` builds each try's arguments; its first argument
/// says whether the previous try failed because the archive name already exists (it must
/// then pick a fresh name). Such a try is retried at once; other failures wait
/// [`JobConfig::retry_wait`] (10 s, or `retry_wait × n` when configured); a signal ends
/// the wait and the step.
fn retrying(
    steps_run: &Steps<'_>,
    name: &'static str,
    tries: u32,
    log: &mut JobLog,
    argv: impl FnMut(bool, &mut JobLog) -> Result<Vec<String>, String>,
) -> StepResult {
    let r = tries_of(steps_run, name, tries, log, argv);
    steps_run.note(None, Some(&r));
    r
}

/// The tries of [`retrying`].
fn tries_of(
    steps_run: &Steps<'_>,
    name: &'static str,
    tries: u32,
    log: &mut JobLog,
    mut argv: impl FnMut(bool, &mut JobLog) -> Result<Vec<String>, String>,
) -> StepResult {
    let mut last_msg = None;
    let mut collided = false;
    if interrupted() {
        log.error(&format!("{name}: not started, the job was interrupted"));
        return StepResult {
            name,
            status: 2,
            attempts: 0,
            message: Some("interrupted".into()),
        };
    }
    for attempt in 1..=tries {
        let args = match argv(collided, log) {
            Ok(a) => a,
            Err(m) => {
                log.error(&format!("{name}: {m}"));
                return StepResult {
                    name,
                    status: 2,
                    attempts: attempt - 1,
                    message: Some(m),
                };
            }
        };
        log.info(&format!("{name}: attempt {attempt}/{tries}"));
        steps_run.note(Some((name, attempt)), None);
        let out = steps_run.run(&args);
        steps_run.note(None, None);
        if out.code < 2 {
            if out.code == 1 {
                log.warn(&format!(
                    "{name}: finished with warnings (attempt {attempt}/{tries})"
                ));
            } else {
                log.info(&format!("{name}: finished (attempt {attempt}/{tries})"));
            }
            return StepResult {
                name,
                status: out.code,
                attempts: attempt,
                message: out.message,
            };
        }
        log.error(&format!(
            "{name}: attempt {attempt}/{tries} failed (rc {}): {}",
            out.code,
            out.message.as_deref().unwrap_or("")
        ));
        // Ctrl-C, SIGTERM or SIGHUP: the user wants the job to end, not to be tried again.
        if out.code >= 128 || interrupted() {
            log.error(&format!("{name}: interrupted, not retried"));
            return StepResult {
                name,
                status: out.code,
                attempts: attempt,
                message: out.message,
            };
        }
        collided = out.msgid.as_deref() == Some(ARCHIVE_EXISTS_MSGID);
        last_msg = out.message;
        if attempt < tries {
            if collided {
                log.info(&format!("{name}: retrying now with a fresh archive name"));
            } else {
                let wait = steps_run.cfg.retry_wait.after(attempt);
                log.info(&format!("{name}: retrying in {}s", wait.as_secs_f64()));
                if !pause(wait, interrupted) {
                    log.error(&format!("{name}: interrupted, not retried"));
                    return StepResult {
                        name,
                        status: 2,
                        attempts: attempt,
                        message: last_msg,
                    };
                }
            }
        }
    }
    log.error(&format!("{name}: failed after {tries} attempts"));
    StepResult {
        name,
        status: 2,
        attempts: tries,
        message: last_msg,
    }
}

/// Waits `wait`, in short slices so that `stop` (a signal) ends it early; false when stopped.
fn pause(wait: Duration, stop: impl Fn() -> bool) -> bool {
    let end = std::time::Instant::now() + wait;
    loop {
        if stop() {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// True once Ctrl-C, SIGTERM or SIGHUP reached this process: the job stops, it is not retried.
fn interrupted() -> bool {
    crate::platform::signals::stop().is_some() || crate::platform::signals::checkpoint_requested()
}

/// borg's msgid for "Archive … already exists" (`Archive.AlreadyExists`).
const ARCHIVE_EXISTS_MSGID: &str = "Archive.AlreadyExists";

/// The job log's line when a backup path is missing.
pub const MISSING_PATH_LINE: &str =
    "refusing to start: a backup path is missing (list paths that may be absent under `optional:`)";

/// The archive names of one run: the configured pattern (borg placeholders), or by default
/// the Unix time with microseconds (`1765068111.123456`, like the classic script's
/// fractional seconds), expanded afresh for each name. A name already used in this run is
/// never offered again: a repeat gets a `.N` suffix.
struct ArchiveNames {
    pattern: Option<String>,
    used: Vec<String>,
}

impl ArchiveNames {
    fn new(pattern: Option<String>) -> ArchiveNames {
        ArchiveNames {
            pattern,
            used: Vec::new(),
        }
    }

    /// The name in use (the last one [`Self::fresh`] gave).
    fn current(&self) -> &str {
        self.used.last().map_or("", String::as_str)
    }

    /// A new name, different from every name given before.
    fn fresh(&mut self) -> Result<String, String> {
        let base = match &self.pattern {
            None => default_archive_name(chrono::Utc::now()),
            Some(p) => crate::placeholders::validate_archive_name(p)
                .map_err(|e| format!("archive_name: {e}"))?,
        };
        let mut name = base.clone();
        let mut n = 1;
        while self.used.contains(&name) {
            name = format!("{base}.{n}");
            n += 1;
        }
        self.used.push(name.clone());
        Ok(name)
    }
}

/// The default archive name: Unix seconds and microseconds (`1765068111.123456`).
fn default_archive_name(now: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}.{:06}", now.timestamp(), now.timestamp_subsec_micros())
}

/// Doubles `{` and `}` so an already expanded name passes placeholder expansion unchanged.
fn escape_placeholders(name: &str) -> String {
    name.replace('{', "{{").replace('}', "}}")
}

/// The job environment: the repository, the paths, the passphrase command, the key file
/// and the ssh command, for the steps, the hooks and `--shell`. `BORG_PASSPHRASE` and
/// `BORG_PASSPHRASE_FD` are removed when the job has a passphrase file, so it is the one used.
fn job_env(cfg: &JobConfig, pass: Option<&Path>, key: Option<&Path>) -> StepEnv {
    let mut env = StepEnv::process()
        .with("BORG_REPO", Some(cfg.target.clone()))
        .with("THIS_TARGET", Some(cfg.target.clone()))
        .with("BACKUP_THIS", Some(cfg.backup.join(" ")));
    if let Some(p) = pass {
        // borg reads passcommand output with trailing newlines stripped, inner ones kept.
        let cmd = format!("cat {}", shell_words::quote(&p.to_string_lossy()));
        env = env.with("BORG_PASSCOMMAND", Some(cmd));
    }
    if let Some(k) = key {
        env = env.with("BORG_KEY_FILE", Some(k.to_string_lossy().into_owned()));
    }
    if let Some(s) = &cfg.ssh_key {
        let rsh = format!("ssh -i {}", shell_words::quote(&s.to_string_lossy()));
        env = env.with("BORG_RSH", Some(rsh));
    }
    if pass.is_some() {
        env = env
            .with("BORG_PASSPHRASE", None)
            .with("BORG_PASSPHRASE_FD", None);
    }
    env
}

fn shell(env: &StepEnv, log: &mut JobLog) -> Status {
    let sh = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let names: Vec<&str> = env
        .overrides()
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    log.info(&format!(
        "Starting {sh} with the job environment: {}",
        names.join(", ")
    ));
    let mut cmd = std::process::Command::new(&sh);
    apply_env(&mut cmd, env);
    match cmd.status() {
        Ok(s) => s.code().map_or(2, |c| c.min(2)),
        Err(e) => {
            log.error(&format!("{sh}: {e}"));
            2
        }
    }
}

fn run_hooks(
    steps_run: &Steps<'_>,
    kind: &str,
    cmds: &[String],
    status: &str,
    code: Option<Status>,
    archive: &str,
    log: &mut JobLog,
) -> Result<(), String> {
    let cfg = steps_run.cfg;
    for c in cmds {
        log.info(&format!("{kind} hook: {c}"));
        let mut cmd = std::process::Command::new("/bin/sh");
        apply_env(&mut cmd, steps_run.env);
        cmd.arg("-c")
            .arg(c)
            .current_dir(&cfg.dir)
            .env("HOARD_JOB", &cfg.name)
            .env("HOARD_JOB_DIR", &cfg.dir)
            .env("HOARD_HOOK", kind)
            .env("HOARD_STATUS", status)
            .env(
                "HOARD_EXIT_CODE",
                code.map(|c| c.to_string()).unwrap_or_default(),
            )
            .env("HOARD_ARCHIVE", archive)
            .env("HOARD_TARGET", &cfg.target);
        match cmd.status() {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("{kind} hook failed ({s}): {c}")),
            Err(e) => return Err(format!("{kind} hook could not start: {e}")),
        }
    }
    Ok(())
}

fn send_ping(cfg: &JobConfig, suffix: &str, log: &mut JobLog) {
    let Some(p) = &cfg.ping else { return };
    let url = format!("{}{suffix}", p.url.trim_end_matches('/'));
    match ping::get(&url, p.timeout) {
        Ok(s) => log.info(&format!("ping {url}: {s}")),
        Err(e) => log.warn(&format!("ping {url} failed: {e}")),
    }
}

/// `--init`: the passphrase file (random, mode 600) when absent.
fn init_files(cfg: &JobConfig, log: &mut JobLog) -> Result<(), String> {
    let pass = cfg.dir.join(PASSPHRASE_FILE);
    if cfg.encryption != "none" && !pass.exists() {
        use base64::Engine;
        use rand::RngCore;
        let mut bytes = vec![0u8; 3072];
        rand::thread_rng().fill_bytes(&mut bytes);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        // Like `openssl rand -base64 3072`: 64-character lines.
        let mut text = String::new();
        for chunk in b64.as_bytes().chunks(64) {
            text.push_str(&String::from_utf8_lossy(chunk));
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&pass)
            .map_err(|e| format!("{}: {e}", pass.display()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("{}: {e}", pass.display()))?;
        log.info(&format!("Generated passphrase file {}", pass.display()));
    }
    Ok(())
}

/// `--init`: creates the repository if missing and exports the key to `BORGKey.bak`.
fn init_repo(steps_run: &Steps<'_>, log: &mut JobLog) -> Status {
    let cfg = steps_run.cfg;
    let local_exists = Path::new(&cfg.target).join("config").is_file();
    if !local_exists {
        log.info(&format!("init: creating repository {}", cfg.target));
        let argv: Vec<String> = ["hoard", "init", "-e", &cfg.encryption, &cfg.target]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = steps_run.run(&argv);
        match (out.code, out.message) {
            (c, _) if c < 2 => {}
            (_, Some(m)) if m.contains("already exists") => {
                log.info("init: repository exists");
            }
            (c, m) => {
                log.error(&format!("init failed (rc {c}): {}", m.unwrap_or_default()));
                return 2;
            }
        }
    } else {
        log.info("init: repository exists");
    }
    let key = cfg.dir.join(KEY_FILE);
    if cfg.encryption != "none" && !key.exists() {
        let argv: Vec<String> = vec![
            "hoard".into(),
            "key".into(),
            "export".into(),
            cfg.target.clone(),
            key.to_string_lossy().into_owned(),
        ];
        let out = steps_run.run(&argv);
        if out.code >= 2 {
            log.error(&format!(
                "key export failed: {}",
                out.message.unwrap_or_default()
            ));
            return 2;
        }
        let _ = std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600));
        log.info(&format!("Exported key to {}", key.display()));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_is_seconds_and_microseconds() {
        let t = chrono::DateTime::from_timestamp(1_765_068_111, 4_000).unwrap();
        assert_eq!(default_archive_name(t), "1765068111.000004");
    }

    #[test]
    fn fresh_names_never_repeat() {
        let mut n = ArchiveNames::new(Some("fixed".into()));
        assert_eq!(n.fresh().unwrap(), "fixed");
        assert_eq!(n.fresh().unwrap(), "fixed.1");
        assert_eq!(n.fresh().unwrap(), "fixed.2");
        assert_eq!(n.current(), "fixed.2");
        let mut d = ArchiveNames::new(None);
        let a = d.fresh().unwrap();
        let b = d.fresh().unwrap();
        assert_ne!(a, b);
        let mut bad = ArchiveNames::new(Some("a/b".into()));
        assert!(bad.fresh().is_err());
    }

    #[test]
    fn pause_ends_early_when_stopped() {
        assert!(pause(Duration::ZERO, || false));
        // A stop request ends even a wait of an hour at once.
        assert!(!pause(Duration::from_secs(3600), || true));
        let calls = std::cell::Cell::new(0);
        assert!(!pause(Duration::from_secs(3600), || {
            calls.set(calls.get() + 1);
            calls.get() > 2
        }));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn escaped_names_expand_to_themselves() {
        let name = "x-{y}}";
        let back = crate::placeholders::replace_placeholders(&escape_placeholders(name)).unwrap();
        assert_eq!(back, name);
    }
}
