//! Archive selection as borg 1.2's `Manifest.archives.list` / `list_considering` does it:
//! `--glob-archives` (anchored shell glob) or `-P/--prefix`, hiding `.checkpoint` archives
//! unless asked, a stable sort by the `--sort-by` keys, then `--first N` or `--last N`.
//! Reused by every command that works on several archives (list, info, delete, prune, check).

use crate::archive::manifest::parse_timestamp;
use crate::archive::Manifest;

use crate::patterns::{translate_shell, PatternError};

use super::common::{CommandError, Result};

/// One archive as the manifest lists it (borg's `ArchiveInfo(name, id, ts)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// The archive name, raw bytes.
    pub name: Vec<u8>,
    /// The archive metadata object's id.
    pub id: [u8; 32],
    /// The start time as stored (UTC `%Y-%m-%dT%H:%M:%S.%f`).
    pub time: String,
}

impl ArchiveInfo {
    /// The name as text (lossy for undecodable bytes).
    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// The start time as a UTC instant (the epoch if unparseable).
    pub fn ts(&self) -> chrono::DateTime<chrono::Utc> {
        parse_timestamp(&self.time).unwrap_or_default()
    }
}

/// A `--sort-by` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `timestamp`: the start time.
    Timestamp,
    /// `name`
    Name,
    /// `id`
    Id,
}

/// Parses borg's comma-separated `--sort-by` value.
pub fn parse_sort_by(text: &str) -> Result<Vec<SortKey>> {
    text.split(',')
        .map(|t| match t {
            "timestamp" => Ok(SortKey::Timestamp),
            "name" => Ok(SortKey::Name),
            "id" => Ok(SortKey::Id),
            _ => Err(CommandError::new(format!(
                "argument --sort-by: invalid SortBySpec value: '{text}'"
            ))),
        })
        .collect()
}

/// The selection options of a command.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `-P/--prefix`.
    pub prefix: Option<String>,
    /// `-a/--glob-archives`.
    pub glob: Option<String>,
    /// `--sort-by`, already parsed.
    pub sort_by: Vec<SortKey>,
    /// `--first N` (0 = no limit, as in borg).
    pub first: Option<usize>,
    /// `--last N` (0 = no limit, as in borg).
    pub last: Option<usize>,
    /// `--consider-checkpoints`.
    pub consider_checkpoints: bool,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            prefix: None,
            glob: None,
            sort_by: vec![SortKey::Timestamp],
            first: None,
            last: None,
            consider_checkpoints: false,
        }
    }
}

impl Selection {
    /// Builds a selection from the raw options, with borg's errors for combinations argparse
    /// refuses (`-P` with `-a`, `--first` with `--last`) and for bad sort keys.
    pub fn new(
        prefix: Option<String>,
        glob: Option<String>,
        sort_by: &str,
        first: Option<usize>,
        last: Option<usize>,
        consider_checkpoints: bool,
    ) -> Result<Selection> {
        if prefix.is_some() && glob.is_some() {
            return Err(CommandError::new(
                "argument -a/--glob-archives: not allowed with argument -P/--prefix",
            ));
        }
        if first.is_some() && last.is_some() {
            return Err(CommandError::new(
                "argument --last: not allowed with argument --first",
            ));
        }
        for (opt, v) in [("--first", first), ("--last", last)] {
            if v == Some(0) {
                return Err(CommandError::new(format!(
                    "argument {opt}: A positive integer is required: 0"
                )));
            }
        }
        Ok(Selection {
            prefix,
            glob,
            sort_by: parse_sort_by(sort_by)?,
            first,
            last,
            consider_checkpoints,
        })
    }

    /// True if any of `--first`, `--last`, `-P`, `-a` is given (borg's "archive filter
    /// specified").
    pub fn filters(&self) -> bool {
        self.first.unwrap_or(0) > 0
            || self.last.unwrap_or(0) > 0
            || self.prefix.is_some()
            || self.glob.as_deref().is_some_and(|g| !g.is_empty())
    }

    /// The effective glob: `--prefix P` means `P*`.
    pub fn effective_glob(&self) -> Option<String> {
        match &self.prefix {
            Some(p) => Some(format!("{p}*")),
            None => self.glob.clone(),
        }
    }
}

/// Lists the manifest's archives according to `sel` (borg's `Archives.list`).
pub fn select_archives(manifest: &Manifest, sel: &Selection) -> Vec<ArchiveInfo> {
    // A glob borg's `re.compile` refuses selects nothing here.
    let glob = ArchiveGlob::new(sel.effective_glob().as_deref()).ok();
    // The manifest map is ordered by name bytes, the order borg loads it in.
    let mut archives: Vec<ArchiveInfo> = manifest
        .archives
        .iter()
        .filter(|(name, _)| {
            glob.as_ref()
                .is_some_and(|g| g.is_match(&String::from_utf8_lossy(name)))
        })
        .filter(|(name, _)| sel.consider_checkpoints || !contains(name, b".checkpoint"))
        .map(|(name, r)| ArchiveInfo {
            name: name.clone(),
            id: r.id,
            time: r.time.clone(),
        })
        .collect();
    for key in sel.sort_by.iter().rev() {
        match key {
            SortKey::Timestamp => archives.sort_by_key(|a| a.ts()),
            SortKey::Name => archives.sort_by_key(|a| a.name_str()),
            SortKey::Id => archives.sort_by_key(|a| a.id),
        }
    }
    match (sel.first, sel.last) {
        (Some(n), _) if n > 0 => archives.truncate(n),
        (_, Some(n)) if n > 0 => {
            let skip = archives.len().saturating_sub(n);
            archives.drain(..skip);
        }
        _ => {}
    }
    archives
}

/// Looks an archive up by name.
pub fn find_archive(manifest: &Manifest, name: &[u8]) -> Option<ArchiveInfo> {
    manifest.archives.get(name).map(|r| ArchiveInfo {
        name: name.to_vec(),
        id: r.id,
        time: r.time.clone(),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// borg's archive-name glob, the one matcher of every command that selects archives by name
/// (`--glob-archives`/`-a`, `--prefix P` as `P*`, prune's glob): `shellpattern.translate(glob
/// or '*')` matched from the start of the name to its end, as `Archives.list` does. `*` and `?`
/// do not match `/`, `**/` matches zero or more `…/` levels, `[...]`/`[!...]` are classes with
/// Python `re` ranges, a `[` without a closing `]` is literal, everything else is literal.
#[derive(Debug, Clone)]
pub struct ArchiveGlob(regex::Regex);

impl ArchiveGlob {
    /// Compiles `glob` (`*` when absent or empty). A class Python's `re` refuses (a reversed
    /// range such as `[z-a]`) is an error, as `re.compile` raises one in borg.
    pub fn new(glob: Option<&str>) -> std::result::Result<ArchiveGlob, PatternError> {
        Self::compile(glob, "")
    }

    /// Like [`ArchiveGlob::new`], but a name may also carry a `.checkpoint` or
    /// `.checkpoint.N` suffix after what the glob matches (prune's `match_end`).
    pub fn with_checkpoint_suffix(
        glob: Option<&str>,
    ) -> std::result::Result<ArchiveGlob, PatternError> {
        Self::compile(glob, r"(?:\.checkpoint(?:\.\d+)?)?")
    }

    fn compile(glob: Option<&str>, end: &str) -> std::result::Result<ArchiveGlob, PatternError> {
        let glob = glob.filter(|g| !g.is_empty()).unwrap_or("*");
        let chars: Vec<char> = glob.chars().collect();
        let body = translate_shell(&chars)?;
        regex::Regex::new(&format!(r"\A(?:{body}){end}\z"))
            .map(ArchiveGlob)
            .map_err(|e| PatternError::BadRegex {
                pattern: glob.to_string(),
                message: e.to_string(),
            })
    }

    /// Whether the archive name `name` is selected.
    pub fn is_match(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        ArchiveGlob::new(Some(p)).unwrap().is_match(t)
    }

    #[test]
    fn globs_match_like_borg_shellpattern() {
        assert!(m("arch*", "archive1"));
        assert!(!m("arch*", "xarchive1"));
        assert!(!m("archive", "archive1"), "anchored at the end");
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"), "? does not match /");
        assert!(!m("a*", "a/b"), "* does not match /");
        assert!(m("**/x", "a/b/x"));
        assert!(m("**/x", "x"));
        assert!(m("x\ny", "x\ny"));
        assert!(m("*", "x y\nz"), "* matches newlines");
    }

    #[test]
    fn empty_or_absent_glob_selects_everything() {
        for g in [None, Some("")] {
            let g = ArchiveGlob::new(g).unwrap();
            assert!(g.is_match(""));
            assert!(g.is_match("host-2024.checkpoint"));
        }
    }

    #[test]
    fn classes_follow_python_re() {
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("[!ab]x", "cx"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("[]a]", "]"), "a leading ] is a member");
        assert!(m("[!]a]", "b"));
        assert!(!m("[!]a]", "]"));
        assert!(m("[^a]", "^"), "a leading ^ is literal, not negation");
        assert!(!m("[^a]", "b"));
        assert!(m("[a-]", "-"), "a trailing - is literal");
        assert!(m("[a-c-e]", "-"));
        assert!(!m("[a-c-e]", "d"));
        assert!(m("[\\]", "\\"), "a backslash in a class is literal");
        assert!(m("[/]", "/"), "a class may match /");
        assert!(m("a[", "a["), "an unclosed [ is literal");
        assert!(m("[*?]", "?"));
        assert!(!m("[*?]", "x"));
        assert!(ArchiveGlob::new(Some("[z-a]")).is_err(), "re.error in borg");
    }

    #[test]
    fn regex_specials_are_literal() {
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"));
        assert!(m("(x)+$", "(x)+$"));
        assert!(m("a{2}", "a{2}"));
        assert!(!m("a{2}", "aa"));
        assert!(m("ä*", "äö"));
    }

    #[test]
    fn checkpoint_suffix_is_prunes_match_end() {
        let g = ArchiveGlob::with_checkpoint_suffix(Some("host-*")).unwrap();
        assert!(g.is_match("host-1"));
        assert!(g.is_match("host-1.checkpoint"));
        assert!(g.is_match("host-1.checkpoint.3"));
        assert!(!g.is_match("other"));
        let g = ArchiveGlob::with_checkpoint_suffix(Some("a")).unwrap();
        assert!(g.is_match("a.checkpoint"));
        assert!(g.is_match("a.checkpoint.12"));
        assert!(!g.is_match("a.checkpoint."));
        assert!(!g.is_match("a.checkpoint.x"));
        assert!(!g.is_match("ab"));
        assert!(!ArchiveGlob::new(Some("a"))
            .unwrap()
            .is_match("a.checkpoint"));
    }

    #[test]
    fn sort_keys_are_validated() {
        assert_eq!(
            parse_sort_by("name,id").unwrap(),
            vec![SortKey::Name, SortKey::Id]
        );
        assert!(parse_sort_by("foo").is_err());
    }
}
