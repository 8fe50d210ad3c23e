//! The cache `config` file (FORMAT.md §8): an INI file read and written the way Python's
//! `configparser` does, so that borg and hoard can update each other's files in place.
//!
//! borg updates the parsed file and writes it back rather than recreating it, so unknown keys
//! and sections survive; [`Ini`] keeps sections and keys in file order for the same reason.

/// The cache `config` is the same `configparser` INI model as the repository `config`.
pub type Ini = crate::repo::config::Config;

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
        let ini = Ini::parse("# c\n[a]\nKey: v1\nmulti = x\n  y\n").unwrap();
        assert_eq!(ini.get("a", "key"), Some("v1"));
        // strict, like Python's ConfigParser as borg uses it
        assert!(Ini::parse("[a]\nk = 1\n[a]\nk = 2\n").is_err());
        assert_eq!(ini.get("a", "multi"), Some("x\ny"));
        assert!(Ini::parse("key = 1\n").is_err());
        assert_eq!(parse_list(" a , b,,c "), vec!["a", "b", "c"]);
        assert!(parse_list("").is_empty());
    }
}
