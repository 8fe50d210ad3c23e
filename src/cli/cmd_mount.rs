//! `mount` and `umount`: clap arguments, and going to the background once the mount is ready.
//!
//! Without `-f`, hoard forks before opening the repository: the child does all the work (it may
//! prompt for a passphrase on the terminal) and, once the kernel has the filesystem, writes one
//! byte into a pipe, starts a new session and detaches from the terminal. The parent waits on
//! that pipe and exits 0 — so the mountpoint is usable as soon as `hoard mount` returns — or,
//! when the child fails first (it has printed its error), exits with the child's exit code.
//! Forking first also keeps the repository lock owned by the process that holds it open.

use std::path::PathBuf;

use clap::Args;

use crate::commands::mount::{self as mount_cmd, MountRequest};
use crate::commands::select::Selection;
use crate::commands::CommandError;
use crate::mount::MountOptions;

use super::options::{ArchiveFilter, CommonOptions};
use super::options::{PatternOptions, Selector};
use super::progress_view::{Display, View};

/// `mount`
#[derive(Debug, Args)]
pub struct MountArgs {
    /// repository or archive to mount
    #[arg(value_name = "REPOSITORY_OR_ARCHIVE")]
    pub location: String,
    /// where to mount filesystem
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: String,
    /// paths to extract; patterns are supported
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Show checkpoint archives in the repository contents list (default: hidden).
    #[arg(long = "consider-checkpoints")]
    pub consider_checkpoints: bool,
    /// stay in foreground, do not daemonize
    #[arg(short = 'f', long = "foreground")]
    pub foreground: bool,
    /// Extra mount options
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Option<String>,
    /// use numeric user and group identifiers from archive(s)
    /// (--numeric-owner is the deprecated older name)
    #[arg(long = "numeric-ids", alias = "numeric-owner")]
    pub numeric_ids: bool,
    /// Remove the specified number of leading path elements. Paths with fewer elements will be silently skipped.
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "strip-components", value_name = "NUMBER", default_value_t = 0)]
    pub strip_components: usize,
    /// archive selection
    #[command(flatten)]
    pub filter: ArchiveFilter,
    /// exclusion options
    #[command(flatten)]
    pub patterns: PatternOptions,
}

/// `umount`
#[derive(Debug, Args)]
pub struct UmountArgs {
    /// mountpoint of the filesystem to umount
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: String,
}

/// Runs `umount`.
pub fn run_umount(a: UmountArgs) -> Result<i32, CommandError> {
    mount_cmd::umount(std::path::Path::new(&a.mountpoint))
}

/// Runs `mount`; returns the exit code.
pub fn run(
    a: MountArgs,
    common: &CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    // Checks borg makes before opening the repository and asking for a passphrase.
    mount_cmd::check_fuse_available(&mount_cmd::fuse_device())?;
    let options = MountOptions::parse(a.options.as_deref())?;
    let mountpoint = PathBuf::from(&a.mountpoint);
    mount_cmd::check_mountpoint(&mountpoint, options.nonempty)?;
    let location = crate::location::Location::parse_with(Some(&a.location), &common.repo)?;
    let selection = Selection::new(
        a.filter.prefix.clone(),
        a.filter.glob_archives.clone(),
        &a.filter.sort_by,
        a.filter.first,
        a.filter.last,
        a.consider_checkpoints,
    )?;
    let mut selector = Selector::new(&a.paths, &a.patterns)?;
    let filter: Option<crate::mount::tree::PathFilter> = if selector.is_partial() {
        Some(Box::new(move |p: &[u8]| selector.matches(p)))
    } else {
        None
    };
    let request = MountRequest {
        location,
        mountpoint: mountpoint.clone(),
        options,
        numeric_ids: a.numeric_ids,
        strip_components: a.strip_components,
        selection,
        consider_part_files: common.consider_part_files,
        lock: common.lock_spec(),
        filter,
        progress: View::new(Display::for_process(common.progress), common.iec).sink(),
    };
    if a.foreground {
        let prepared = mount_cmd::prepare(request, confirm)?;
        mount_cmd::serve(prepared, &mountpoint, &mut || {})?;
        return Ok(super::EXIT_SUCCESS);
    }
    let ready_fd = match fork_with_ready_pipe()? {
        Forked::Parent(code) => return Ok(code),
        Forked::Child(fd) => fd,
    };
    let prepared = mount_cmd::prepare(request, confirm)?;
    let mut ready = move || detach(ready_fd);
    mount_cmd::serve(prepared, &mountpoint, &mut ready)?;
    Ok(super::EXIT_SUCCESS)
}

enum Forked {
    /// In the parent: the exit code to return.
    Parent(i32),
    /// In the child: the write end of the ready pipe.
    Child(libc::c_int),
}

fn fork_with_ready_pipe() -> Result<Forked, CommandError> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(CommandError::new(format!(
            "cannot create pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    let [read_fd, write_fd] = fds;
    // Flush buffered output so it is not written twice.
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }
    // SAFETY: hoard runs no other threads at this point; the child continues normally.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(CommandError::new(format!(
            "cannot fork: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(read_fd) };
        return Ok(Forked::Child(write_fd));
    }
    // SAFETY: closing our copy of the write end, then reading one byte from the pipe.
    unsafe { libc::close(write_fd) };
    let mut byte = 0u8;
    let n = loop {
        let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break n;
    };
    unsafe { libc::close(read_fd) };
    if n == 1 {
        return Ok(Forked::Parent(super::EXIT_SUCCESS));
    }
    // The child ended before the mount was ready; it has reported why.
    let mut status: libc::c_int = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        super::EXIT_ERROR
    };
    std::process::exit(code);
}

/// In the child once mounted: tell the parent, start a new session, leave the terminal (the working
/// directory is kept: a relative repository path stays valid).
fn detach(ready_fd: libc::c_int) {
    let byte = b'R';
    // SAFETY: plain descriptor operations on descriptors we own.
    unsafe {
        libc::write(ready_fd, (&byte as *const u8).cast(), 1);
        libc::close(ready_fd);
        libc::setsid();
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if devnull >= 0 {
            libc::dup2(devnull, 0);
            libc::dup2(devnull, 1);
            libc::dup2(devnull, 2);
            if devnull > 2 {
                libc::close(devnull);
            }
        }
    }
}
