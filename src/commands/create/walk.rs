//! The walk: every PATH argument in order, directories before their contents, entries sorted
//! by inode (borg's `scandir_inorder`), with borg's exclusion rules (patterns, tag files,
//! `--one-file-system`, `--exclude-nodump`) and its per-type processors for directories,
//! symlinks, fifos and devices (regular files are in `files`).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::archive::item::Item;
use crate::location::Location;
use crate::platform::fs::{self, Stat};

use super::error::{join, make_path_safe, normpath, show_path, BackupError};
use super::{meta, Backup};

const CACHE_TAG_NAME: &[u8] = b"CACHEDIR.TAG";
const CACHE_TAG_CONTENTS: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";
/// borg's `flags_normal`: regular files, fifos (never blocks).
pub(super) const FLAGS_NORMAL: libc::c_int =
    libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_NOFOLLOW;
/// borg's `flags_special`: devices and fifos read with `--read-special` (blocks).
pub(super) const FLAGS_SPECIAL: libc::c_int = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NOFOLLOW;
/// borg's `flags_special_follow`: symlinks to devices with `--read-special`.
pub(super) const FLAGS_SPECIAL_FOLLOW: libc::c_int = libc::O_RDONLY | libc::O_NOCTTY;
/// `UF_NODUMP`
const UF_NODUMP: u32 = 0x1;

/// borg 1.4's `get_strip_prefix` (the "slashdot hack"): for a PATH `a/b/./c`, the prefix
/// `a/b/` is read from but left out of the archived paths. None without a `/./` after the
/// first character.
pub(super) fn strip_prefix_of(arg: &[u8]) -> Option<Vec<u8>> {
    let pos = arg.windows(3).position(|w| w == b"/./")?;
    if pos == 0 {
        return None;
    }
    let mut prefix = normpath(&arg[..pos]);
    prefix.push(b'/');
    Some(prefix)
}

/// The path archived for the walked `path` under a slashdot `prefix` (borg 1.4's
/// `create_helper`): `.` for the directory the hack points to, the rest of the path below
/// it, and None for a directory level left of it (not archived, status `x`).
pub(super) fn archived_path(path: &[u8], prefix: Option<&[u8]>) -> Option<Vec<u8>> {
    let Some(prefix) = prefix else {
        return Some(path.to_vec());
    };
    let mut with_sep = path.to_vec();
    with_sep.push(b'/');
    if with_sep == prefix {
        return Some(b".".to_vec());
    }
    if prefix.starts_with(&with_sep) {
        return None;
    }
    Some(path.strip_prefix(prefix).unwrap_or(path).to_vec())
}

/// A byte path as a filesystem path.
pub(super) fn os_path(p: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(p))
}

/// `os.path.basename`, or the whole path when that is empty (borg then works path-based).
pub(super) fn basename(p: &[u8]) -> Vec<u8> {
    let name = match p.iter().rposition(|b| *b == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    };
    if name.is_empty() {
        p.to_vec()
    } else {
        name.to_vec()
    }
}

fn lstat(path: &[u8], op: &'static str) -> Result<Stat, BackupError> {
    fs::lstat(&os_path(path)).map_err(|e| BackupError::platform(op, &e, Some(&basename(path))))
}

/// [`lstat`], relative to the open parent directory `at` when there is one.
pub(super) fn lstat_entry(
    at: Option<RawFd>,
    path: &[u8],
    op: &'static str,
) -> Result<Stat, BackupError> {
    let Some(dirfd) = at else {
        return lstat(path, op);
    };
    let name = basename(path);
    fs::lstat_at(dirfd, &name, &os_path(path))
        .map_err(|e| BackupError::platform(op, &e, Some(&name)))
}

/// Opens `path` without updating its atime (borg's `os_open(noatime=True)`), relative to
/// the open parent directory `at` when there is one.
pub(super) fn open_entry(
    at: Option<RawFd>,
    path: &[u8],
    flags: libc::c_int,
) -> crate::platform::Result<File> {
    let opened = match at {
        Some(dirfd) => fs::open_noatime_at(dirfd, &basename(path), flags, &os_path(path)),
        None => fs::open_noatime(&os_path(path), flags),
    };
    opened.map(File::from)
}

/// borg's `stat_update_check`: refuses an object whose type or inode changed since `lstat`.
pub(super) fn update_check(old: &Stat, file: &File) -> Result<Stat, BackupError> {
    let new = fs::fstat(file.as_raw_fd()).map_err(|e| BackupError::platform("fstat", &e, None))?;
    check_same(old, &new)?;
    Ok(new)
}

fn check_same(old: &Stat, new: &Stat) -> Result<(), BackupError> {
    if old.file_type() != new.file_type() {
        return Err(BackupError::Other(
            "file type changed (race condition), skipping file".into(),
        ));
    }
    if old.ino != new.ino {
        return Err(BackupError::Other(
            "file inode changed (race condition), skipping file".into(),
        ));
    }
    Ok(())
}

fn open_dir(at: Option<RawFd>, path: &[u8]) -> Result<File, BackupError> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NOCTTY;
    open_entry(at, path, flags)
        .map_err(|e| BackupError::platform("dir_open", &e, Some(&basename(path))))
}

/// The directory's entries sorted by inode (borg's `scandir_inorder`).
/// Each name comes with whether the directory says it is a regular file.
fn scandir_inorder(path: &[u8], dir: &File) -> Result<Vec<(Vec<u8>, bool)>, BackupError> {
    let mut entries = fs::read_dir_fd(dir, &os_path(path))
        .map_err(|e| BackupError::platform("scandir", &e, Some(path)))?;
    entries.sort();
    Ok(entries
        .into_iter()
        .map(|(_, n, kind)| (n, kind == libc::DT_REG))
        .collect())
}

/// borg's `dir_is_tagged`: the tag names present in `path`.
fn tag_names(
    path: &[u8],
    exclude_caches: bool,
    exclude_if_present: &[std::ffi::OsString],
) -> Vec<Vec<u8>> {
    let mut tags = Vec::new();
    if exclude_caches {
        let tag = os_path(&join(path, CACHE_TAG_NAME));
        let mut buf = [0u8; 43];
        let is_cache = tag.exists()
            && File::open(&tag)
                .and_then(|mut f| {
                    use std::io::Read;
                    let mut n = 0;
                    while n < buf.len() {
                        let k = f.read(&mut buf[n..])?;
                        if k == 0 {
                            break;
                        }
                        n += k;
                    }
                    Ok(n)
                })
                .is_ok_and(|n| &buf[..n] == CACHE_TAG_CONTENTS);
        if is_cache {
            tags.push(CACHE_TAG_NAME.to_vec());
        }
    }
    for name in exclude_if_present {
        let name = name.as_bytes();
        if os_path(&join(path, name)).exists() {
            tags.push(name.to_vec());
        }
    }
    tags
}

impl Backup<'_, '_> {
    /// Skips the cache directory and a local repository (borg's `skip_inodes`).
    pub(super) fn add_skip_inodes(&mut self, loc: &Location) {
        let mut candidates = vec![crate::paths::cache_dir()];
        if loc.host.is_none() {
            candidates.push(loc.local_path());
        }
        for p in candidates {
            if let Ok(md) = std::fs::metadata(&p) {
                use std::os::unix::fs::MetadataExt;
                self.skip_inodes.insert((md.ino(), md.dev()));
            }
        }
    }

    /// Processes the input: every PATH argument in order, or what the `--content-from-command`
    /// / `--paths-from-*` options name.
    pub(super) fn walk_all(&mut self) -> Result<(), super::CommandError> {
        let opts = self.opts;
        if opts.content_from_command {
            return self.content_from_command();
        }
        if opts.paths_from_stdin {
            let stdin = std::io::stdin();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut stdin.lock(), &mut data)?;
            self.walk_path_list(&data);
            return self.fatal.take().map_or(Ok(()), Err);
        }
        if opts.paths_from_command {
            let data = run_command_output(&opts.paths)?;
            self.walk_path_list(&data.0);
            check_exit(&opts.paths, data.1)?;
            return self.fatal.take().map_or(Ok(()), Err);
        }
        for arg in &opts.paths {
            let arg = arg.as_bytes();
            self.strip_prefix = strip_prefix_of(arg);
            let result = if arg == b"-" {
                self.walk_stdin()
            } else {
                self.walk_root(arg)
            };
            match result {
                Ok(()) => {}
                Err(BackupError::Fatal(e)) => return Err(e),
                Err(e) => {
                    let shown = if arg == b"-" {
                        opts.stdin.name.as_bytes().to_vec()
                    } else {
                        normpath(arg)
                    };
                    self.warn_as(e.warning_class(), &format!("{}: {e}", show_path(&shown)));
                    if arg == b"-" {
                        self.status('E', &shown);
                    }
                }
            }
            if let Some(e) = self.fatal.take() {
                return Err(e);
            }
        }
        Ok(())
    }

    /// `--content-from-command`: the command's stdout stored as `--stdin-name`.
    fn content_from_command(&mut self) -> Result<(), super::CommandError> {
        let name = self.opts.stdin.name.clone();
        if self.sink.is_none() {
            self.status('-', name.as_bytes());
            return Ok(());
        }
        let mut child = spawn(&self.opts.paths)?;
        let Some(stdout) = child.stdout.take() else {
            return Err(super::CommandError::new(
                "Failed to execute command: no stdout",
            ));
        };
        self.status('i', name.as_bytes());
        match self.process_pipe(stdout) {
            Ok(()) => {}
            Err(BackupError::Fatal(e)) => return Err(e),
            Err(e) => {
                let _ = child.wait();
                return Err(super::CommandError::new(format!(
                    "{}: {e}",
                    show_path(name.as_bytes())
                )));
            }
        }
        let status = child.wait()?;
        check_exit(&self.opts.paths, status)
    }

    /// `--paths-from-stdin` / `--paths-from-command`: each listed path on its own, without
    /// recursing into directories.
    fn walk_path_list(&mut self, data: &[u8]) {
        let delim = self.opts.paths_delimiter.clone();
        for raw in split_bytes(data, &delim) {
            self.poll_signals();
            if self.fatal.is_some() {
                return;
            }
            self.strip_prefix = strip_prefix_of(raw);
            let path = normpath(raw);
            // borg stats these by path, so errors name the whole path.
            let st = fs::lstat(&os_path(&path))
                .map_err(|e| BackupError::platform("stat", &e, Some(&path)));
            let status = match st.and_then(|st| self.process_listed(&path, &st)) {
                Ok(s) => s,
                Err(BackupError::Fatal(e)) => {
                    self.fatal = Some(e);
                    return;
                }
                Err(e) => {
                    self.warn_as(e.warning_class(), &format!("{}: {e}", show_path(&path)));
                    Some('E')
                }
            };
            if status == Some('C') {
                self.warn_as(
                    "FileChangedWarning",
                    &format!("{}: file changed while we backed it up", show_path(&path)),
                );
            }
            if let Some(s) = status {
                self.status(s, &path);
            }
        }
    }

    /// borg's `_process_any` including directories (stored without their contents).
    fn process_listed(&mut self, path: &[u8], st: &Stat) -> Result<Option<char>, BackupError> {
        if !st.is_dir() || self.sink.is_none() {
            return self.process_any(path, st);
        }
        let dir = open_dir(None, path)?;
        let st = update_check(st, &dir)?;
        self.process_dir(path, &st, &dir)
    }

    fn walk_stdin(&mut self) -> Result<(), BackupError> {
        let name = self.opts.stdin.name.clone();
        if self.sink.is_none() {
            self.status('-', name.as_bytes());
            return Ok(());
        }
        self.status('i', name.as_bytes());
        self.process_stdin()
    }

    fn walk_root(&mut self, arg: &[u8]) -> Result<(), BackupError> {
        let path = normpath(arg);
        let parent = match path.iter().rposition(|b| *b == b'/') {
            Some(0) => b"/".to_vec(),
            Some(i) => path[..i].to_vec(),
            None => b".".to_vec(),
        };
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOCTTY;
        fs::open_noatime(&os_path(&parent), flags)
            .map_err(|e| BackupError::platform("open_root", &e, Some(&parent)))?;
        let st = match fs::lstat(&os_path(&path)) {
            Ok(st) => st,
            Err(e) => {
                let err = BackupError::platform("", &e, Some(&basename(&path)));
                self.warn_as(err.warning_class(), &format!("{}: {err}", show_path(&path)));
                return Ok(());
            }
        };
        let restrict_dev = self.opts.one_file_system.then_some(st.dev);
        self.rec_walk(&path, restrict_dev, None);
        self.skip_inodes.insert((st.ino, st.dev));
        Ok(())
    }

    /// borg's `_rec_walk` for one object; errors become warnings with status `E`. `at` is the
    /// open parent directory the walk came through (None for a PATH argument).
    fn rec_walk(&mut self, path: &[u8], restrict_dev: Option<u64>, at: Option<RawFd>) {
        self.rec_walk_entry(path, restrict_dev, at, false);
    }

    /// [`Self::rec_walk`] for a directory entry; `regular` when the directory listing says
    /// it is a regular file.
    fn rec_walk_entry(
        &mut self,
        path: &[u8],
        restrict_dev: Option<u64>,
        at: Option<RawFd>,
        regular: bool,
    ) {
        let outer = std::mem::replace(&mut self.entry_dir, at);
        self.rec_walk_here(path, restrict_dev, regular);
        self.entry_dir = outer;
    }

    fn rec_walk_here(&mut self, path: &[u8], restrict_dev: Option<u64>, regular: bool) {
        let mut recurse_excluded_dir = false;
        let walked = self.walk_one(path, restrict_dev, regular, &mut recurse_excluded_dir);
        let status = match walked {
            Ok(s) => s,
            Err(BackupError::Fatal(e)) => {
                // Repository problems end the run; remember the first one.
                if self.fatal.is_none() {
                    self.fatal = Some(e);
                }
                return;
            }
            Err(e) => {
                self.warn_as(e.warning_class(), &format!("{}: {e}", show_path(path)));
                Some('E')
            }
        };
        if status == Some('C') {
            self.warn_as(
                "FileChangedWarning",
                &format!("{}: file changed while we backed it up", show_path(path)),
            );
        }
        if !recurse_excluded_dir {
            if let Some(s) = status {
                self.status(s, path);
            }
        }
    }

    fn walk_one(
        &mut self,
        path: &[u8],
        restrict_dev: Option<u64>,
        regular: bool,
        recurse_excluded_dir: &mut bool,
    ) -> Result<Option<char>, BackupError> {
        self.poll_signals();
        if self.fatal.is_some() {
            return Ok(None);
        }
        let decision = self
            .matcher
            .as_mut()
            .map(|m| m.matches(OsStr::from_bytes(path)));
        let included = decision.is_none_or(|d| d.included != Some(false));
        let plain = !self.opts.exclude_nodump && !self.opts.read_special && self.sink.is_some();
        if regular && included && plain {
            if let Some(status) = self.walk_regular(path)? {
                return Ok(status);
            }
        }
        let at = self.entry_dir;
        let st = if decision.is_none_or(|d| d.included != Some(false)) {
            lstat_entry(at, path, "stat")?
        } else {
            self.status('x', path);
            if !decision.is_some_and(|d| d.recurse_dir) {
                return Ok(None);
            }
            *recurse_excluded_dir = true;
            let st = lstat_entry(at, path, "stat")?;
            if !st.is_dir() {
                return Ok(None);
            }
            st
        };
        if self.skip_inodes.contains(&(st.ino, st.dev)) {
            return Ok(None);
        }
        let recurse = restrict_dev.is_none_or(|d| d == st.dev);
        if self.opts.exclude_nodump
            && crate::platform::flags::get_flags(&os_path(path), st.mode, None) & UF_NODUMP != 0
        {
            self.status('x', path);
            return Ok(None);
        }
        if archived_path(path, self.strip_prefix.as_deref()).is_none() {
            // a level left of the slashdot: not archived, but walked through
            if st.is_dir() {
                self.walk_dir(path, &st, restrict_dev, recurse, true)?;
            }
            return Ok(Some('x'));
        }
        if !st.is_dir() {
            return self.process_any(path, &st);
        }
        self.walk_dir(path, &st, restrict_dev, recurse, *recurse_excluded_dir)
    }

    /// A directory entry listed as a regular file: opened straight away and `fstat`ed (the
    /// `lstat` before it would tell nothing more). `None` when that did not work out (gone,
    /// unreadable, no longer a regular file): the caller then takes the usual way, which
    /// reports any error as borg does.
    fn walk_regular(&mut self, path: &[u8]) -> Result<Option<Option<char>>, BackupError> {
        let Ok(file) = open_entry(self.entry_dir, path, FLAGS_NORMAL) else {
            return Ok(None);
        };
        let Ok(st) = fs::fstat(file.as_raw_fd()) else {
            return Ok(None);
        };
        if !st.is_file() {
            return Ok(None);
        }
        if self.skip_inodes.contains(&(st.ino, st.dev)) {
            return Ok(Some(None));
        }
        self.process_opened_file(path, &st, file).map(Some)
    }

    fn walk_dir(
        &mut self,
        path: &[u8],
        st: &Stat,
        restrict_dev: Option<u64>,
        recurse: bool,
        excluded: bool,
    ) -> Result<Option<char>, BackupError> {
        let dir = open_dir(self.entry_dir, path)?;
        let st = update_check(st, &dir)?;
        let dry = self.sink.is_none();
        let dirfd = Some(dir.as_raw_fd());
        if recurse {
            let opts = self.opts;
            let tags = tag_names(path, opts.exclude_caches, &opts.exclude_if_present);
            if !tags.is_empty() {
                if !excluded {
                    if opts.keep_exclude_tags {
                        if !dry {
                            self.process_dir(path, &st, &dir)?;
                        }
                        for tag in tags {
                            self.rec_walk(&join(path, &tag), restrict_dev, dirfd);
                        }
                    }
                    self.status('x', path);
                }
                return Ok(None);
            }
        }
        let mut status = None;
        if !excluded {
            status = if dry {
                Some('-')
            } else {
                self.process_dir(path, &st, &dir)?
            };
        }
        if recurse {
            let names = scandir_inorder(path, &dir)?;
            for (name, regular) in names {
                self.rec_walk_entry(&normpath(&join(path, &name)), restrict_dev, dirfd, regular);
            }
        }
        Ok(status)
    }

    /// borg's `_process_any` for everything but directories.
    fn process_any(&mut self, path: &[u8], st: &Stat) -> Result<Option<char>, BackupError> {
        if self.sink.is_none() {
            return Ok(Some('-'));
        }
        let special = self.opts.read_special;
        match st.file_type() {
            libc::S_IFREG => self.process_file(path, st, FLAGS_NORMAL),
            libc::S_IFLNK => {
                if special {
                    if let Some(target) = stat_follow(path).filter(is_special) {
                        return self.process_file(path, &target, FLAGS_SPECIAL_FOLLOW);
                    }
                }
                self.process_symlink(path, st)
            }
            libc::S_IFIFO if special => self.process_file(path, st, FLAGS_SPECIAL),
            libc::S_IFCHR | libc::S_IFBLK if special => self.process_file(path, st, FLAGS_SPECIAL),
            libc::S_IFIFO => self.process_fifo(path, st),
            libc::S_IFCHR => self.process_dev(path, st, 'c'),
            libc::S_IFBLK => self.process_dev(path, st, 'b'),
            libc::S_IFSOCK => Ok(None),
            _ => {
                self.warn(&format!("Unknown file type: {}", show_path(path)));
                Ok(None)
            }
        }
    }

    /// borg's `create_helper`: a new item; the hardlink state (status `h` and `source` for
    /// an inode seen before).
    pub(super) fn create_helper(
        &mut self,
        path: &[u8],
        st: &Stat,
        status: Option<char>,
        hardlinkable: bool,
    ) -> (Item, Option<char>, bool, bool) {
        let archived = archived_path(path, self.strip_prefix.as_deref());
        let mut item = Item {
            path: make_path_safe(archived.as_deref().unwrap_or(path)),
            ..Item::default()
        };
        let hardlinked = hardlinkable && st.nlink > 1;
        let mut status = status;
        let mut master = false;
        if hardlinked {
            match self
                .sink
                .as_ref()
                .and_then(|s| s.hard_links.get(&(st.ino, st.dev)))
            {
                Some(source) => {
                    item.source = Some(source.clone());
                    status = Some('h');
                }
                None => master = true,
            }
        }
        (item, status, hardlinked, master)
    }

    /// Adds the finished item; remembers a hardlink master.
    pub(super) fn finish_item(
        &mut self,
        item: Item,
        st: &Stat,
        master: bool,
    ) -> Result<(), BackupError> {
        let progress = self.opts.progress;
        let deferring = self.deferring();
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        if master {
            sink.hard_links.insert((st.ino, st.dev), item.path.clone());
        }
        if deferring {
            self.emit(super::pipeline::Deferred::Item(Box::new(item)));
            return Ok(());
        }
        sink.add_item(&item)?;
        let stats = sink.stats;
        if progress {
            self.reporter.item_added(super::content_size(&item));
            self.reporter.progress(&stats, Some(&item.path));
        }
        Ok(())
    }

    fn ext_attrs(
        &mut self,
        item: &mut Item,
        path: &[u8],
        st: &Stat,
        fd: Option<std::os::fd::RawFd>,
    ) -> Result<(), BackupError> {
        let notes = meta::ext_attrs(item, &os_path(path), st, fd, &self.opts.meta)?;
        for n in notes {
            self.note(&n);
        }
        Ok(())
    }

    fn process_dir(
        &mut self,
        path: &[u8],
        st: &Stat,
        dir: &File,
    ) -> Result<Option<char>, BackupError> {
        let (mut item, status, _, _) = self.create_helper(path, st, Some('d'), false);
        meta::simple_attrs(&mut item, st, &self.opts.meta);
        self.ext_attrs(&mut item, path, st, Some(dir.as_raw_fd()))?;
        self.finish_item(item, st, false)?;
        Ok(status)
    }

    fn process_fifo(&mut self, path: &[u8], st: &Stat) -> Result<Option<char>, BackupError> {
        let (mut item, status, hardlinked, master) = self.create_helper(path, st, Some('f'), true);
        let f = open_entry(self.entry_dir, path, FLAGS_NORMAL)
            .map_err(|e| BackupError::platform("open", &e, Some(&basename(path))))?;
        let st = update_check(st, &f)?;
        if !hardlinked || master {
            item.hardlink_master = Some(hardlinked);
        }
        meta::simple_attrs(&mut item, &st, &self.opts.meta);
        self.ext_attrs(&mut item, path, &st, Some(f.as_raw_fd()))?;
        self.finish_item(item, &st, master)?;
        Ok(status)
    }

    fn process_dev(
        &mut self,
        path: &[u8],
        st: &Stat,
        kind: char,
    ) -> Result<Option<char>, BackupError> {
        let (mut item, status, hardlinked, master) = self.create_helper(path, st, Some(kind), true);
        let new = lstat_entry(self.entry_dir, path, "stat")?;
        check_same(st, &new)?;
        item.rdev = Some(new.rdev);
        if !hardlinked || master {
            item.hardlink_master = Some(hardlinked);
        }
        meta::simple_attrs(&mut item, &new, &self.opts.meta);
        self.ext_attrs(&mut item, path, &new, None)?;
        self.finish_item(item, &new, master)?;
        Ok(status)
    }

    fn process_symlink(&mut self, path: &[u8], st: &Stat) -> Result<Option<char>, BackupError> {
        let (mut item, status, _, _) = self.create_helper(path, st, Some('s'), false);
        let target = match self.entry_dir {
            Some(dirfd) => fs::readlink_at(dirfd, &basename(path), &os_path(path)),
            None => fs::readlink(&os_path(path)),
        }
        .map_err(|e| BackupError::platform("readlink", &e, Some(&basename(path))))?;
        item.source = Some(target);
        meta::simple_attrs(&mut item, st, &self.opts.meta);
        self.ext_attrs(&mut item, path, st, None)?;
        self.finish_item(item, st, false)?;
        Ok(status)
    }
}

/// Splits `data` at `delim`; empty pieces are skipped.
fn split_bytes<'d>(data: &'d [u8], delim: &[u8]) -> Vec<&'d [u8]> {
    if delim.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(delim.len()).position(|w| w == delim) {
        out.push(&rest[..i]);
        rest = &rest[i + delim.len()..];
    }
    out.push(rest);
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Starts `argv` with its stdout piped (borg's "Failed to execute command" on failure).
fn spawn(argv: &[std::ffi::OsString]) -> Result<std::process::Child, super::CommandError> {
    let Some((cmd, args)) = argv.split_first() else {
        return Err(super::CommandError::new("No command given."));
    };
    let mut command = std::process::Command::new(cmd);
    command.args(args).stdout(std::process::Stdio::piped());
    // Like borg (`preexec_fn=ignore_sigint`): a Ctrl-C is for hoard, which checkpoints and
    // stops; the command must not die of it first.
    // SAFETY: only calls signal(2), which is async-signal-safe, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    command.spawn().map_err(|e| {
        let err = BackupError::io("", &e, Some(cmd.as_bytes()));
        super::CommandError::new(format!("Failed to execute command: {err}"))
    })
}

/// Runs `argv` and collects its stdout.
fn run_command_output(
    argv: &[std::ffi::OsString],
) -> Result<(Vec<u8>, std::process::ExitStatus), super::CommandError> {
    let child = spawn(argv)?;
    let out = child.wait_with_output()?;
    Ok((out.stdout, out.status))
}

/// borg's "Command 'x' exited with status N" error.
fn check_exit(
    argv: &[std::ffi::OsString],
    status: std::process::ExitStatus,
) -> Result<(), super::CommandError> {
    if status.success() {
        return Ok(());
    }
    let name = argv.first().map(|a| a.as_bytes()).unwrap_or_default();
    let code = status.code().unwrap_or(-1);
    Err(super::CommandError::new(format!(
        "Command {} exited with status {code}",
        super::error::py_repr(name)
    )))
}

fn is_special(st: &Stat) -> bool {
    matches!(
        st.file_type(),
        libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO
    )
}

/// `stat` following symlinks, as a [`Stat`].
fn stat_follow(path: &[u8]) -> Option<Stat> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(os_path(path)).ok()?;
    Some(Stat {
        dev: md.dev(),
        ino: md.ino(),
        mode: md.mode(),
        nlink: md.nlink(),
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev(),
        size: md.size() as i64,
        blocks: md.blocks() as i64,
        atime_ns: md.atime() * 1_000_000_000 + md.atime_nsec(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
    })
}
