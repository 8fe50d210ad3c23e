//! borg-compatible locking (FORMAT.md §3): the `<base>.exclusive/` directory primitive holding a
//! `<hostid>.<pid>-<thread hex>` file, the `<base>.roster` JSON of shared/exclusive holders,
//! shared/exclusive/upgrade, stale-lock removal for our own host id, `--lock-wait` timeouts and
//! `break-lock`. Generic over the base path, so the client cache lock (`<cache>/lock`) reuses it.
//!
//! Host ids and liveness checks live in [`super::hostid`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use super::hostid::{fqdn, host_id, process_alive, uuid_getnode, ProcessId};

/// Locking errors, with borg's messages.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// borg `LockTimeout`.
    #[error("Failed to create/acquire the lock {0} (timeout).")]
    Timeout(String),
    /// borg `LockFailed` (path, reason).
    #[error("Failed to create/acquire the lock {0} ({1}).")]
    Failed(String, String),
    /// borg `NotLocked`.
    #[error("Failed to release the lock {0} (was not locked).")]
    NotLocked(String),
    /// borg `NotMyLock`.
    #[error("Failed to release the lock {0} (was/is locked, but not by me).")]
    NotMyLock(String),
}

fn sleep_interval(timeout: Option<f64>, sleep: Option<f64>) -> f64 {
    match (sleep, timeout) {
        (Some(s), _) => s,
        (None, None) => 1.0,
        (None, Some(t)) => (t / 10.0).min(60.0),
    }
}

struct Timer {
    end: Option<Instant>,
    sleep: f64,
}

impl Timer {
    fn start(timeout: Option<f64>, sleep: f64) -> Timer {
        Timer {
            end: timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0))),
            sleep,
        }
    }
    fn timed_out_or_sleep(&self) -> bool {
        if let Some(end) = self.end {
            if Instant::now() >= end {
                return true;
            }
        }
        if self.sleep > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(self.sleep));
        }
        false
    }
}

/// The `<base>.exclusive` directory primitive (borg `ExclusiveLock`).
#[derive(Debug)]
pub struct ExclusiveLock {
    path: PathBuf,
    id: ProcessId,
    our_host: String,
    unique_name: PathBuf,
    timeout: Option<f64>,
    sleep: Option<f64>,
    /// Log lines about stale locks found/killed (borg logs them as warnings).
    pub messages: Vec<String>,
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

impl ExclusiveLock {
    /// A lock directory at `path` (e.g. `<repo>/lock.exclusive`) for process `id`.
    pub fn new(path: &Path, id: ProcessId, our_host: &str, timeout: Option<f64>) -> ExclusiveLock {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let unique_name = path.join(id.unique_name());
        ExclusiveLock {
            path,
            id,
            our_host: our_host.to_string(),
            unique_name,
            timeout,
            sleep: None,
            messages: Vec::new(),
        }
    }

    /// Acquires: create a temp dir with our file, rename it to the lock path; retry with stale
    /// removal and sleeps until the timeout.
    pub fn acquire(&mut self) -> Result<(), LockError> {
        let parent = self.path.parent().unwrap_or(Path::new("."));
        let base = self
            .path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = make_temp_dir(parent, &base)
            .map_err(|(e, tried)| LockError::Failed(path_str(&self.path), os_error(&e, &tried)))?;
        let uname = self.id.unique_name();
        let temp_unique = temp.join(&uname);
        let cleanup = |temp: &Path| {
            let _ = fs::remove_file(temp.join(&uname));
            let _ = fs::remove_dir(temp);
        };
        if let Err(e) = fs::File::create(&temp_unique) {
            cleanup(&temp);
            return Err(LockError::Failed(
                path_str(&self.path),
                os_error(&e, &temp_unique),
            ));
        }
        let timer = Timer::start(self.timeout, sleep_interval(self.timeout, self.sleep));
        loop {
            // rename(2) of a directory onto a non-empty directory fails with ENOTEMPTY/EEXIST
            match fs::rename(&temp, &self.path) {
                Ok(()) => return Ok(()),
                Err(_) => {
                    if self.by_me() {
                        cleanup(&temp);
                        return Ok(());
                    }
                    self.kill_stale_lock();
                    if timer.timed_out_or_sleep() {
                        cleanup(&temp);
                        return Err(LockError::Timeout(path_str(&self.path)));
                    }
                }
            }
        }
    }

    /// Removes the temporary directories of an acquire of ours that was cut short
    /// (`<name>.XXXXXXXX.tmp` holding our unique file).
    fn remove_own_temp_dirs(&self) {
        let parent = self.path.parent().unwrap_or(Path::new("."));
        let Some(base) = self
            .path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
        else {
            return;
        };
        let Ok(entries) = fs::read_dir(parent) else {
            return;
        };
        let uname = self.id.unique_name();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{base}.")) && name.ends_with(".tmp") {
                let p = e.path();
                if fs::remove_file(p.join(&uname)).is_ok() {
                    let _ = fs::remove_dir(&p);
                }
            }
        }
    }

    /// Releases: unlink our file, rmdir the lock dir (ENOTEMPTY/EEXIST/ENOENT ignored).
    pub fn release(&mut self) -> Result<(), LockError> {
        if !self.is_locked() {
            return Err(LockError::NotLocked(path_str(&self.path)));
        }
        if !self.by_me() {
            return Err(LockError::NotMyLock(path_str(&self.path)));
        }
        fs::remove_file(&self.unique_name)
            .map_err(|e| LockError::Failed(path_str(&self.path), e.to_string()))?;
        match fs::remove_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ENOTEMPTY) | Some(libc::EEXIST) | Some(libc::ENOENT) => Ok(()),
                _ => Err(LockError::Failed(path_str(&self.path), e.to_string())),
            },
        }
    }

    /// Whether the lock directory exists.
    pub fn is_locked(&self) -> bool {
        self.path.exists()
    }

    /// Whether our unique file is in the lock directory.
    pub fn by_me(&self) -> bool {
        self.unique_name.exists()
    }

    /// Removes lock files of dead processes of our own host, then tries to rmdir the lock.
    pub fn kill_stale_lock(&mut self) -> bool {
        if let Ok(rd) = fs::read_dir(&self.path) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(id) = parse_unique_name(&name) else {
                    self.messages.push(format!(
                        "Found malformed lock {name} in {}. Please check/fix manually.",
                        path_str(&self.path)
                    ));
                    return false;
                };
                if process_alive(&self.our_host, &id) {
                    return false;
                }
                match fs::remove_file(e.path()) {
                    Ok(()) => {
                        tracing::warn!("Killed stale lock {name}.");
                        self.messages.push(format!("Killed stale lock {name}."));
                    }
                    Err(err) => {
                        self.messages.push(format!(
                            "Found stale lock {name}, but cannot delete due to {err}"
                        ));
                        return false;
                    }
                }
            }
        }
        fs::remove_dir(&self.path).is_ok()
    }

    /// `break_lock`: remove everything in the lock directory and the directory.
    pub fn break_lock(&self) -> io::Result<()> {
        if self.is_locked() {
            for e in fs::read_dir(&self.path)? {
                fs::remove_file(e?.path())?;
            }
            fs::remove_dir(&self.path)?;
        }
        Ok(())
    }
}

/// Python's `str(OSError)` for an error on `path`: `[Errno 13] Permission denied: '/x'`, the
/// reason borg's `LockFailed` shows (e.g. on a read-only repository).
fn os_error(e: &io::Error, path: &Path) -> String {
    crate::platform::os_error_text(e, &path.display().to_string())
}

/// Creates `<base>.XXXXXXXX.tmp` in `parent`; on failure returns the error and the path tried.
fn make_temp_dir(parent: &Path, base: &str) -> Result<PathBuf, (io::Error, PathBuf)> {
    use std::os::unix::fs::DirBuilderExt;
    let mut p = parent.join(format!("{base}.tmp"));
    for _ in 0..100 {
        let r: u64 = rand::random();
        p = parent.join(format!("{base}.{:08x}.tmp", r as u32));
        match fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err((e, p)),
        }
    }
    Err((
        io::Error::other("could not create a temporary lock directory"),
        p,
    ))
}

/// Parses `<host>.<pid>-<thread hex>` (borg splits at the last `-`, then the last `.`).
pub fn parse_unique_name(name: &str) -> Option<ProcessId> {
    let (host_pid, thread) = name.rsplit_once('-')?;
    let (host, pid) = host_pid.rsplit_once('.')?;
    Some(ProcessId {
        host: host.to_string(),
        pid: pid.parse().ok()?,
        thread: i64::from_str_radix(thread, 16).ok()?,
    })
}

/// Roster key of shared holders.
pub const SHARED: &str = "shared";
/// Roster key of exclusive holders.
pub const EXCLUSIVE: &str = "exclusive";

/// The `<base>.roster` JSON file (borg `LockRoster`).
#[derive(Debug)]
pub struct LockRoster {
    path: PathBuf,
    id: ProcessId,
    our_host: String,
}

/// Roster content: key (`"shared"`/`"exclusive"`) → holders (keys come back sorted when loaded).
pub type RosterData = Vec<(String, Vec<ProcessId>)>;

impl LockRoster {
    /// A roster at `path` for process `id`.
    pub fn new(path: &Path, id: ProcessId, our_host: &str) -> LockRoster {
        LockRoster {
            path: path.to_path_buf(),
            id,
            our_host: our_host.to_string(),
        }
    }

    /// Loads the roster, dropping stale entries; a missing or malformed file is empty.
    pub fn load(&self) -> RosterData {
        let Ok(text) = fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&text)
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(arr) = v.as_array() else {
                return Vec::new();
            };
            let mut entries = Vec::new();
            for e in arr {
                let (Some(h), Some(p), Some(t)) = (
                    e.get(0).and_then(|x| x.as_str()),
                    e.get(1).and_then(|x| x.as_i64()),
                    e.get(2).and_then(|x| x.as_i64()),
                ) else {
                    return Vec::new();
                };
                if e.as_array().map(|a| a.len()) != Some(3) {
                    return Vec::new();
                }
                let id = ProcessId {
                    host: h.to_string(),
                    pid: p,
                    thread: t,
                };
                if (k == SHARED || k == EXCLUSIVE) && !process_alive(&self.our_host, &id) {
                    tracing::warn!(
                        "Removed stale {k} roster lock for host {} pid {} thread {}.",
                        id.host,
                        id.pid,
                        id.thread
                    );
                    continue;
                }
                if !entries.contains(&id) {
                    entries.push(id);
                }
            }
            out.push((k, entries));
        }
        out
    }

    /// Writes the roster as Python's `json.dump` would.
    pub fn save(&self, data: &RosterData) -> io::Result<()> {
        fs::write(&self.path, roster_json(data))
    }

    /// Deletes the roster file.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Entries under `key`.
    pub fn get(&self, key: &str) -> Vec<ProcessId> {
        self.load()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    /// True when all of `keys` have no entries.
    pub fn empty(&self, keys: &[&str]) -> bool {
        keys.iter().all(|k| self.get(k).is_empty())
    }

    /// Adds (`add = true`) or removes our id under `key`.
    pub fn modify(&self, key: &str, add: bool) -> io::Result<()> {
        let mut data = self.load();
        let idx = match data.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                data.push((key.to_string(), Vec::new()));
                data.len() - 1
            }
        };
        let list = &mut data[idx].1;
        if add {
            if !list.contains(&self.id) {
                list.push(self.id.clone());
            }
        } else {
            let before = list.len();
            list.retain(|e| *e != self.id);
            if before == list.len() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "not in roster"));
            }
        }
        self.save(&data)
    }
}

/// The roster JSON text exactly as Python `json.dump` writes it:
/// `{"exclusive": [["host", 123, 0]]}`.
pub fn roster_json(data: &RosterData) -> String {
    let parts: Vec<String> = data
        .iter()
        .map(|(k, v)| {
            let entries: Vec<String> = v
                .iter()
                .map(|e| {
                    format!(
                        "[{}, {}, {}]",
                        serde_json::Value::String(e.host.clone()),
                        e.pid,
                        e.thread
                    )
                })
                .collect();
            format!(
                "{}: [{}]",
                serde_json::Value::String(k.clone()),
                entries.join(", ")
            )
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A shared/exclusive lock at base path `<base>` (files `<base>.exclusive` and `<base>.roster`),
/// borg's `Lock`.
#[derive(Debug)]
pub struct Lock {
    base: PathBuf,
    is_exclusive: bool,
    timeout: Option<f64>,
    roster: LockRoster,
    xlock: ExclusiveLock,
    held: bool,
    /// Releases this lock if a signal ends the process (registered while held).
    cleanup: Option<crate::platform::signals::Cleanup>,
}

impl Lock {
    /// A lock for `base` (e.g. `<repo>/lock`), our own process id, `timeout` seconds
    /// (`None` = wait forever).
    pub fn new(base: &Path, exclusive: bool, timeout: Option<f64>) -> Lock {
        let id = ProcessId::current();
        Lock::with_id(base, exclusive, timeout, id, host_id())
    }

    /// Like [`Lock::new`] with an explicit process id and "our host" (for tests).
    pub fn with_id(
        base: &Path,
        exclusive: bool,
        timeout: Option<f64>,
        id: ProcessId,
        our_host: &str,
    ) -> Lock {
        let b = base.as_os_str().to_os_string();
        let mut xp = b.clone();
        xp.push(".exclusive");
        let mut rp = b;
        rp.push(".roster");
        Lock {
            base: base.to_path_buf(),
            is_exclusive: exclusive,
            timeout,
            roster: LockRoster::new(Path::new(&rp), id.clone(), our_host),
            xlock: ExclusiveLock::new(Path::new(&xp), id, our_host, timeout),
            held: false,
            cleanup: None,
        }
    }

    fn failed(&self, e: io::Error) -> LockError {
        LockError::Failed(path_str(&self.base), e.to_string())
    }

    /// Acquires in the mode given at construction.
    pub fn acquire(&mut self) -> Result<(), LockError> {
        let ex = self.is_exclusive;
        self.acquire_mode(ex, None)
    }

    fn acquire_mode(&mut self, exclusive: bool, remove: Option<&str>) -> Result<(), LockError> {
        // Registered before anything is written, so a signal in the middle of acquiring
        // leaves nothing behind either.
        self.register_cleanup();
        let r = self.acquire_mode_inner(exclusive, remove);
        if r.is_err() && !self.held {
            self.cleanup = None;
        }
        r
    }

    fn acquire_mode_inner(
        &mut self,
        exclusive: bool,
        remove: Option<&str>,
    ) -> Result<(), LockError> {
        if exclusive {
            self.wait_for_readers_finishing(remove)?;
            self.roster
                .modify(EXCLUSIVE, true)
                .map_err(|e| self.failed(e))?;
        } else {
            self.xlock.acquire()?;
            let r = (|| -> io::Result<()> {
                if let Some(k) = remove {
                    self.roster.modify(k, false)?;
                }
                self.roster.modify(SHARED, true)
            })();
            self.xlock.release()?;
            r.map_err(|e| self.failed(e))?;
        }
        self.is_exclusive = exclusive;
        self.held = true;
        Ok(())
    }

    /// Registers [`Lock::remove_traces`] to run if a signal ends the process where no code
    /// winds down by itself (see `platform::signals`).
    fn register_cleanup(&mut self) {
        if self.cleanup.is_some() {
            return;
        }
        let base = self.base.clone();
        let id = self.xlock.id.clone();
        let our_host = self.xlock.our_host.clone();
        self.cleanup = Some(crate::platform::signals::on_emergency_exit(move || {
            Lock::with_id(&base, false, Some(1.0), id, &our_host).remove_traces();
        }));
    }

    /// Removes every trace of this process from the lock, whatever state it is in: our
    /// roster entries (the roster goes when empty) and our exclusive lock directory. Used
    /// before an emergency exit, possibly half-way through an acquire or release.
    fn remove_traces(&mut self) {
        self.xlock.remove_own_temp_dirs();
        if !self.xlock.by_me() && self.xlock.acquire().is_err() {
            return;
        }
        let _ = self.roster.modify(SHARED, false);
        let _ = self.roster.modify(EXCLUSIVE, false);
        if self.roster.empty(&[EXCLUSIVE, SHARED]) {
            let _ = self.roster.remove();
        }
        let _ = self.xlock.release();
    }

    fn wait_for_readers_finishing(&mut self, remove: Option<&str>) -> Result<(), LockError> {
        let timer = Timer::start(self.timeout, 0.2);
        loop {
            self.xlock.acquire()?;
            let r = (|| -> io::Result<bool> {
                if let Some(k) = remove {
                    self.roster.modify(k, false)?;
                }
                if self.roster.get(SHARED).is_empty() {
                    return Ok(true);
                }
                if let Some(k) = remove {
                    self.roster.modify(k, true)?;
                }
                Ok(false)
            })();
            match r {
                Ok(true) => return Ok(()),
                Ok(false) => self.xlock.release()?,
                Err(e) => {
                    let _ = self.xlock.release();
                    return Err(self.failed(e));
                }
            }
            if timer.timed_out_or_sleep() {
                return Err(LockError::Timeout(path_str(&self.base)));
            }
        }
    }

    /// Releases the lock (removing the roster when it becomes empty).
    pub fn release(&mut self) -> Result<(), LockError> {
        if !self.held {
            return Ok(());
        }
        self.held = false;
        let cleanup = self.cleanup.take();
        // The emergency cleanup stays registered until the release is complete.
        let r = if self.is_exclusive {
            let _ = self.roster.modify(EXCLUSIVE, false);
            if self.roster.empty(&[EXCLUSIVE, SHARED]) {
                self.roster.remove().map_err(|e| self.failed(e))?;
            }
            self.xlock.release()
        } else {
            self.xlock.acquire()?;
            let _ = self.roster.modify(SHARED, false);
            if self.roster.empty(&[EXCLUSIVE, SHARED]) {
                let _ = self.roster.remove();
            }
            self.xlock.release()
        };
        drop(cleanup);
        r
    }

    /// Shared → exclusive (deadlocks if two holders upgrade at once, as in borg).
    pub fn upgrade(&mut self) -> Result<(), LockError> {
        if !self.is_exclusive {
            self.acquire_mode(true, Some(SHARED))?;
        }
        Ok(())
    }

    /// Exclusive → shared.
    pub fn downgrade(&mut self) -> Result<(), LockError> {
        if self.is_exclusive {
            self.acquire_mode(false, Some(EXCLUSIVE))?;
        }
        Ok(())
    }

    /// Whether we hold the exclusive lock.
    pub fn got_exclusive_lock(&self) -> bool {
        self.held && self.is_exclusive && self.xlock.is_locked() && self.xlock.by_me()
    }

    /// Whether the lock is currently held by us.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// `borg break-lock`: delete the roster, then the exclusive lock directory.
    pub fn break_lock(&self) -> io::Result<()> {
        self.roster.remove()?;
        self.xlock.break_lock()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(host: &str, pid: i64) -> ProcessId {
        ProcessId {
            host: host.into(),
            pid,
            thread: 0,
        }
    }

    #[test]
    fn roster_json_is_pythons() {
        let d = vec![(EXCLUSIVE.to_string(), vec![pid("vm@3281355014145", 20153)])];
        assert_eq!(
            roster_json(&d),
            r#"{"exclusive": [["vm@3281355014145", 20153, 0]]}"#
        );
        assert_eq!(
            parse_unique_name("host.name@123.456-0"),
            Some(pid("host.name@123", 456))
        );
    }

    #[test]
    fn exclusive_excludes_shared_shares() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("lock");
        let me = "h@1";
        let mut a = Lock::with_id(
            &base,
            true,
            Some(0.3),
            pid(me, std::process::id() as i64),
            me,
        );
        a.acquire().unwrap();
        let roster = fs::read_to_string(d.path().join("lock.roster")).unwrap();
        assert_eq!(
            roster,
            format!("{{\"exclusive\": [[\"h@1\", {}, 0]]}}", std::process::id())
        );
        // another (live) holder on another host cannot get it
        let mut b = Lock::with_id(&base, true, Some(0.3), pid("other@2", 1), me);
        let t = Instant::now();
        let e = b.acquire().unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(e.to_string().contains("lock.exclusive (timeout)"), "{e}");
        a.release().unwrap();
        assert!(!d.path().join("lock.roster").exists());
        assert!(!d.path().join("lock.exclusive").exists());
        // shared + shared
        let mut s1 = Lock::with_id(&base, false, Some(0.3), pid("other@2", 1), me);
        let mut s2 = Lock::with_id(&base, false, Some(0.3), pid("other@3", 2), me);
        s1.acquire().unwrap();
        s2.acquire().unwrap();
        let mut x = Lock::with_id(&base, true, Some(0.3), pid("other@4", 3), me);
        assert!(x.acquire().is_err());
        s1.release().unwrap();
        s2.release().unwrap();
        x.acquire().unwrap();
        x.release().unwrap();
    }

    #[test]
    fn stale_lock_of_dead_pid_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("lock");
        let me = "h@1";
        // a pid that surely does not exist
        let dead = pid(me, 0x7fff_fff0);
        fs::create_dir(d.path().join("lock.exclusive")).unwrap();
        fs::write(
            d.path().join("lock.exclusive").join(dead.unique_name()),
            b"",
        )
        .unwrap();
        fs::write(
            d.path().join("lock.roster"),
            roster_json(&vec![(EXCLUSIVE.into(), vec![dead.clone()])]),
        )
        .unwrap();
        let mut l = Lock::with_id(
            &base,
            true,
            Some(1.0),
            pid(me, std::process::id() as i64),
            me,
        );
        l.acquire().unwrap();
        assert!(l.got_exclusive_lock());
        assert_eq!(l.roster.get(EXCLUSIVE).len(), 1);
        l.release().unwrap();
        // break_lock
        let mut l2 = Lock::with_id(&base, false, Some(1.0), pid("x@9", 5), me);
        l2.acquire().unwrap();
        l2.break_lock().unwrap();
        assert!(!d.path().join("lock.roster").exists());
    }
}
