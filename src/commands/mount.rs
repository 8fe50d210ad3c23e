//! `mount REPOSITORY_OR_ARCHIVE MOUNTPOINT [PATH...]` and `umount MOUNTPOINT` (borg's
//! `do_mount` / `do_umount`). The repository stays open with a shared lock for as long as
//! the filesystem is mounted, as in borg; the session ends when the mountpoint is unmounted
//! (`hoard umount`, `fusermount3 -u`) or on SIGINT/SIGTERM/SIGHUP, which unmount first (borg
//! unmounts only on SIGINT in the foreground and otherwise leaves a dead mountpoint behind).
//! Beyond borg, a non-empty mountpoint is refused unless `-o nonempty`.

use std::path::{Path, PathBuf};

use crate::archive::Operation;
use crate::location::Location;
use crate::mount::fs::{ArchiveFs, FsOptions, CHUNK_CACHE_BYTES, CHUNK_CACHE_ENTRIES};
use crate::mount::tree::{ArchiveEntry, PathFilter, Tree, TreeSettings};
use crate::mount::{MountError, MountOptions};
use crate::security::Confirm;

use super::common::{self, CommandError, LockSpec, Result};
use super::select::{self, Selection};

/// Everything `mount` needs besides the confirmations.
pub struct MountRequest {
    /// The repository, or `REPO::ARCHIVE`.
    pub location: Location,
    /// Where to mount.
    pub mountpoint: PathBuf,
    /// Parsed `-o` options.
    pub options: MountOptions,
    /// `--numeric-ids`.
    pub numeric_ids: bool,
    /// `--strip-components`.
    pub strip_components: usize,
    /// Archive selection for a repository mount.
    pub selection: Selection,
    /// `--consider-part-files`.
    pub consider_part_files: bool,
    /// `--lock-wait` and `--bypass-lock`.
    pub lock: LockSpec,
    /// PATH arguments and patterns; None selects everything.
    pub filter: Option<PathFilter>,
    /// Where loading the archives up front reports its progress.
    pub progress: crate::progress::Progress,
}

impl From<MountError> for CommandError {
    fn from(e: MountError) -> Self {
        CommandError::new(e.to_string())
    }
}

/// The FUSE device checked before mounting; `HOARD_FUSE_DEVICE` names another path (tests use
/// it to simulate a machine without FUSE).
pub fn fuse_device() -> PathBuf {
    std::env::var_os("HOARD_FUSE_DEVICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/fuse"))
}

/// Fails unless the FUSE device can be opened for reading and writing.
pub fn check_fuse_available(device: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map(drop)
        .map_err(|e| {
            let text = crate::platform::strerror(&e);
            let errno = e
                .raw_os_error()
                .map(|n| format!("[Errno {n}] "))
                .unwrap_or_default();
            CommandError::new(format!(
                "hoard mount not available: no FUSE support: {}: {errno}{text}",
                device.display()
            ))
        })
}

/// borg's mountpoint check (a writable directory), plus: it must be empty unless `nonempty`.
pub fn check_mountpoint(mountpoint: &Path, nonempty: bool) -> Result<()> {
    let shown = mountpoint.display();
    let writable = |p: &Path| {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
            return false;
        };
        // SAFETY: `c` is a valid NUL-terminated path.
        unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK | libc::X_OK) == 0 }
    };
    if !mountpoint.is_dir() || !writable(mountpoint) {
        return Err(CommandError::new(format!(
            "{shown}: Mountpoint must be a writable directory"
        )));
    }
    if !nonempty {
        let mut entries = std::fs::read_dir(mountpoint)
            .map_err(|e| CommandError::new(format!("{shown}: {e}")))?;
        if entries.next().is_some() {
            return Err(CommandError::new(format!(
                "{shown}: Mountpoint must be an empty directory (use -o nonempty to mount over it)"
            )));
        }
    }
    Ok(())
}

/// A filesystem ready to be mounted.
pub struct Prepared {
    fs: ArchiveFs,
    config: fuser::Config,
    /// Inodes built up front (the root, archive directories, or a whole archive).
    pub inodes: usize,
}

/// Opens the repository (shared lock, kept), selects the archives and builds the inode table:
/// a single archive or the `versions` view completely, archive directories of a repository
/// mount lazily.
pub fn prepare(mut req: MountRequest, confirm: Confirm<'_>) -> Result<Prepared> {
    if req.options.versions && req.location.archive.is_some() {
        return Err(CommandError::new(
            "for versions view, do not specify a single archive, but always give the repository as location.",
        ));
    }
    let access = req.lock.shared();
    let mut opened =
        common::open_with_manifest(&req.location, &access, &[Operation::Read], confirm)?;
    let settings = TreeSettings {
        numeric_ids: req.numeric_ids,
        uid_forced: req.options.uid,
        gid_forced: req.options.gid,
        umask: req.options.umask,
        versions: req.options.versions,
        strip_components: req.strip_components,
        consider_part_files: req.consider_part_files,
        filter: req.filter.take(),
    };
    let mut tree = Tree::new(settings)?;
    tree.set_progress(req.progress.clone());
    let entry = |a: &select::ArchiveInfo| ArchiveEntry {
        name: a.name.clone(),
        id: a.id,
        mtime: a.ts().timestamp_nanos_opt().unwrap_or(0),
    };
    match &req.location.archive {
        Some(name) => {
            let Some(a) = select::find_archive(&opened.manifest, name.as_bytes()) else {
                return Err(CommandError::with_id(
                    format!("Archive {name} does not exist"),
                    "Archive.DoesNotExist",
                ));
            };
            tree.process_archive(&mut opened.store, &entry(&a), None)?;
        }
        None => {
            for a in select::select_archives(&opened.manifest, &req.selection) {
                if req.options.versions {
                    tree.process_archive(&mut opened.store, &entry(&a), None)?;
                } else {
                    tree.add_pending_archive(entry(&a));
                }
            }
        }
    }
    // archives loaded later (on first access) load without a display
    tree.set_progress(crate::progress::Progress::default());
    for w in tree.warnings.drain(..) {
        tracing::warn!(target: "borg.fuse", "{w}");
    }
    let inodes = tree.len();
    let fs = ArchiveFs::new(
        tree,
        opened.store,
        FsOptions {
            allow_damaged_files: req.options.allow_damaged_files,
            umask: req.options.umask,
            cache_bytes: CHUNK_CACHE_BYTES,
            cache_entries: std::env::var("BORG_MOUNT_DATA_CACHE_ENTRIES")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(CHUNK_CACHE_ENTRIES),
        },
    );
    Ok(Prepared {
        fs,
        config: req.options.fuser_config(),
        inodes,
    })
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (threads started later inherit the mask)
/// and returns the set, for a thread that waits for them.
fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: plain signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Mounts `prepared` at `mountpoint`, calls `ready` once the kernel has the filesystem (so a
/// daemonizing caller can let its parent go), and serves requests until unmounted.
pub fn serve(prepared: Prepared, mountpoint: &Path, ready: &mut dyn FnMut()) -> Result<()> {
    super::workers::tune_allocator(super::workers::AllocatorProfile::MappedBuffers);
    let shown = mountpoint.display().to_string();
    let mut session = fuser::Session::new(prepared.fs, mountpoint, &prepared.config)
        .map_err(|e| CommandError::new(format!("{shown}: mounting failed: {e}")))?;
    tracing::info!(target: "borg.archiver", "Mounting filesystem");
    ready();
    let set = block_termination_signals();
    let mut unmounter = session.unmount_callable();
    std::thread::Builder::new()
        .name("hoard-mount-signals".into())
        .spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid signal set; sigwait writes the signal number to `sig`.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                let _ = unmounter.unmount();
            }
        })
        .map_err(|e| CommandError::new(format!("cannot start signal thread: {e}")))?;
    session
        .run()
        .map_err(|e| CommandError::new(format!("{shown}: FUSE session failed: {e}")))?;
    Ok(())
}

/// `umount MOUNTPOINT`: `fusermount3 -u`, else `fusermount -u`, else `umount` (looked up in
/// `PATH`, then in `/usr/bin` and `/bin`); returns the exit code of the tool that ran.
pub fn umount(mountpoint: &Path) -> Result<i32> {
    for (tool, args) in [
        ("fusermount3", &["-u"][..]),
        ("fusermount", &["-u"][..]),
        ("umount", &[][..]),
    ] {
        for program in [
            tool.to_string(),
            format!("/usr/bin/{tool}"),
            format!("/bin/{tool}"),
        ] {
            match std::process::Command::new(&program)
                .args(args)
                .arg(mountpoint)
                .status()
            {
                Ok(status) => return Ok(status.code().unwrap_or(2)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CommandError::new(format!("{program}: {e}"))),
            }
        }
    }
    Err(CommandError::new(
        "no unmount tool found (fusermount3, fusermount, umount)",
    ))
}
