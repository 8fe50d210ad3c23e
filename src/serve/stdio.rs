//! The server's stdin and stdout as the request loop sees them, with SIGTERM, SIGHUP and
//! SIGINT turned into the end of the session.
//!
//! A signal handler only records the signal and writes a byte to a wake-up pipe. [`Input`]
//! and [`Output`] wait on their descriptor and that pipe together, so a signal that arrives
//! while the server waits for the client (or for the client to read a reply) makes the read or
//! write fail at once; the loop then closes the repository — the uncommitted transaction is
//! dropped and the lock released — and the caller reports the signal with borg's message and
//! exit code ([`Signals::received`], [`exit_for`]). A signal that arrives during a request
//! takes effect when that request's reply is written.
//! Unix only; the handlers are process-wide, so only `hoard serve` installs them.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The first termination signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// The write end of the wake-up pipe for the handler (-1: none).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let _ = RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a full pipe
        // (which already wakes every waiter) drops the byte instead of blocking.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// The installed handlers and the read end of their wake-up pipe.
pub struct Signals {
    wake_read: OwnedFd,
    _wake_write: OwnedFd,
}

/// borg's message and exit code for a termination signal (`archiver.main`).
pub fn exit_for(sig: i32) -> (&'static str, i32) {
    match sig {
        libc::SIGTERM => ("Received SIGTERM", 128 + libc::SIGTERM),
        libc::SIGHUP => ("Received SIGHUP.", 128 + libc::SIGHUP),
        _ => ("Keyboard interrupt", 128 + libc::SIGINT),
    }
}

impl Signals {
    /// Installs the handlers for SIGTERM and SIGHUP, and for SIGINT unless this process
    /// inherited it ignored (a client that starts its server with SIGINT ignored keeps Ctrl-C
    /// for itself, so that it can checkpoint first).
    pub fn install() -> io::Result<Signals> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills two descriptors we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (wake_read, wake_write) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        WAKE_FD.store(wake_write.as_raw_fd(), Ordering::SeqCst);
        for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
            // SAFETY: sigaction with a zeroed struct, an empty mask and a handler that only
            // touches atomics and calls write(2).
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if sig == libc::SIGINT
                    && libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction == libc::SIG_IGN
                {
                    continue;
                }
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(Signals {
            wake_read,
            _wake_write: wake_write,
        })
    }

    /// The termination signal received so far, if any.
    pub fn received(&self) -> Option<i32> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// The process's stdin (fd 0), unbuffered.
    pub fn input(&self) -> Input<'_> {
        Input { signals: self }
    }

    /// The process's stdout (fd 1), unbuffered.
    pub fn output(&self) -> Output<'_> {
        Output { signals: self }
    }

    /// One `read(2)` or `write(2)` on `fd` (`call`) once `fd` is ready for `events`: retried
    /// after `EINTR` and `EAGAIN`, failing once a termination signal has arrived.
    fn transfer(
        &self,
        fd: RawFd,
        events: libc::c_short,
        mut call: impl FnMut() -> isize,
    ) -> io::Result<usize> {
        loop {
            self.wait(fd, events)?;
            let n = call();
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if !matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) {
                return Err(e);
            }
        }
    }

    /// Waits until `fd` is ready for `events` or a signal arrived (then an error).
    fn wait(&self, fd: RawFd, events: libc::c_short) -> io::Result<()> {
        loop {
            if let Some(sig) = self.received() {
                return Err(io::Error::other(format!("signal {sig}")));
            }
            let mut fds = [
                libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake_read.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll on two valid pollfd entries.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if self.received().is_none() && fds[0].revents != 0 {
                // Ready, hung up or in error: the read or write itself tells which.
                return Ok(());
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // The handlers stay (the process is about to exit) but must not write to a closed
        // descriptor whose number may be reused.
        WAKE_FD.store(-1, Ordering::SeqCst);
    }
}

/// Reads stdin until a termination signal arrives; after one, every read fails.
pub struct Input<'a> {
    signals: &'a Signals,
}

impl io::Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.signals.transfer(0, libc::POLLIN, || {
            // SAFETY: reads at most buf.len() bytes into buf.
            unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) }
        })
    }
}

/// Writes stdout until a termination signal arrives; after one, every write fails.
pub struct Output<'a> {
    signals: &'a Signals,
}

impl io::Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.signals.transfer(1, libc::POLLOUT, || {
            // SAFETY: writes at most buf.len() bytes from buf.
            unsafe { libc::write(1, buf.as_ptr().cast(), buf.len()) }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
