//! borg 1.4's exit codes. Legacy (the default, as in borg): 0 success, 1 warning, 2 error,
//! 128 + N for signal N. With `BORG_EXIT_CODES=modern` each error and warning class has its
//! own code (borg 1.4.5's `exit_mcode` of the class): errors 3–99, warnings 100–127.
//!
//! A hoard error carries borg's msgid, which is borg's class name (`__qualname__`), so the
//! modern code is looked up by msgid here, in one table, at the CLI boundary.

/// borg's `EXIT_SUCCESS`.
pub const SUCCESS: i32 = 0;
/// borg's `EXIT_WARNING` (generic warning).
pub const WARNING: i32 = 1;
/// borg's `EXIT_ERROR` (generic error).
pub const ERROR: i32 = 2;
/// borg's `EXIT_ERROR_BASE`: modern error codes start here.
pub const ERROR_BASE: i32 = 3;
/// borg's `EXIT_WARNING_BASE`: modern warning codes start here.
pub const WARNING_BASE: i32 = 100;
/// borg's `EXIT_SIGNAL_BASE`: 128 + signal number.
pub const SIGNAL_BASE: i32 = 128;

/// Which exit codes to use (borg's `BORG_EXIT_CODES`: `modern`, anything else is legacy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// 0/1/2 and 128 + N.
    #[default]
    Legacy,
    /// Class-specific codes.
    Modern,
}

impl Mode {
    /// The mode a value of `BORG_EXIT_CODES` selects (unset or unknown: legacy).
    pub fn from_env_value(value: Option<&str>) -> Mode {
        if value == Some("modern") {
            Mode::Modern
        } else {
            Mode::Legacy
        }
    }
}

/// borg 1.4.5's `exit_mcode` of each error class, by class name (the msgid hoard logs).
const ERROR_CODES: &[(&str, i32)] = &[
    ("Error", 2),
    ("ErrorWithTraceback", 2),
    ("RTError", 2),
    ("CancelledByUser", 3),
    ("CommandError", 4),
    ("PlaceholderError", 5),
    ("InvalidPlaceholder", 6),
    ("Repository.AlreadyExists", 10),
    ("Repository.AtticRepository", 11),
    ("Repository.CheckNeeded", 12),
    ("Repository.DoesNotExist", 13),
    ("Repository.InsufficientFreeSpaceError", 14),
    ("Repository.InvalidRepository", 15),
    ("Repository.InvalidRepositoryConfig", 16),
    ("Repository.ObjectNotFound", 17),
    ("Repository.ParentPathDoesNotExist", 18),
    ("Repository.PathAlreadyExists", 19),
    ("Repository.StorageQuotaExceeded", 20),
    ("Repository.PathPermissionDenied", 21),
    ("MandatoryFeatureUnsupported", 25),
    ("NoManifestError", 26),
    ("UnsupportedManifestError", 27),
    ("Archive.AlreadyExists", 30),
    ("Archive.DoesNotExist", 31),
    ("Archive.IncompatibleFilesystemEncodingError", 32),
    ("KeyfileInvalidError", 40),
    ("KeyfileMismatchError", 41),
    ("KeyfileNotFoundError", 42),
    ("NotABorgKeyFile", 43),
    ("RepoKeyNotFoundError", 44),
    ("RepoIdMismatch", 45),
    ("UnencryptedRepo", 46),
    ("UnknownKeyType", 47),
    ("UnsupportedPayloadError", 48),
    ("NoPassphraseFailure", 50),
    ("PasscommandFailure", 51),
    ("PassphraseWrong", 52),
    ("PasswordRetriesExceeded", 53),
    ("Cache.CacheInitAbortedError", 60),
    ("Cache.EncryptionMethodMismatch", 61),
    ("Cache.RepositoryAccessAborted", 62),
    ("Cache.RepositoryIDNotUnique", 63),
    ("Cache.RepositoryReplay", 64),
    ("LockError", 70),
    ("LockErrorT", 71),
    ("LockFailed", 72),
    ("LockTimeout", 73),
    ("NotLocked", 74),
    ("NotMyLock", 75),
    ("ConnectionClosed", 80),
    ("ConnectionClosedWithHint", 81),
    ("InvalidRPCMethod", 82),
    ("PathNotAllowed", 83),
    ("RemoteRepository.RPCServerOutdated", 84),
    ("UnexpectedRPCDataFormatFromClient", 85),
    ("UnexpectedRPCDataFormatFromServer", 86),
    ("ConnectionBrokenWithHint", 87),
    ("IntegrityError", 90),
    ("FileIntegrityError", 91),
    ("DecompressionError", 92),
    ("ArchiveTAMInvalid", 95),
    ("ArchiveTAMRequiredError", 96),
    ("TAMInvalid", 97),
    ("TAMRequiredError", 98),
    ("TAMUnsupportedSuiteError", 99),
];

/// borg 1.4.5's `exit_mcode` of each warning class.
const WARNING_CODES: &[(&str, i32)] = &[
    ("BorgWarning", 1),
    ("FileChangedWarning", 100),
    ("IncludePatternNeverMatchedWarning", 101),
    ("BackupError", 102),
    ("BackupRaceConditionError", 103),
    ("BackupOSError", 104),
    ("BackupPermissionError", 105),
    ("BackupIOError", 106),
    ("BackupFileNotFoundError", 107),
    ("BackupSymlinkParentError", 108),
    ("BackupPathTraversalError", 109),
    ("BackupHardlinkSourceError", 110),
];

/// The modern code of an error with borg msgid `msgid` (2, borg's `Error`, when the class is
/// unknown or the error has none).
/// A remote server names `Repository`'s errors without the class prefix
/// (`StorageQuotaExceeded`); borg's client raises them as `Repository.…`.
pub fn error_code(msgid: Option<&str>) -> i32 {
    let Some(m) = msgid else {
        return ERROR;
    };
    let find = |name: &str| {
        ERROR_CODES
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, c)| *c)
    };
    find(m)
        .or_else(|| find(&format!("Repository.{m}")))
        .unwrap_or(ERROR)
}

/// The modern code of a warning class (1 when unknown).
pub fn warning_code(class: &str) -> i32 {
    WARNING_CODES
        .iter()
        .find(|(k, _)| *k == class)
        .map_or(WARNING, |(_, c)| *c)
}

/// What kind of outcome a code is (borg's `classify_ec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// 0
    Success,
    /// 1 or 100–127
    Warning,
    /// 2 or 3–99
    Error,
    /// 128–255
    Signal,
}

/// borg's `classify_ec` (codes outside every range count as errors).
pub fn classify(code: i32) -> Class {
    match code {
        SUCCESS => Class::Success,
        WARNING | WARNING_BASE..=127 => Class::Warning,
        SIGNAL_BASE..=255 => Class::Signal,
        _ => Class::Error,
    }
}

/// borg's `max_ec`: the more severe of two codes (signal > error > warning > success; the
/// first wins a tie).
pub fn max_code(a: i32, b: i32) -> i32 {
    if classify(b) > classify(a) {
        b
    } else {
        a
    }
}

/// borg's `get_ec` for the warnings of one run: no warning is success, one kind of warning
/// its own code, several kinds the generic warning 1.
pub fn warnings_code(codes: &[i32]) -> i32 {
    let mut kinds: Vec<i32> = codes.to_vec();
    kinds.sort_unstable();
    kinds.dedup();
    match kinds.as_slice() {
        [] => SUCCESS,
        [one] => *one,
        _ => WARNING,
    }
}

/// A code hoard chose from a borg class in `mode`: the modern code as it is, or its legacy
/// class (1 for every warning, 2 for every error; signals keep 128 + N). Codes that are not
/// hoard's choice (`with-lock` passes its command's on) are not given to this.
pub fn for_mode(code: i32, mode: Mode) -> i32 {
    match (mode, classify(code)) {
        (Mode::Modern, _) => code,
        (Mode::Legacy, Class::Warning) => WARNING,
        (Mode::Legacy, Class::Error) => ERROR,
        (Mode::Legacy, _) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_borg_classes() {
        assert_eq!(error_code(Some("Repository.DoesNotExist")), 13);
        assert_eq!(error_code(Some("Repository.InvalidRepository")), 15);
        assert_eq!(error_code(Some("Archive.AlreadyExists")), 30);
        assert_eq!(error_code(Some("PassphraseWrong")), 52);
        assert_eq!(error_code(Some("LockTimeout")), 73);
        assert_eq!(error_code(Some("SomethingElse")), 2);
        assert_eq!(error_code(Some("StorageQuotaExceeded")), 20);
        assert_eq!(error_code(None), 2);
        assert_eq!(warning_code("FileChangedWarning"), 100);
        assert_eq!(warning_code("BackupPermissionError"), 105);
        assert_eq!(warning_code("BackupFileNotFoundError"), 107);
        assert_eq!(warning_code("BorgWarning"), 1);
    }

    #[test]
    fn several_warnings_follow_borg_rules() {
        assert_eq!(warnings_code(&[]), 0);
        assert_eq!(warnings_code(&[105, 105]), 105);
        assert_eq!(warnings_code(&[105, 107]), 1);
        assert_eq!(max_code(105, 13), 13);
        assert_eq!(max_code(13, 143), 143);
        assert_eq!(max_code(0, 105), 105);
        assert_eq!(for_mode(105, Mode::Legacy), 1);
        assert_eq!(for_mode(13, Mode::Legacy), 2);
        assert_eq!(for_mode(143, Mode::Legacy), 143);
        assert_eq!(for_mode(13, Mode::Modern), 13);
        assert_eq!(Mode::from_env_value(Some("classic")), Mode::Legacy);
    }
}
