//! The repository `config` file (FORMAT.md §2.2): a Python `ConfigParser` INI file with a
//! `[repository]` section. Parsing follows ConfigParser's rules (`key = value` or `key: value`,
//! lower-cased keys, indented continuation lines, `#`/`;` comment lines); writing reproduces
//! `ConfigParser.write` (`key = value`, continuation lines indented with a TAB, blank line after
//! each section).

/// The section borg uses.
pub const SECTION: &str = "repository";

/// A parsed INI file, keeping section and key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    sections: Vec<(String, Vec<(String, String)>)>,
}

/// A malformed config file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// An empty config.
    pub fn new() -> Self {
        Config::default()
    }

    /// Parses INI text with ConfigParser semantics.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut cfg = Config::new();
        let mut cur_sec: Option<usize> = None;
        let mut cur_key: Option<usize> = None;
        for (lineno, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            let stripped = line.trim_start();
            if stripped.starts_with('#') || stripped.starts_with(';') {
                continue;
            }
            if stripped.is_empty() {
                cur_key = None;
                continue;
            }
            let indented = line.len() != stripped.len();
            if indented {
                if let (Some(s), Some(k)) = (cur_sec, cur_key) {
                    let v = &mut cfg.sections[s].1[k].1;
                    v.push('\n');
                    v.push_str(stripped);
                    continue;
                }
            }
            if stripped.starts_with('[') && stripped.ends_with(']') {
                let name = stripped[1..stripped.len() - 1].to_string();
                if cfg.sections.iter().any(|(n, _)| *n == name) {
                    return Err(ConfigError(format!(
                        "section {name:?} already exists (line {})",
                        lineno + 1
                    )));
                }
                cfg.sections.push((name, Vec::new()));
                cur_sec = Some(cfg.sections.len() - 1);
                cur_key = None;
                continue;
            }
            let Some(s) = cur_sec else {
                return Err(ConfigError(format!(
                    "File contains no section headers (line {})",
                    lineno + 1
                )));
            };
            let pos = stripped.find(['=', ':']).ok_or_else(|| {
                ConfigError(format!(
                    "Source contains parsing errors (line {})",
                    lineno + 1
                ))
            })?;
            let key = stripped[..pos].trim().to_lowercase();
            let value = stripped[pos + 1..].trim().to_string();
            let entries = &mut cfg.sections[s].1;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(ConfigError(format!(
                    "option {key:?} already exists (line {})",
                    lineno + 1
                )));
            }
            entries.push((key, value));
            cur_key = Some(entries.len() - 1);
        }
        Ok(cfg)
    }

    /// Writes the file the way `ConfigParser.write` does.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, entries) in &self.sections {
            out.push_str(&format!("[{name}]\n"));
            for (k, v) in entries {
                out.push_str(&format!("{k} = {}\n", v.replace('\n', "\n\t")));
            }
            out.push('\n');
        }
        out
    }

    /// All entries of `section`, in file order.
    pub fn items(&self, section: &str) -> &[(String, String)] {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .map(|(_, e)| e.as_slice())
            .unwrap_or(&[])
    }

    /// Whether a section exists.
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.iter().any(|(n, _)| n == section)
    }

    /// A value.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .and_then(|(_, e)| e.iter().find(|(k, _)| k == key))
            .map(|(_, v)| v.as_str())
    }

    /// Sets a value (appending a new key at the end of its section, creating the section).
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let key = key.to_lowercase();
        let idx = match self.sections.iter().position(|(n, _)| n == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let entries = &mut self.sections[idx].1;
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = value.to_string(),
            None => entries.push((key, value.to_string())),
        }
    }

    /// Removes a key; returns whether it existed.
    pub fn remove(&mut self, section: &str, key: &str) -> bool {
        if let Some((_, e)) = self.sections.iter_mut().find(|(n, _)| n == section) {
            let before = e.len();
            e.retain(|(k, _)| k != key);
            return e.len() != before;
        }
        false
    }

    /// `getint`.
    pub fn get_int(&self, section: &str, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.get(section, key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ConfigError(format!("invalid literal for int(): {v:?}"))),
        }
    }

    /// `getboolean`.
    pub fn get_bool(&self, section: &str, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(section, key) {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| ConfigError(format!("Not a boolean: {v}"))),
        }
    }
}

/// ConfigParser booleans: 1/yes/true/on and 0/no/false/off, case-insensitive.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// borg's `parse_file_size`: optional K/M/G/T/P/E/Z/Y suffix with powers of 1000, fractions
/// allowed (`1.7T`), result truncated to an integer (§2.2).
pub fn parse_file_size(s: &str) -> Result<u64, ConfigError> {
    let s = s.trim();
    let err = || ConfigError(format!("invalid file size: {s:?}"));
    let (num, mult) = match s.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let p = match c {
                'K' => 1,
                'M' => 2,
                'G' => 3,
                'T' => 4,
                'P' => 5,
                'E' => 6,
                'Z' => 7,
                'Y' => 8,
                _ => return Err(err()),
            };
            (&s[..s.len() - 1], 1000f64.powi(p))
        }
        _ => (s, 1.0),
    };
    if let Ok(i) = num.parse::<u64>() {
        if mult == 1.0 {
            return Ok(i);
        }
    }
    let f: f64 = num.parse().map_err(|_| err())?;
    if !f.is_finite() || f < 0.0 {
        return Err(err());
    }
    Ok((f * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write_like_configparser() {
        let text = "[repository]\nversion = 1\nSegments_Per_Dir: 1000\nkey = abc\n\tdef\n\tghi\n\n";
        let c = Config::parse(text).unwrap();
        assert_eq!(c.get(SECTION, "segments_per_dir"), Some("1000"));
        assert_eq!(c.get(SECTION, "key"), Some("abc\ndef\nghi"));
        assert_eq!(
            c.to_text(),
            "[repository]\nversion = 1\nsegments_per_dir = 1000\nkey = abc\n\tdef\n\tghi\n\n"
        );
        assert!(Config::parse("version = 1\n").is_err());
        assert!(Config::parse("[r]\nnonsense\n").is_err());
    }

    #[test]
    fn sizes_and_bools() {
        assert_eq!(parse_file_size("10M").unwrap(), 10_000_000);
        assert_eq!(parse_file_size("1.7T").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_file_size("524288000").unwrap(), 524288000);
        assert_eq!(parse_file_size("0").unwrap(), 0);
        assert!(parse_file_size("x").is_err());
        assert_eq!(parse_bool("On"), Some(true));
        assert_eq!(parse_bool("no"), Some(false));
        assert_eq!(parse_bool("2"), None);
    }
}
