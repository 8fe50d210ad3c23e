//! Include/exclude rules, pattern files and the first-match-wins [`PatternMatcher`].

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::text::{decode_path, encode_path};
use super::{Pattern, PatternError, PatternStyle};

/// What a rule does with the paths its pattern matches (borg's `IECommand`, without the
/// `R`/`P` commands, which are [`PatternLine`] variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IeCommand {
    /// `+ pattern`: include.
    Include,
    /// `- pattern`: exclude, but still descend into an excluded directory.
    Exclude,
    /// `! pattern` and `--exclude`: exclude and do not descend.
    ExcludeNoRecurse,
}

impl IeCommand {
    /// Whether a match means "include".
    pub fn is_include(self) -> bool {
        self == IeCommand::Include
    }

    /// Whether a walker descends into a directory this command matched (borg's
    /// `command_recurses_dir`).
    pub fn recurses_dir(self) -> bool {
        self != IeCommand::ExcludeNoRecurse
    }
}

/// A pattern together with its include/exclude command.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The compiled pattern.
    pub pattern: Pattern,
    /// What a match means.
    pub cmd: IeCommand,
}

/// One parsed `--pattern` argument or pattern-file line.
#[derive(Debug, Clone)]
pub enum PatternLine {
    /// `R path`: a root path to back up.
    Root(OsString),
    /// `P style`: the default style for the following lines of the same file.
    Style(PatternStyle),
    /// `+`, `-` or `!` line.
    Rule(Rule),
}

/// Python's `str.isspace` for the characters `str.strip()` removes.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Parses one `--pattern` value or pattern-file line (borg's `parse_inclexcl_command`).
/// `fallback` is the style for patterns without a prefix.
pub fn parse_inclexcl_command(
    line: &OsStr,
    fallback: PatternStyle,
) -> Result<PatternLine, PatternError> {
    let text = decode_path(line.as_bytes());
    let mut chars = text.chars();
    let first = chars.next().ok_or(PatternError::EmptyCommand)?;
    let remainder = chars.as_str().trim_start_matches(py_isspace);
    let cmd = match first {
        '-' => Some(IeCommand::Exclude),
        '!' => Some(IeCommand::ExcludeNoRecurse),
        '+' => Some(IeCommand::Include),
        'R' | 'r' | 'P' | 'p' => None,
        _ => return Err(PatternError::UnknownCommand),
    };
    if remainder.is_empty() {
        return Err(PatternError::MissingValue);
    }
    let value = OsString::from_vec(encode_path(remainder));
    match (first, cmd) {
        (_, Some(cmd)) => Ok(PatternLine::Rule(Rule {
            pattern: Pattern::parse(&value, fallback, cmd.recurses_dir())?,
            cmd,
        })),
        ('R' | 'r', None) => Ok(PatternLine::Root(value)),
        _ => PatternStyle::from_prefix(remainder)
            .map(PatternLine::Style)
            .ok_or_else(|| PatternError::InvalidStyle(remainder.to_string())),
    }
}

/// Parses one `--exclude` value (borg's `parse_exclude_pattern`): default style `fm:`, command
/// "exclude, do not recurse".
pub fn parse_exclude_pattern(pattern: &OsStr) -> Result<Rule, PatternError> {
    Ok(Rule {
        pattern: Pattern::parse(pattern, PatternStyle::Fnmatch, false)?,
        cmd: IeCommand::ExcludeNoRecurse,
    })
}

/// Borg's `clean_lines` over a file read in Python text mode: universal newlines, whitespace
/// stripped on both ends, empty lines and lines starting with `#` dropped.
fn clean_lines(content: &[u8]) -> Vec<OsString> {
    let text = decode_path(content);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.split('\n')
        .map(|l| l.trim_matches(py_isspace))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| OsString::from_vec(encode_path(l)))
        .collect()
}

/// Parses the content of an `--exclude-from` file: one `--exclude` pattern per line.
/// Unlike borg (which would fail with a decoding error), undecodable bytes are kept as bytes.
pub fn load_exclude_file(content: &[u8], rules: &mut Vec<Rule>) -> Result<(), PatternError> {
    for line in clean_lines(content) {
        rules.push(parse_exclude_pattern(&line)?);
    }
    Ok(())
}

/// Parses the content of a `--patterns-from` file: `R`/`P`/`+`/`-`/`!` lines. The default style
/// starts as `sh:` and a `P` line changes it for the rest of this file.
pub fn load_pattern_file(
    content: &[u8],
    roots: &mut Vec<OsString>,
    rules: &mut Vec<Rule>,
) -> Result<(), PatternError> {
    let mut fallback = PatternStyle::Shell;
    for line in clean_lines(content) {
        match parse_inclexcl_command(&line, fallback)? {
            PatternLine::Root(root) => roots.push(root),
            PatternLine::Style(style) => fallback = style,
            PatternLine::Rule(rule) => rules.push(rule),
        }
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>, PatternError> {
    std::fs::read(path).map_err(|e| {
        let display = path.display().to_string();
        let message = crate::platform::os_error_text(&e, &display);
        PatternError::File {
            path: display,
            message,
        }
    })
}

/// The result of the pattern options of one command line, in command-line order (borg keeps
/// `--exclude`, `--exclude-from`, `--pattern` and `--patterns-from` in one list).
#[derive(Debug, Clone, Default)]
pub struct PatternArgs {
    /// Root paths from `R` lines (added to the command's PATH arguments).
    pub roots: Vec<OsString>,
    /// The include/exclude rules in order.
    pub rules: Vec<Rule>,
}

impl PatternArgs {
    /// `--exclude PATTERN`.
    pub fn add_exclude(&mut self, pattern: &OsStr) -> Result<(), PatternError> {
        self.rules.push(parse_exclude_pattern(pattern)?);
        Ok(())
    }

    /// `--exclude-from FILE`.
    pub fn add_exclude_from(&mut self, path: &Path) -> Result<(), PatternError> {
        let content = read_file(path)?;
        load_exclude_file(&content, &mut self.rules)
    }

    /// `--pattern LINE`. As in borg, the default style is always `sh:` here, and a `P` line on
    /// the command line is accepted but has no effect.
    pub fn add_pattern(&mut self, line: &OsStr) -> Result<(), PatternError> {
        match parse_inclexcl_command(line, PatternStyle::Shell)? {
            PatternLine::Root(root) => self.roots.push(root),
            PatternLine::Style(_) => {}
            PatternLine::Rule(rule) => self.rules.push(rule),
        }
        Ok(())
    }

    /// `--patterns-from FILE`.
    pub fn add_patterns_from(&mut self, path: &Path) -> Result<(), PatternError> {
        let content = read_file(path)?;
        load_pattern_file(&content, &mut self.roots, &mut self.rules)
    }
}

/// The decision for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchResult {
    /// `Some(true)` include, `Some(false)` exclude, `None`: no rule matched and the matcher has
    /// no fallback.
    pub included: Option<bool>,
    /// Whether a walker should descend into this path if it is an excluded directory.
    pub recurse_dir: bool,
}

/// Where an include pattern from the PATH arguments lives, for "never matched" warnings.
#[derive(Debug, Clone)]
enum IncludeRef {
    /// Index into the rule list.
    Item(usize),
    /// A `pf:` pattern; borg never counts these, so they always count as never matched.
    Full(Box<Pattern>),
}

/// Borg's `PatternMatcher`: `pf:` rules by exact lookup first, then the other rules in order,
/// first match wins, else the fallback.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    items: Vec<Rule>,
    full: HashMap<String, IeCommand>,
    fallback: Option<bool>,
    recurse_dir: Option<bool>,
    include_patterns: Vec<IncludeRef>,
}

impl PatternMatcher {
    /// A matcher without rules that returns `fallback` for every path.
    pub fn new(fallback: Option<bool>) -> PatternMatcher {
        PatternMatcher {
            fallback,
            ..PatternMatcher::default()
        }
    }

    /// Whether no rules were added.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.full.is_empty()
    }

    /// The value returned when no rule matches.
    pub fn fallback(&self) -> Option<bool> {
        self.fallback
    }

    /// Changes the value returned when no rule matches.
    pub fn set_fallback(&mut self, fallback: Option<bool>) {
        self.fallback = fallback;
    }

    fn add_rule(&mut self, rule: Rule) -> Option<usize> {
        if rule.pattern.style() == PatternStyle::PathFull {
            // A later pf: rule for the same path replaces an earlier one, as in borg's dict.
            self.full
                .insert(rule.pattern.normalized().to_string(), rule.cmd);
            None
        } else {
            self.items.push(rule);
            Some(self.items.len() - 1)
        }
    }

    /// Adds rules (from [`PatternArgs::rules`]) after the existing ones (`add_inclexcl`).
    pub fn add_rules(&mut self, rules: impl IntoIterator<Item = Rule>) {
        for rule in rules {
            self.add_rule(rule);
        }
    }

    /// Adds patterns with one command (borg's `add`).
    pub fn add(&mut self, patterns: impl IntoIterator<Item = Pattern>, cmd: IeCommand) {
        self.add_rules(patterns.into_iter().map(|pattern| Rule { pattern, cmd }));
    }

    /// Adds the PATH arguments of `extract`/`list`/`diff`/... as include rules (default style
    /// `pp:`, prefixes allowed). The fallback becomes "exclude" if there is at least one path
    /// and "include" otherwise. These are the patterns reported by
    /// [`PatternMatcher::unmatched_include_patterns`].
    pub fn add_includepaths<P: AsRef<OsStr>>(&mut self, paths: &[P]) -> Result<(), PatternError> {
        let patterns = paths
            .iter()
            .map(|p| Pattern::parse(p.as_ref(), PatternStyle::PathPrefix, true))
            .collect::<Result<Vec<_>, _>>()?;
        self.fallback = Some(patterns.is_empty());
        self.include_patterns.clear();
        for pattern in patterns {
            let full = (pattern.style() == PatternStyle::PathFull).then(|| pattern.clone());
            let idx = self.add_rule(Rule {
                pattern,
                cmd: IeCommand::Include,
            });
            match (idx, full) {
                (Some(i), _) => self.include_patterns.push(IncludeRef::Item(i)),
                (None, Some(p)) => self.include_patterns.push(IncludeRef::Full(Box::new(p))),
                (None, None) => {}
            }
        }
        Ok(())
    }

    /// Include patterns from [`PatternMatcher::add_includepaths`] that never decided a match.
    pub fn unmatched_include_patterns(&self) -> Vec<&Pattern> {
        self.include_patterns
            .iter()
            .filter_map(|r| match r {
                IncludeRef::Item(i) => self.items.get(*i).map(|rule| &rule.pattern),
                IncludeRef::Full(p) => Some(p.as_ref()),
            })
            .filter(|p| p.match_count() == 0)
            .collect()
    }

    /// Borg's warnings for [`PatternMatcher::unmatched_include_patterns`]:
    /// `Include pattern 'PATTERN' never matched.`
    pub fn unmatched_include_warnings(&self) -> Vec<String> {
        self.unmatched_include_patterns()
            .into_iter()
            .map(|p| format!("Include pattern '{p}' never matched."))
            .collect()
    }

    /// Decides `path` (bytes; a leading `/` is ignored). Also remembers the decision's
    /// `recurse_dir` (see [`PatternMatcher::recurse_dir`]).
    pub fn matches(&mut self, path: &OsStr) -> MatchResult {
        let decoded = decode_path(path.as_bytes());
        let path = decoded.trim_start_matches('/');
        let result = if let Some(cmd) = self.full.get(path) {
            MatchResult {
                included: Some(cmd.is_include()),
                recurse_dir: cmd.recurses_dir(),
            }
        } else if let Some(rule) = {
            let with_sep = format!("{path}/");
            self.items
                .iter_mut()
                .find(|r| r.pattern.test_with_sep(path, &with_sep))
        } {
            rule.pattern.match_count += 1;
            MatchResult {
                included: Some(rule.cmd.is_include()),
                recurse_dir: rule.pattern.recurse_dir(),
            }
        } else {
            MatchResult {
                included: self.fallback,
                recurse_dir: true,
            }
        };
        self.recurse_dir = Some(result.recurse_dir);
        result
    }

    /// The `recurse_dir` of the last [`PatternMatcher::matches`] call (`None` before the first).
    pub fn recurse_dir(&self) -> Option<bool> {
        self.recurse_dir
    }
}

/// Borg's `build_matcher` for `extract`, `list`, `diff`, `export-tar`: the pattern rules first,
/// then the PATH arguments as include rules.
pub fn build_matcher<P: AsRef<OsStr>>(
    rules: Vec<Rule>,
    include_paths: &[P],
) -> Result<PatternMatcher, PatternError> {
    let mut matcher = PatternMatcher::new(None);
    matcher.add_rules(rules);
    matcher.add_includepaths(include_paths)?;
    Ok(matcher)
}

/// The matcher of borg's `create`: the pattern rules, fallback "include". A walker skips an
/// excluded path, and descends into an excluded directory only if
/// [`MatchResult::recurse_dir`] is true (then it still tests the directory's children).
pub fn create_matcher(rules: Vec<Rule>) -> PatternMatcher {
    let mut matcher = PatternMatcher::new(Some(true));
    matcher.add_rules(rules);
    matcher
}
