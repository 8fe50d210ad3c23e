//! The cache `config` file (spec §8): an INI file read and written the way Python's
//! `configparser` does, so that borg and hoard can update each other's files in place.
//!
//! borg updates the parsed file and writes it back rather than recreating it, so unknown keys
//! and sections survive; [`Ini`] keeps sections and keys in file order for the same reason.

/// An INI document in `configparser`'s model: ordered sections of ordered `key = value` pairs
/// (keys lower-cased, values stripped, continuation lines joined with `\n`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    sections: Vec<(String, Vec<(String, String)>)>,
}

/// A line the INI parser could not make sense of.
#[derive(Debug, thiserror::Error)]
#[error("cache config: {0}")]
pub struct IniError(pub String);

impl Ini {
    /// Parses INI text (`=` or `:` delimiters, `#`/`;` comment lines, indented continuation
    /// lines; duplicate keys keep the last value).
    pub fn parse(text: &str) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        let mut current: Option<usize> = None;
        let mut last_key: Option<usize> = None;
        for (no, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if trimmed.is_empty() {
                last_key = None;
                continue;
            }
            let indented = raw.starts_with([' ', '\t']);
            if indented {
                if let (Some(s), Some(k)) = (current, last_key) {
                    let v = &mut ini.sections[s].1[k].1;
                    v.push('\n');
                    v.push_str(trimmed);
                    continue;
                }
            }
            if trimmed.starts_with('[') && trimmed.ends_with(']') {
                let name = trimmed[1..trimmed.len() - 1].to_string();
                current = Some(match ini.sections.iter().position(|(n, _)| *n == name) {
                    Some(i) => i,
                    None => {
                        ini.sections.push((name, Vec::new()));
                        ini.sections.len() - 1
                    }
                });
                last_key = None;
                continue;
            }
            let Some(s) = current else {
                return Err(IniError(format!("line {}: no section header", no + 1)));
            };
            let Some(pos) = trimmed.find(['=', ':']) else {
                return Err(IniError(format!("line {}: not a key = value line", no + 1)));
            };
            let key = trimmed[..pos].trim().to_lowercase();
            let value = trimmed[pos + 1..].trim().to_string();
            let entries = &mut ini.sections[s].1;
            last_key = Some(match entries.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    entries[i].1 = value;
                    i
                }
                None => {
                    entries.push((key, value));
                    entries.len() - 1
                }
            });
        }
        Ok(ini)
    }

    /// The value of `key` in `section`.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .and_then(|(_, e)| e.iter().find(|(k, _)| k == key))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `section` exists.
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.iter().any(|(n, _)| n == section)
    }

    /// All entries of `section`, in file order.
    pub fn items(&self, section: &str) -> &[(String, String)] {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .map(|(_, e)| e.as_slice())
            .unwrap_or(&[])
    }

    /// Sets `key` in `section` (creating the section at the end, the key at the end of its
    /// section, or replacing the value in place).
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let s = match self.sections.iter().position(|(n, _)| n == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let entries = &mut self.sections[s].1;
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => entries.push((key.to_string(), value.to_string())),
        }
    }

    /// Serialises exactly as `configparser.write` does: `[section]`, `key = value` lines
    /// (continuation lines indented with a tab), and a blank line after every section.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, entries) in &self.sections {
            out.push('[');
            out.push_str(name);
            out.push_str("]\n");
            for (k, v) in entries {
                out.push_str(k);
                out.push_str(" = ");
                out.push_str(&v.replace('\n', "\n\t"));
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }
}

/// borg's `parse_stringified_list`: split at commas (with surrounding spaces), drop empties.
pub fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim_matches(' ').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The content of a freshly created cache `config` (borg's `CacheConfig.create`).
pub fn initial(repository_hex: &str) -> Ini {
    let mut ini = Ini::default();
    ini.set("cache", "version", "1");
    ini.set("cache", "repository", repository_hex);
    ini.set("cache", "manifest", "");
    ini.set("integrity", "manifest", "");
    ini
}

#[cfg(test)]
mod tests {
    use super::*;

    const BORG: &str = "[cache]\nversion = 1\nrepository = 29a6\nmanifest = c772\nprevious_location = /tmp/cexp/repo\ntimestamp = 2026-11-27T04:39:36.837509\nignored_features = \nmandatory_features = \nkey_type = 3\n\n[integrity]\nmanifest = c772\nchunks = {\"algorithm\": \"XXH64\", \"digests\": {\"HashHeader\": \"4182a0fe86f749b8\", \"final\": \"1c628cbd03f41c60\"}}\nfiles = {\"algorithm\": \"XXH64\", \"digests\": {\"final\": \"85e44a3736e1fa08\"}}\n\n";

    #[test]
    fn borg_config_round_trips_byte_identically() {
        let ini = Ini::parse(BORG).unwrap();
        assert_eq!(ini.get("cache", "key_type"), Some("3"));
        assert_eq!(ini.get("cache", "ignored_features"), Some(""));
        assert!(ini
            .get("integrity", "chunks")
            .unwrap()
            .starts_with("{\"alg"));
        assert_eq!(ini.to_text(), BORG);
    }

    #[test]
    fn initial_config_matches_borg_create() {
        assert_eq!(
            initial("ab").to_text(),
            "[cache]\nversion = 1\nrepository = ab\nmanifest = \n\n[integrity]\nmanifest = \n\n"
        );
    }

    #[test]
    fn parses_configparser_variants() {
        let ini = Ini::parse("# c\n[a]\nKey: v1\nmulti = x\n  y\n[a]\nkey = v2\n").unwrap();
        assert_eq!(ini.get("a", "key"), Some("v2"));
        assert_eq!(ini.get("a", "multi"), Some("x\ny"));
        assert!(Ini::parse("key = 1\n").is_err());
        assert_eq!(parse_list(" a , b,,c "), vec!["a", "b", "c"]);
        assert!(parse_list("").is_empty());
    }
}
