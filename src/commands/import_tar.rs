//! `import-tar ARCHIVE TARFILE`: a new archive from a tar stream, as borg 1.4.5's
//! `_import_tar` with its `TarfileObjectProcessors`.
//!
//! [`reader`] reads the stream with Python `tarfile`'s rules; this module turns each member
//! into an item the way borg does and hands it to `create`'s archive writer
//! ([`create::run_source`]), so chunking, the cache, checkpoints, statistics and the item
//! stream are shared with `create`. Beyond borg 1.4.5, which keeps only the header fields
//! and a pax `mtime`, the pax records are read with borg 2's rules ([`pax_meta`]): atime,
//! ctime, xattrs and ACLs, or the whole item of a BORG tarball (`export-tar --tar-format
//! BORG`).

pub mod pax_meta;
pub mod reader;

use std::io::Read;

use crate::archive::item::{Item, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use crate::location::Location;

use super::create::{self, CreateOptions, CreateOutcome, Feed, Reporter};
use super::{CommandError, Result};
use reader::{Member, MemberData, TarReader};

/// `os.makedev` (glibc's encoding).
fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0000_0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0x0000_00ff)
}

/// A numeric header field as an item field; out-of-range values are refused.
fn field<T: TryFrom<i128>>(m: &Member, what: &str, v: i128) -> Result<T> {
    T::try_from(v).map_err(|_| {
        CommandError::new(format!(
            "{}: {what} {v} out of range",
            create::remove_surrogates(&m.name)
        ))
    })
}

/// borg's `create_helper`: the item for a member, its path normalized like `create`'s
/// (`./dir/file` becomes `dir/file`, leading `/` and `../` are removed), with what its pax
/// records add (or the item of its BORG records).
fn base_item(m: &Member, kind: u32) -> Result<Item> {
    if let Some(item) = pax_meta::borg_item(m, kind)? {
        return Ok(item);
    }
    let path = create::make_path_safe(&create::normpath(&m.name));
    let mut item = Item {
        path,
        // Python: tarinfo.mode | type; only the low 32 bits can be stored
        mode: (m.mode as u32) | kind,
        uid: field(m, "uid", m.uid)?,
        gid: field(m, "gid", m.gid)?,
        user: Some(m.uname.clone()).filter(|u| !u.is_empty()),
        group: Some(m.gname.clone()).filter(|g| !g.is_empty()),
        mtime: m.mtime.safe_ns(),
        ..Item::default()
    };
    pax_meta::apply_records(&mut item, m);
    Ok(item)
}

/// Imports the members of `tar` through `feed` (borg's loop in `_import_tar`).
pub fn import_members<R: Read>(tar: &mut TarReader<R>, feed: &mut Feed<'_, '_, '_>) -> Result<()> {
    let read_error = |e: reader::TarError| CommandError::new(format!("tar: {e}"));
    while let Some(m) = tar.next_member().map_err(read_error)? {
        let status = match m.typeflag {
            _ if m.is_regular() => {
                let mut item = base_item(&m, S_IFREG)?;
                feed.status('A', &item.path);
                feed.add_file(&mut item, MemberData(tar))?;
                // borg 1.4.5 counts every regular member twice (`archive.stats.nfiles` and
                // the processors' statistics, which are added on top)
                feed.count_file();
                None
            }
            b'5' => {
                feed.add_item(&base_item(&m, S_IFDIR)?)?;
                Some('d')
            }
            b'2' | b'1' => {
                let (kind, letter) = if m.typeflag == b'2' {
                    (S_IFLNK, 's')
                } else {
                    (S_IFREG, 'h')
                };
                let mut item = base_item(&m, kind)?;
                item.source = Some(m.linkname.clone());
                feed.add_item(&item)?;
                Some(letter)
            }
            b'4' | b'3' => {
                let (kind, letter) = if m.typeflag == b'4' {
                    (S_IFBLK, 'b')
                } else {
                    (S_IFCHR, 'c')
                };
                let mut item = base_item(&m, kind)?;
                let major: u64 = field(&m, "devmajor", m.devmajor)?;
                let minor: u64 = field(&m, "devminor", m.devminor)?;
                item.rdev = Some(makedev(major, minor));
                feed.add_item(&item)?;
                Some(letter)
            }
            b'6' => {
                feed.add_item(&base_item(&m, S_IFIFO)?)?;
                Some('f')
            }
            t => {
                feed.warn(&format!(
                    "{}: Unsupported tarinfo type {}",
                    create::remove_surrogates(&m.name),
                    crate::python::bytes_repr(&[t])
                ));
                Some('E')
            }
        };
        if let Some(s) = status {
            // borg prints the member name as in the tar here, not the normalized path
            feed.status(s, &m.name);
        }
    }
    Ok(())
}

/// Runs `import-tar`: reads the (already decompressed) tar stream `input` into the new
/// archive named in `opts`.
pub fn run<R: Read>(
    loc: &Location,
    opts: &CreateOptions,
    input: R,
    ignore_zeros: bool,
    reporter: &mut dyn Reporter,
    confirm: crate::security::Confirm<'_>,
) -> Result<CreateOutcome> {
    let mut tar = TarReader::new(input, ignore_zeros);
    let mut source = |feed: &mut Feed<'_, '_, '_>| import_members(&mut tar, feed);
    create::run_source(loc, opts, None, reporter, confirm, Some(&mut source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makedev_like_glibc() {
        assert_eq!(makedev(7, 200), 0x07c8);
        assert_eq!(makedev(8, 1), 0x0801);
    }
}
