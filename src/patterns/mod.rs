//! Borg 1.2 path patterns: `--exclude`, `--exclude-from`, `--pattern`, `--patterns-from` and the
//! PATH arguments of `extract`, `list`, `diff` and friends.
//!
//! The semantics follow `borg/patterns.py` and `borg/shellpattern.py` exactly:
//!
//! * Five styles, chosen by a two-letter prefix (`fm:`, `sh:`, `re:`, `pp:`, `pf:`) or by the
//!   context's default style ([`PatternStyle`]).
//! * Paths are matched without their leading `/`. Patterns of the glob and path styles are
//!   normalised with Python's `posixpath.normpath` ([`text::normpath`]) and lose their leading
//!   `/`; `re:` patterns are used verbatim (searched anywhere in the path).
//! * `fm:`, `sh:` and `pp:` patterns that match a directory also match everything below it; a
//!   trailing `/` on a `fm:`/`sh:` pattern matches only the contents, not the directory itself.
//! * A [`PatternMatcher`] applies `pf:` patterns first (last one added wins), then all other rules
//!   in order; the first match decides. Without a match it returns its fallback.
//! * Paths and patterns are bytes ([`std::ffi::OsStr`] on Unix). Undecodable bytes behave like
//!   Python's `surrogateescape` characters: one byte, one character (see [`text`]).
//!
//! Typical use for `create`:
//!
//! ```
//! use hoard::patterns::{PatternArgs, PatternMatcher};
//! let mut args = PatternArgs::default();
//! args.add_exclude("*.tmp".as_ref()).unwrap();
//! args.add_pattern("- home/*/.cache".as_ref()).unwrap();
//! let mut matcher = PatternMatcher::new(Some(true));
//! matcher.add_rules(args.rules);
//! assert_eq!(matcher.matches("/home/u/x.tmp".as_ref()).included, Some(false));
//! assert_eq!(matcher.matches("/home/u/x.txt".as_ref()).included, Some(true));
//! ```

pub mod matcher;
pub mod text;
mod translate;

pub use translate::translate_shell;

pub use matcher::{
    build_matcher, create_matcher, load_exclude_file, load_pattern_file, parse_exclude_pattern,
    parse_inclexcl_command, IeCommand, MatchResult, PatternArgs, PatternLine, PatternMatcher, Rule,
};

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use regex::Regex;
use thiserror::Error;

/// Errors from parsing patterns and pattern files. Messages follow borg's wording.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// A `xx:` prefix names no known style (`--exclude 'xx:foo'`).
    #[error("Unknown pattern style: {0}")]
    UnknownStyle(String),
    /// A `P xx` line names no known style.
    #[error("Invalid pattern style: {0}")]
    InvalidStyle(String),
    /// An empty `--pattern` / pattern-file line.
    #[error("A pattern/command must not be empty.")]
    EmptyCommand,
    /// A pattern-file line that does not start with a known command character.
    #[error("A pattern/command must start with anyone of: -, !, +, R, r, P, p")]
    UnknownCommand,
    /// A pattern-file line consisting of a command character only.
    #[error("A pattern/command must have a value part.")]
    MissingValue,
    /// A `[z-a]` range in a `sh:` pattern (Python's re error text).
    #[error("bad character range {0}")]
    BadCharacterRange(String),
    /// A `re:` pattern that does not compile.
    #[error("Invalid regular expression '{pattern}': {message}")]
    BadRegex {
        /// The regular expression as given.
        pattern: String,
        /// The reason, one line.
        message: String,
    },
    /// A pattern or exclude file could not be read.
    #[error("{path}: {message}")]
    File {
        /// The file's path as given.
        path: String,
        /// The OS error text.
        message: String,
    },
}

/// Pattern styles, named by their two-letter prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternStyle {
    /// `fm:` — fnmatch; `*` also matches `/`. Default for `--exclude`.
    Fnmatch,
    /// `sh:` — shell style; `*` stops at `/`, `**/` spans directories. Default in pattern files.
    Shell,
    /// `re:` — Python-like regular expression, searched anywhere in the path.
    Regex,
    /// `pp:` — path prefix; matches the path and everything below it. Default for PATH args.
    PathPrefix,
    /// `pf:` — the full path, exactly.
    PathFull,
}

impl PatternStyle {
    /// The two-letter prefix (`"fm"`, `"sh"`, `"re"`, `"pp"`, `"pf"`).
    pub fn prefix(self) -> &'static str {
        match self {
            PatternStyle::Fnmatch => "fm",
            PatternStyle::Shell => "sh",
            PatternStyle::Regex => "re",
            PatternStyle::PathPrefix => "pp",
            PatternStyle::PathFull => "pf",
        }
    }

    /// The style for a two-letter prefix, if it is one of the five.
    pub fn from_prefix(prefix: &str) -> Option<PatternStyle> {
        [
            PatternStyle::Fnmatch,
            PatternStyle::Shell,
            PatternStyle::Regex,
            PatternStyle::PathPrefix,
            PatternStyle::PathFull,
        ]
        .into_iter()
        .find(|s| s.prefix() == prefix)
    }
}

/// How a compiled pattern tests a (normalised, decoded) path.
#[derive(Debug, Clone)]
enum Matcher {
    /// `pf:` — equality with the normalised pattern.
    Full(String),
    /// `pp:` — `path + "/"` starts with the normalised pattern (which ends in `/`).
    Prefix(String),
    /// `fm:` / `sh:` — the anchored regex matches `path + "/"`.
    Glob(Regex),
    /// `re:` — the regex is found somewhere in `path`. Python `re` semantics need look-around
    /// and back-references, so this is a backtracking `fancy_regex` (bounded by
    /// [`REGEX_BACKTRACK_LIMIT`]; patterns without those features run on `regex` inside it).
    Search(Box<fancy_regex::Regex>),
}

/// One compiled pattern (borg's `PatternBase` subclasses).
#[derive(Debug, Clone)]
pub struct Pattern {
    style: PatternStyle,
    original: OsString,
    normalized: String,
    matcher: Matcher,
    recurse_dir: bool,
    match_count: u64,
}

impl Pattern {
    /// Compiles `pattern` (which carries no style prefix) in the given style. `recurse_dir`
    /// tells a walker whether to descend into a directory that this pattern excludes.
    pub fn new(
        style: PatternStyle,
        pattern: &OsStr,
        recurse_dir: bool,
    ) -> Result<Pattern, PatternError> {
        let text = text::decode_path(pattern.as_bytes());
        let (normalized, matcher) = match style {
            PatternStyle::PathFull => {
                let p = text::normpath(&text).trim_start_matches('/').to_string();
                (p.clone(), Matcher::Full(p))
            }
            PatternStyle::PathPrefix => {
                let mut p = text::normpath(&text).trim_end_matches('/').to_string();
                p.push('/');
                let p = p.trim_start_matches('/').to_string();
                (p.clone(), Matcher::Prefix(p))
            }
            PatternStyle::Fnmatch | PatternStyle::Shell => {
                let any = if style == PatternStyle::Shell {
                    "/**/*"
                } else {
                    "/*"
                };
                let mut p;
                if text.ends_with('/') {
                    p = text::normpath(&text).trim_end_matches('/').to_string();
                    p.push_str(any);
                    p.push('/');
                } else {
                    p = text::normpath(&text);
                    p.push_str(any);
                }
                let p = p.trim_start_matches('/').to_string();
                let chars: Vec<char> = p.chars().collect();
                let body = if style == PatternStyle::Shell {
                    translate::translate_shell(&chars)?
                } else {
                    translate::translate_fnmatch(&chars)?
                };
                let re =
                    Regex::new(&format!("\\A{body}\\z")).map_err(|e| PatternError::BadRegex {
                        pattern: p.clone(),
                        message: regex_error_line(&e),
                    })?;
                (p, Matcher::Glob(re))
            }
            PatternStyle::Regex => {
                let re = fancy_regex::RegexBuilder::new(&python_regex_to_rust(&text))
                    .backtrack_limit(REGEX_BACKTRACK_LIMIT)
                    .build()
                    .map_err(|e| PatternError::BadRegex {
                        pattern: text.clone(),
                        message: fancy_error_line(&e),
                    })?;
                (text.clone(), Matcher::Search(Box::new(re)))
            }
        };
        Ok(Pattern {
            style,
            original: pattern.to_os_string(),
            normalized,
            matcher,
            recurse_dir,
            match_count: 0,
        })
    }

    /// Parses `[xx:]pattern` like borg's `parse_pattern`: a two-character alphanumeric prefix
    /// followed by `:` selects the style, otherwise `fallback` applies.
    pub fn parse(
        pattern: &OsStr,
        fallback: PatternStyle,
        recurse_dir: bool,
    ) -> Result<Pattern, PatternError> {
        let bytes = pattern.as_bytes();
        let text = text::decode_path(bytes);
        let chars: Vec<char> = text.chars().take(3).collect();
        if text.chars().count() > 2
            && chars[2] == ':'
            && chars[..2].iter().all(|c| c.is_alphanumeric())
        {
            let prefix: String = chars[..2].iter().collect();
            let style = PatternStyle::from_prefix(&prefix)
                .ok_or_else(|| PatternError::UnknownStyle(prefix.clone()))?;
            // The prefix is two ASCII letters plus ':' here, so three bytes.
            let rest = OsStr::from_bytes(&bytes[3..]);
            Pattern::new(style, rest, recurse_dir)
        } else {
            Pattern::new(fallback, pattern, recurse_dir)
        }
    }

    /// Tests a path that is already decoded and stripped of leading `/` (no counting).
    fn test(&self, path: &str) -> bool {
        self.test_with_sep(path, &format!("{path}/"))
    }

    /// [`Pattern::test`] with `path + "/"` computed by the caller (once for many patterns).
    fn test_with_sep(&self, path: &str, with_sep: &str) -> bool {
        match &self.matcher {
            Matcher::Full(p) => path == p,
            Matcher::Prefix(p) => with_sep.starts_with(p.as_str()),
            Matcher::Glob(re) => re.is_match(with_sep),
            // A path on which the pattern exceeds the backtrack limit counts as not matching:
            // borg (Python `re`) would hang there instead.
            Matcher::Search(re) => re.is_match(path).unwrap_or(false),
        }
    }

    /// Whether `path` (bytes, leading `/` optional) matches, counting the match like borg.
    pub fn matches(&mut self, path: &OsStr) -> bool {
        let decoded = text::decode_path(path.as_bytes());
        let hit = self.test(decoded.trim_start_matches('/'));
        if hit {
            self.match_count += 1;
        }
        hit
    }

    /// The style of this pattern.
    pub fn style(&self) -> PatternStyle {
        self.style
    }

    /// The pattern as given, without its style prefix (borg's `str(pattern)`).
    pub fn original(&self) -> &OsStr {
        &self.original
    }

    /// The normalised pattern text that is matched (borg's `pattern.pattern`); e.g. `fm:/home`
    /// gives `home/*`, `pp:/home/` gives `home/`.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Whether a walker should still descend into a directory this pattern excludes.
    pub fn recurse_dir(&self) -> bool {
        self.recurse_dir
    }

    /// How often this pattern decided a match so far.
    pub fn match_count(&self) -> u64 {
        self.match_count
    }
}

impl std::fmt::Display for Pattern {
    /// Borg's `str(pattern)`: the pattern as given, without the style prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.original.as_bytes()))
    }
}

/// How many backtracking steps one `re:` pattern may take on one path before it is given up
/// as not matching (a pattern like `(a+)+$` on a long run of `a`s would take exponential time).
pub const REGEX_BACKTRACK_LIMIT: usize = 100_000;

/// One line for a `fancy_regex` compile error (errors of the inner `regex` span several lines
/// and end in `error: ...`).
fn fancy_error_line(err: &fancy_regex::Error) -> String {
    error_text_line(&err.to_string())
}

/// The last line of a `regex` error (`error: ...`), without the prefix.
fn regex_error_line(err: &regex::Error) -> String {
    error_text_line(&err.to_string())
}

/// The `error: ...` line of a multi-line regex error text, else its last line.
fn error_text_line(text: &str) -> String {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or(""))
        .trim()
        .to_string()
}

/// Adapts the few Python `re` spellings that `regex` spells differently: `\Z` (end of string)
/// becomes `\z`.
fn python_regex_to_rust(re: &str) -> String {
    let mut out = String::with_capacity(re.len());
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push_str("\\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod borg_cases;
#[cfg(test)]
mod tests;
