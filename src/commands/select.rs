//! Archive selection as borg 1.2's `Manifest.archives.list` / `list_considering` does it:
//! `--glob-archives` (anchored shell glob) or `-P/--prefix`, hiding `.checkpoint` archives
//! unless asked, a stable sort by the `--sort-by` keys, then `--first N` or `--last N`.
//! Reused by every command that works on several archives (list, info, delete, prune, check).

use crate::archive::manifest::parse_timestamp;
use crate::archive::Manifest;

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
    let glob = sel.effective_glob().unwrap_or_default();
    let glob = if glob.is_empty() {
        "*".to_string()
    } else {
        glob
    };
    let pattern: Vec<char> = glob.chars().collect();
    // The manifest map is ordered by name bytes, the order borg loads it in.
    let mut archives: Vec<ArchiveInfo> = manifest
        .archives
        .iter()
        .filter(|(name, _)| {
            let text: Vec<char> = String::from_utf8_lossy(name).chars().collect();
            glob_match(&pattern, &text)
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

/// Matches `text` against a borg shell pattern (`shellpattern.translate`, anchored at both
/// ends): `*` and `?` do not cross `/`, `**/` matches zero or more directory levels,
/// `[...]` / `[!...]` are character classes, an unclosed `[` is literal.
pub fn glob_match(pattern: &[char], text: &[char]) -> bool {
    match_from(pattern, 0, text, 0)
}

/// One parsed element of a pattern at a position, with the index after it.
enum Elem {
    Literal(char),
    AnyOne,
    Star,
    DoubleStarSlash,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

fn parse_elem(p: &[char], i: usize) -> (Elem, usize) {
    let c = p[i];
    match c {
        '*' => {
            if i + 2 < p.len() && p[i + 1] == '*' && p[i + 2] == '/' {
                (Elem::DoubleStarSlash, i + 3)
            } else {
                (Elem::Star, i + 1)
            }
        }
        '?' => (Elem::AnyOne, i + 1),
        '[' => {
            let mut j = i + 1;
            if j < p.len() && p[j] == '!' {
                j += 1;
            }
            if j < p.len() && p[j] == ']' {
                j += 1;
            }
            while j < p.len() && p[j] != ']' {
                j += 1;
            }
            if j >= p.len() {
                return (Elem::Literal('['), i + 1);
            }
            let mut stuff = &p[i + 1..j];
            let mut negated = false;
            if stuff.first() == Some(&'!') {
                negated = true;
                stuff = &stuff[1..];
            }
            let mut items = Vec::new();
            let mut k = 0;
            while k < stuff.len() {
                if k + 2 < stuff.len() && stuff[k + 1] == '-' {
                    items.push((stuff[k], stuff[k + 2]));
                    k += 3;
                } else {
                    items.push((stuff[k], stuff[k]));
                    k += 1;
                }
            }
            (Elem::Class { negated, items }, j + 1)
        }
        other => (Elem::Literal(other), i + 1),
    }
}

fn match_from(p: &[char], pi: usize, t: &[char], ti: usize) -> bool {
    if pi >= p.len() {
        return ti == t.len();
    }
    let (elem, next) = parse_elem(p, pi);
    match elem {
        Elem::Literal(c) => ti < t.len() && t[ti] == c && match_from(p, next, t, ti + 1),
        Elem::AnyOne => ti < t.len() && t[ti] != '/' && match_from(p, next, t, ti + 1),
        Elem::Class { negated, items } => {
            ti < t.len() && {
                let c = t[ti];
                let hit = items.iter().any(|&(a, b)| a <= c && c <= b);
                hit != negated && match_from(p, next, t, ti + 1)
            }
        }
        Elem::Star => {
            let mut k = ti;
            loop {
                if match_from(p, next, t, k) {
                    return true;
                }
                if k >= t.len() || t[k] == '/' {
                    return false;
                }
                k += 1;
            }
        }
        Elem::DoubleStarSlash => {
            // zero or more "[^/]*/" groups
            let mut k = ti;
            loop {
                if match_from(p, next, t, k) {
                    return true;
                }
                let Some(off) = t[k..].iter().position(|&c| c == '/') else {
                    return false;
                };
                k += off + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        glob_match(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn globs_match_like_borg_shellpattern() {
        assert!(m("arch*", "archive1"));
        assert!(!m("arch*", "xarchive1"));
        assert!(m("*", ""));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("a[", "a["));
        assert!(m("**/x", "a/b/x"));
        assert!(m("**/x", "x"));
        assert!(!m("archive", "archive1"));
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
