//! Translation of glob patterns into `regex` syntax, following borg 1.2 on Python 3.11:
//! `fnmatch.translate` for `fm:` patterns and `borg.shellpattern.translate` for `sh:` patterns.
//!
//! The generated expression must be used anchored at both ends (`\A...\z`); the callers add that.

use super::PatternError;

/// One token of a bracket expression as Python's `re` parser sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// A character taken literally (it was escaped, or is not special).
    Lit(char),
    /// An unescaped `-`, which may form a range.
    Hyphen,
}

/// One member of a character class.
enum Item {
    Char(char),
    Range(char, char),
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Parses the tokens of a bracket expression like Python's `sre_parse` does and renders a
/// `regex` character class. `source` is only used for error messages.
fn render_class(negate: bool, toks: &[Tok]) -> Result<String, PatternError> {
    let mut items = Vec::new();
    let mut idx = 0;
    let tok_char = |t: Tok| match t {
        Tok::Lit(c) => c,
        Tok::Hyphen => '-',
    };
    while idx < toks.len() {
        let code1 = tok_char(toks[idx]);
        idx += 1;
        if idx < toks.len() && toks[idx] == Tok::Hyphen {
            if idx + 1 >= toks.len() {
                // `x-` right before the closing bracket: both literal.
                items.push(Item::Char(code1));
                items.push(Item::Char('-'));
                break;
            }
            let code2 = tok_char(toks[idx + 1]);
            idx += 2;
            if code2 < code1 {
                return Err(PatternError::BadCharacterRange(format!("{code1}-{code2}")));
            }
            items.push(Item::Range(code1, code2));
        } else {
            items.push(Item::Char(code1));
        }
    }
    let mut out = String::from("[");
    if negate {
        out.push('^');
    }
    for item in items {
        match item {
            Item::Char(c) => out.push_str(&format!("\\x{{{:x}}}", c as u32)),
            Item::Range(a, b) => {
                out.push_str(&format!("\\x{{{:x}}}-\\x{{{:x}}}", a as u32, b as u32))
            }
        }
    }
    out.push(']');
    Ok(out)
}

/// Finds the end of a bracket expression starting after the `[` at `i`, like both translators
/// do: an initial `!` and then an initial `]` are part of the set. Returns the index of the
/// closing `]`, or `None` when there is none (the `[` is then literal).
fn find_class_end(pat: &[char], i: usize) -> Option<usize> {
    let n = pat.len();
    let mut j = i;
    if j < n && pat[j] == '!' {
        j += 1;
    }
    if j < n && pat[j] == ']' {
        j += 1;
    }
    while j < n && pat[j] != ']' {
        j += 1;
    }
    (j < n).then_some(j)
}

/// Translates a glob for `fm:` patterns like Python 3.11's `fnmatch.translate`: `*` matches any
/// string including `/`, `?` any one character, `[...]` a set (`[!...]` negated).
pub fn translate_fnmatch(pat: &[char]) -> Result<String, PatternError> {
    let n = pat.len();
    let mut res = String::new();
    let mut last_star = false;
    let mut i = 0;
    while i < n {
        let c = pat[i];
        i += 1;
        match c {
            '*' => {
                if !last_star {
                    res.push_str(".*");
                }
                last_star = true;
                continue;
            }
            '?' => res.push('.'),
            '[' => match find_class_end(pat, i) {
                None => res.push_str("\\["),
                Some(j) => {
                    res.push_str(&fnmatch_class(pat, i, j)?);
                    i = j + 1;
                }
            },
            _ => push_literal(&mut res, c),
        }
        last_star = false;
    }
    // fnmatch uses atomic groups for `*fixed*`; for whole-string matching the language is the
    // same as with plain `.*`, so no special handling is needed.
    Ok(format!("(?s:{res})"))
}

/// The bracket expression `pat[i..j]` (without brackets) as fnmatch would build it.
fn fnmatch_class(pat: &[char], i: usize, j: usize) -> Result<String, PatternError> {
    let body = &pat[i..j];
    let chunks: Vec<Vec<char>> = if !body.contains(&'-') {
        vec![body.to_vec()]
    } else {
        // Split at the hyphens that form ranges (never the first character of the set).
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let mut start = i;
        let mut k = if pat[i] == '!' { i + 2 } else { i + 1 };
        while let Some(pos) = (k..j).find(|&p| pat[p] == '-') {
            chunks.push(pat[start..pos].to_vec());
            start = pos + 1;
            k = pos + 3;
        }
        let tail = pat[start..j].to_vec();
        if tail.is_empty() {
            if let Some(last) = chunks.last_mut() {
                last.push('-');
            }
        } else {
            chunks.push(tail);
        }
        // Remove empty ranges (`z-a`): drop both ends and join the neighbours.
        let mut k = chunks.len();
        while k > 1 {
            k -= 1;
            let prev_last = chunks[k - 1].last().copied();
            let next_first = chunks[k].first().copied();
            if let (Some(a), Some(b)) = (prev_last, next_first) {
                if a > b {
                    let next = chunks.remove(k);
                    let prev = &mut chunks[k - 1];
                    prev.pop();
                    prev.extend_from_slice(&next[1..]);
                }
            }
        }
        chunks
    };
    let flat: Vec<char> = chunks.iter().flatten().copied().collect();
    if flat.is_empty() {
        // Empty set: never matches.
        return Ok("(?:\\z.)".to_string());
    }
    if flat == ['!'] {
        // Negated empty set: any character.
        return Ok(".".to_string());
    }
    let mut toks = Vec::new();
    for (ci, chunk) in chunks.iter().enumerate() {
        if ci > 0 {
            toks.push(Tok::Hyphen);
        }
        toks.extend(chunk.iter().map(|&c| Tok::Lit(c)));
    }
    let negate = toks.first() == Some(&Tok::Lit('!'));
    if negate {
        toks.remove(0);
    }
    render_class(negate, &toks)
}

/// Translates a glob for `sh:` patterns like `borg.shellpattern.translate`: `*` and `?` do not
/// match `/`, `**/` matches zero or more whole directory levels.
pub fn translate_shell(pat: &[char]) -> Result<String, PatternError> {
    let n = pat.len();
    let mut res = String::new();
    let mut i = 0;
    while i < n {
        let c = pat[i];
        i += 1;
        match c {
            '*' => {
                if i + 1 < n && pat[i] == '*' && pat[i + 1] == '/' {
                    res.push_str("(?:[^/]*/)*");
                    i += 2;
                } else {
                    res.push_str("[^/]*");
                }
            }
            '?' => res.push_str("[^/]"),
            '[' => match find_class_end(pat, i) {
                None => res.push_str("\\["),
                Some(j) => {
                    let body = &pat[i..j];
                    let negate = body.first() == Some(&'!');
                    let start = usize::from(negate);
                    let toks: Vec<Tok> = body[start..]
                        .iter()
                        .map(|&c| if c == '-' { Tok::Hyphen } else { Tok::Lit(c) })
                        .collect();
                    res.push_str(&render_class(negate, &toks)?);
                    i = j + 1;
                }
            },
            _ => push_literal(&mut res, c),
        }
    }
    Ok(res)
}
