//! SIGINT, SIGTERM and SIGHUP turned into a flag that long-running loops poll, with borg
//! 1.4's rules (`helpers/process.py`: `SigIntManager`, `raising_signal_handler`):
//!
//! * the first SIGINT only *requests a checkpoint* ([`checkpoint_requested`]): `create`,
//!   `delete` and `prune` commit what they have and stop; every other command goes on;
//! * a second SIGINT (at least 20 ms after the first, so one key press forwarded twice
//!   counts once), SIGTERM or SIGHUP *stops* the command ([`stop`]); the first of these
//!   wins, later ones are ignored (borg sets `SIG_IGN` once its exception is raised).
//!
//! [`install`] sets the handlers whatever the inherited disposition (a job started in the
//! background of a non-interactive shell inherits an ignored SIGINT; Python, and so borg,
//! installs its handler regardless). The handler only stores into atomics and wakes a
//! watcher thread through a pipe. Code that polls marks itself with a [`Graceful`] guard;
//! when a stop signal arrives and no such guard is alive (or the guarded code has not
//! finished within [`GRACE`]), the watcher prints the message, runs the [`Cleanup`]s that
//! lock holders registered (their lock files and objects are removed) and exits with
//! 128 + the signal number, as borg does. Uncommitted data is then left for the next
//! writer's cleanup, exactly as after a crash (the durability rules cover that).
//!
//! Nothing here knows about repositories or the terminal: the message printer and the
//! cleanups are handed in.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long code under a [`Graceful`] guard may take to wind down after a stop signal before
/// the watcher ends the process itself.
pub const GRACE: Duration = Duration::from_secs(30);

/// borg's `SigIntManager.debounce_interval`: a second SIGINT sooner than this is the same
/// key press.
const DEBOUNCE_NS: u64 = 20_000_000;

/// borg's `EXIT_SIGNAL_BASE`: a command ended by signal N exits with 128 + N.
pub const EXIT_SIGNAL_BASE: i32 = 128;

/// A signal that ends the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: "Received SIGTERM", exit 143.
    Term,
    /// SIGHUP: "Received SIGHUP.", exit 129.
    Hup,
    /// A second SIGINT: "Keyboard interrupt", exit 130.
    KeyboardInterrupt,
}

impl Stop {
    fn from_signal(sig: i32) -> Option<Stop> {
        match sig {
            libc::SIGTERM => Some(Stop::Term),
            libc::SIGHUP => Some(Stop::Hup),
            libc::SIGINT => Some(Stop::KeyboardInterrupt),
            _ => None,
        }
    }

    /// The signal number.
    pub fn signal(self) -> i32 {
        match self {
            Stop::Term => libc::SIGTERM,
            Stop::Hup => libc::SIGHUP,
            Stop::KeyboardInterrupt => libc::SIGINT,
        }
    }

    /// borg's exit code: `EXIT_SIGNAL_BASE` + the signal number.
    pub fn exit_code(self) -> i32 {
        EXIT_SIGNAL_BASE + self.signal()
    }

    /// borg's error line (`archiver.main`).
    pub fn message(self) -> &'static str {
        match self {
            Stop::Term => "Received SIGTERM",
            Stop::Hup => "Received SIGHUP.",
            Stop::KeyboardInterrupt => "Keyboard interrupt",
        }
    }

    /// borg's `msgid` for `--log-json` (none for a keyboard interrupt).
    pub fn msgid(self) -> Option<&'static str> {
        match self {
            Stop::Term => Some("Signal.SIGTERM"),
            Stop::Hup => Some("Signal.SIGHUP"),
            Stop::KeyboardInterrupt => None,
        }
    }
}

/// SIGINTs counted (only 0, 1 or 2 matter).
static INT_COUNT: AtomicU32 = AtomicU32::new(0);
/// CLOCK_MONOTONIC nanoseconds of the first SIGINT.
static INT_FIRST_NS: AtomicU64 = AtomicU64::new(0);
/// The stopping signal's number, 0 while none arrived.
static STOP: AtomicI32 = AtomicI32::new(0);
/// Write end of the watcher's pipe (-1 before [`install`]).
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
/// Live [`Graceful`] guards.
static GRACEFUL: AtomicUsize = AtomicUsize::new(0);
/// [`install`] ran.
static INSTALLED: AtomicBool = AtomicBool::new(false);

type CleanupFn = Box<dyn FnOnce() + Send>;

/// Lock releases to run before an emergency exit, by token.
static CLEANUPS: Mutex<Vec<(u64, CleanupFn)>> = Mutex::new(Vec::new());
static NEXT_CLEANUP: AtomicU64 = AtomicU64::new(1);

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a valid timespec and is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The signal handler: atomics and one `write(2)` only (async-signal-safe).
extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: errno is thread-local; it is saved and restored around the write below.
    let saved_errno = unsafe { *libc::__errno_location() };
    let notify = match sig {
        libc::SIGINT => {
            let now = monotonic_ns();
            if INT_COUNT
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                INT_FIRST_NS.store(now, Ordering::SeqCst);
                true
            } else if now.saturating_sub(INT_FIRST_NS.load(Ordering::SeqCst)) >= DEBOUNCE_NS {
                INT_COUNT.store(2, Ordering::SeqCst);
                let _ = STOP.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
                true
            } else {
                false
            }
        }
        _ => {
            let _ = STOP.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
            true
        }
    };
    let fd = PIPE_W.load(Ordering::SeqCst);
    if notify && fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) of one byte from a valid buffer is async-signal-safe; a full pipe
        // (EAGAIN) loses nothing, the watcher reads the atomics.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: restores the errno saved above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// True once a SIGINT arrived: the command should checkpoint and stop where borg does.
pub fn checkpoint_requested() -> bool {
    INT_COUNT.load(Ordering::SeqCst) > 0
}

/// The signal that ends the command, once one arrived.
pub fn stop() -> Option<Stop> {
    Stop::from_signal(STOP.load(Ordering::SeqCst))
}

/// Marks code that polls [`stop`] and [`checkpoint_requested`] and winds down by itself: while
/// a guard is alive, a stop signal is left to it for up to [`GRACE`].
#[must_use = "the guard marks the code as polling only while it is alive"]
pub struct Graceful(());

/// Starts a [`Graceful`] section.
pub fn graceful() -> Graceful {
    GRACEFUL.fetch_add(1, Ordering::SeqCst);
    Graceful(())
}

impl Drop for Graceful {
    fn drop(&mut self) {
        GRACEFUL.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A registered emergency cleanup (releasing a lock); dropping it unregisters.
#[must_use = "the cleanup is unregistered when this is dropped"]
#[derive(Debug)]
pub struct Cleanup(u64);

/// Registers `f` to run if the process is ended by a stop signal outside a [`Graceful`]
/// section (or after its [`GRACE`]). Lock holders register their release here.
pub fn on_emergency_exit(f: impl FnOnce() + Send + 'static) -> Cleanup {
    let id = NEXT_CLEANUP.fetch_add(1, Ordering::SeqCst);
    CLEANUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, Box::new(f)));
    Cleanup(id)
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        CLEANUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| *id != self.0);
    }
}

/// Runs every registered cleanup (newest first) and forgets them.
fn run_cleanups() {
    let taken = std::mem::take(&mut *CLEANUPS.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, f) in taken.into_iter().rev() {
        f();
    }
}

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP (even when SIGINT was ignored at
/// start) and the watcher thread. `report` prints the stop message (and whatever else the
/// caller shows at exit) before an emergency exit. Calling it again does nothing.
pub fn install(report: Box<dyn Fn(Stop) + Send>) -> std::io::Result<()> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // The read end blocks; only the handler's write end must never block.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(read_fd, libc::F_SETFL, 0) };
    PIPE_W.store(write_fd, Ordering::SeqCst);
    std::thread::Builder::new()
        .name("hoard-signals".into())
        .spawn(move || watch(read_fd, report))?;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler is an extern "C" fn that is
        // async-signal-safe; SA_RESTART keeps blocking calls going (the loops poll).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The watcher: waits for the handler's bytes; on a stop signal ends the process unless
/// graceful code handles it in time.
fn watch(read_fd: libc::c_int, report: Box<dyn Fn(Stop) + Send>) {
    let mut buf = [0u8; 16];
    loop {
        // SAFETY: reads into a valid buffer from the pipe we own.
        let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        let Some(stop) = stop() else {
            continue;
        };
        if GRACEFUL.load(Ordering::SeqCst) > 0 {
            // The polling code winds down and the main thread exits; only if it has not
            // within the grace period is the process ended from here.
            std::thread::sleep(GRACE);
        }
        if claim_report() {
            report(stop);
        }
        run_cleanups();
        // SAFETY: _exit ends the process at once; the repository's durability does not rely
        // on anything running after this.
        unsafe { libc::_exit(stop.exit_code()) };
    }
}

/// True for the first caller only: the stop message is printed once, by the main thread
/// when the command winds down by itself, or by the watcher before an emergency exit.
pub fn claim_report() -> bool {
    !REPORTED.swap(true, Ordering::SeqCst)
}

static REPORTED: AtomicBool = AtomicBool::new(false);
