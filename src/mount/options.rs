//! borg's `-o` handling (`FuseOperations.mount.pop_option`): the option list starts as
//! `fsname=borgfs,ro,default_permissions`, the user's comma-separated options are appended, the
//! borg-specific ones are popped (first occurrence wins), and what remains goes to FUSE.

use super::MountError;

/// The parsed `-o` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// `allow_damaged_files`: open files whose chunks were replaced by `check --repair`.
    pub allow_damaged_files: bool,
    /// `versions`: merge all archives, one directory per file holding its versions.
    pub versions: bool,
    /// `uid=N`: report this owner for every inode.
    pub uid: Option<u32>,
    /// `gid=N`: report this group for every inode.
    pub gid: Option<u32>,
    /// `umask=M` (octal): bits cleared from every mode.
    pub umask: u32,
    /// `nonempty` (hoard): allow a mountpoint that has entries.
    pub nonempty: bool,
    /// What goes to the kernel / fusermount, in order (`fsname=borgfs`, `ro`,
    /// `default_permissions` unless `ignore_permissions`, then the user's rest).
    pub fuse: Vec<String>,
}

enum Want {
    Bool,
    Int,
    Octal,
}

enum Popped {
    Absent,
    Present,
    Bool(bool),
    Int(u64),
}

fn pop_option(options: &mut Vec<String>, key: &str, want: Want) -> Result<Popped, MountError> {
    let prefix = format!("{key}=");
    let Some(idx) = options
        .iter()
        .position(|o| o == key || o.starts_with(&prefix))
    else {
        return Ok(Popped::Absent);
    };
    let option = options.remove(idx);
    let Some(value) = option.strip_prefix(&prefix) else {
        return Ok(Popped::Present);
    };
    let bad = || MountError::Options(format!("unsupported value in option: {option}"));
    match want {
        Want::Bool => match value.to_lowercase().as_str() {
            "y" | "yes" | "true" | "1" => Ok(Popped::Bool(true)),
            "n" | "no" | "false" | "0" => Ok(Popped::Bool(false)),
            _ => Err(bad()),
        },
        Want::Int => crate::python::int_base0(value)
            .and_then(|v| u64::try_from(v).ok())
            .map(Popped::Int)
            .ok_or_else(bad),
        Want::Octal => u64::from_str_radix(value.trim(), 8)
            .ok()
            .map(Popped::Int)
            .ok_or_else(bad),
    }
}

fn flag(p: Popped) -> bool {
    match p {
        Popped::Present => true,
        Popped::Bool(b) => b,
        Popped::Absent | Popped::Int(_) => false,
    }
}

fn id_value(p: Popped, key: &str) -> Result<Option<u32>, MountError> {
    match p {
        Popped::Int(v) => u32::try_from(v)
            .map(Some)
            .map_err(|_| MountError::Options(format!("unsupported value in option: {key}={v}"))),
        Popped::Absent => Ok(None),
        // borg: `uid` without a value yields its "present" default, None
        Popped::Present | Popped::Bool(_) => Ok(None),
    }
}

impl MountOptions {
    /// Parses the `-o` value (None when not given).
    pub fn parse(text: Option<&str>) -> Result<MountOptions, MountError> {
        let mut options: Vec<String> = vec![
            "fsname=borgfs".into(),
            "ro".into(),
            "default_permissions".into(),
        ];
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            options.extend(t.split(',').map(str::to_string));
        }
        if flag(pop_option(&mut options, "ignore_permissions", Want::Bool)?) {
            pop_option(&mut options, "default_permissions", Want::Bool)?;
        }
        let allow_damaged_files =
            flag(pop_option(&mut options, "allow_damaged_files", Want::Bool)?);
        let versions = flag(pop_option(&mut options, "versions", Want::Bool)?);
        let uid = id_value(pop_option(&mut options, "uid", Want::Int)?, "uid")?;
        let gid = id_value(pop_option(&mut options, "gid", Want::Int)?, "gid")?;
        let umask = match pop_option(&mut options, "umask", Want::Octal)? {
            Popped::Int(v) => (v & 0o7777) as u32,
            _ => 0,
        };
        let nonempty = flag(pop_option(&mut options, "nonempty", Want::Bool)?);
        options.retain(|o| !o.is_empty());
        Ok(MountOptions {
            allow_damaged_files,
            versions,
            uid,
            gid,
            umask,
            nonempty,
            fuse: options,
        })
    }

    /// The options for the `fuser` crate, and whether `allow_other` / `allow_root` was asked.
    pub fn fuser_config(&self) -> fuser::Config {
        let mut config = fuser::Config::default();
        for o in &self.fuse {
            let opt = match o.as_str() {
                "ro" => fuser::MountOption::RO,
                "rw" => fuser::MountOption::RW,
                "default_permissions" => fuser::MountOption::DefaultPermissions,
                "allow_other" => {
                    config.acl = fuser::SessionACL::All;
                    continue;
                }
                "allow_root" => {
                    config.acl = fuser::SessionACL::RootAndOwner;
                    continue;
                }
                "auto_unmount" => fuser::MountOption::AutoUnmount,
                "dev" => fuser::MountOption::Dev,
                "nodev" => fuser::MountOption::NoDev,
                "suid" => fuser::MountOption::Suid,
                "nosuid" => fuser::MountOption::NoSuid,
                "exec" => fuser::MountOption::Exec,
                "noexec" => fuser::MountOption::NoExec,
                "atime" => fuser::MountOption::Atime,
                "noatime" => fuser::MountOption::NoAtime,
                x => match x.strip_prefix("fsname=") {
                    Some(name) => fuser::MountOption::FSName(name.to_string()),
                    None => match x.strip_prefix("subtype=") {
                        Some(s) => fuser::MountOption::Subtype(s.to_string()),
                        None => fuser::MountOption::CUSTOM(x.to_string()),
                    },
                },
            };
            config.mount_options.push(opt);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_borgs() {
        let o = MountOptions::parse(None).unwrap();
        assert_eq!(o.fuse, ["fsname=borgfs", "ro", "default_permissions"]);
        assert!(!o.versions && !o.allow_damaged_files);
        assert_eq!((o.uid, o.gid, o.umask), (None, None, 0));
    }

    #[test]
    fn borg_options_are_popped_and_the_rest_passed_on() {
        let o = MountOptions::parse(Some(
            "versions,allow_damaged_files,uid=1000,gid=0x64,umask=0222,allow_other",
        ))
        .unwrap();
        assert!(o.versions && o.allow_damaged_files);
        assert_eq!((o.uid, o.gid, o.umask), (Some(1000), Some(100), 0o222));
        assert_eq!(
            o.fuse,
            ["fsname=borgfs", "ro", "default_permissions", "allow_other"]
        );
        assert_eq!(o.fuser_config().acl, fuser::SessionACL::All);
    }

    #[test]
    fn ignore_permissions_drops_default_permissions() {
        let o = MountOptions::parse(Some("ignore_permissions")).unwrap();
        assert_eq!(o.fuse, ["fsname=borgfs", "ro"]);
        let o = MountOptions::parse(Some("ignore_permissions=no")).unwrap();
        assert_eq!(o.fuse, ["fsname=borgfs", "ro", "default_permissions"]);
    }

    #[test]
    fn bad_values_are_reported_like_borg() {
        let e = MountOptions::parse(Some("versions=maybe")).unwrap_err();
        assert_eq!(e.to_string(), "unsupported value in option: versions=maybe");
        let e = MountOptions::parse(Some("uid=010")).unwrap_err();
        assert_eq!(e.to_string(), "unsupported value in option: uid=010");
        let e = MountOptions::parse(Some("umask=9")).unwrap_err();
        assert_eq!(e.to_string(), "unsupported value in option: umask=9");
    }
}
