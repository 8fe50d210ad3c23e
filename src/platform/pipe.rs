//! Pipe capacity: the connection to a remote repository is a pair of pipes between hoard and
//! its ssh process. With Linux's default 64 KiB, every 64 KiB of a chunk costs the writer a
//! sleep and the reader a wake-up; a wider pipe lets each side move a whole chunk, or several,
//! per turn. (Measured with benches/remote.sh, 575 MB: ssh's CPU on an extract 1.48 -> 0.97 s.)
//!
//! `serve` leaves its pipes from sshd as they are: a server runs many sessions of one user at
//! once, and the wide pipes of one user count against `/proc/sys/fs/pipe-user-pages-soft`
//! (64 MiB by default), past which every new pipe of that user gets two pages.

use std::os::fd::RawFd;

/// The capacity [`widen`] asks for: the largest an unprivileged process may set by default
/// (`/proc/sys/fs/pipe-max-size`).
pub const WIDE_PIPE_BYTES: usize = 1 << 20;

/// Asks the kernel to give the pipe behind `fd` [`WIDE_PIPE_BYTES`] of buffer. Best effort:
/// returns the capacity the pipe has afterwards, or `None` when `fd` is not a pipe, the call is
/// refused (the user's pipe quota, `/proc/sys/fs/pipe-user-pages-soft`) or unknown; the pipe
/// works as before in every case.
pub fn widen(fd: RawFd) -> Option<usize> {
    // SAFETY: F_SETPIPE_SZ and F_GETPIPE_SZ only read their integer argument; an fd that is not
    // a pipe (or not open) makes them fail with EBADF or EINVAL, nothing else.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, WIDE_PIPE_BYTES as libc::c_int);
        let size = libc::fcntl(fd, libc::F_GETPIPE_SZ);
        usize::try_from(size).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_pipe_is_widened_and_a_file_is_left_alone() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert_eq!(widen(fds[1]), Some(WIDE_PIPE_BYTES));
        // The capacity belongs to the pipe, so the other end sees it too.
        assert_eq!(
            unsafe { libc::fcntl(fds[0], libc::F_GETPIPE_SZ) },
            WIDE_PIPE_BYTES as i32
        );
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        let file = tempfile::tempfile().unwrap();
        assert_eq!(widen(file.as_raw_fd()), None);
    }
}
