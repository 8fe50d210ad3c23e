//! `config`: get, set, delete and list values of the repository `config` (or, with `--cache`,
//! of the client cache's `config`), as borg's `do_config` does. Only known keys may be set or
//! deleted, and their values are validated like borg's `repo_validate` / `cache_validate`.

use crate::location::Location;
use crate::repo::config::{parse_file_size, Config};
use crate::repo::{LocalRepository, OpenOptions};

use super::common::{CommandError, Result};

/// `MAX_SEGMENT_SIZE_LIMIT` of borg 1.2: `2**32 - 8 - 1` (FORMAT.md §2.2).
pub const MAX_SEGMENT_SIZE_LIMIT: u64 = (1 << 32) - 8 - 1;

/// What `config` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigAction {
    /// Print the value of the key.
    Get,
    /// Set the key to this value.
    Set(String),
    /// `-d/--delete` the key.
    Delete,
    /// `-l/--list` the repository settings.
    List,
}

/// A `config` request.
#[derive(Debug, Clone)]
pub struct ConfigRequest {
    /// `NAME` (`key` or `section.key`); required unless listing.
    pub name: Option<String>,
    /// The action.
    pub action: ConfigAction,
    /// `-c/--cache`: work on the cache config.
    pub cache: bool,
    /// Seconds to wait for the lock.
    pub lock_wait: f64,
    /// False with `--bypass-lock`.
    pub lock: bool,
}

/// The result of `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOutcome {
    /// Text for stdout (a value, or the listing).
    Print(String),
    /// The key or section does not exist: borg prints this to stderr and exits with 1.
    Missing(String),
    /// Nothing to show (set or delete).
    Done,
}

/// borg raises a `ValueError` for invalid names and values; it ends with exit code 2.
fn value_error(msg: &str) -> CommandError {
    CommandError::with_id(format!("ValueError: {msg}"), "ValueError")
}

/// borg's `repo_validate`.
pub fn repo_validate(section: &str, name: &str, value: Option<&str>) -> Result<()> {
    if section != "repository" {
        return Err(value_error("Invalid section"));
    }
    match name {
        "segments_per_dir" | "last_segment_checked" => {
            if let Some(v) = value {
                if crate::python::int(v).is_none() {
                    return Err(value_error("Invalid value"));
                }
            }
        }
        "max_segment_size" | "additional_free_space" | "storage_quota" => {
            if let Some(v) = value {
                let size = parse_file_size(v).map_err(|_| value_error("Invalid value"))?;
                if name == "storage_quota" && size < 10_000_000 {
                    return Err(value_error("Invalid value: storage_quota < 10M"));
                }
                if name == "max_segment_size" && size >= MAX_SEGMENT_SIZE_LIMIT {
                    return Err(value_error(&format!(
                        "Invalid value: max_segment_size >= {MAX_SEGMENT_SIZE_LIMIT}"
                    )));
                }
            }
        }
        "append_only" => {
            if let Some(v) = value {
                if v != "0" && v != "1" {
                    return Err(value_error("Invalid value"));
                }
            }
        }
        "id" => {
            if let Some(v) = value {
                let ok = hex::decode(v).map(|b| b.len() == 32).unwrap_or(false);
                if !ok {
                    return Err(value_error("Invalid value, must be 64 hex digits"));
                }
            }
        }
        _ => return Err(value_error("Invalid name")),
    }
    Ok(())
}

/// borg's `cache_validate`.
pub fn cache_validate(section: &str, name: &str, value: Option<&str>) -> Result<()> {
    if section != "cache" {
        return Err(value_error("Invalid section"));
    }
    if name != "previous_location" {
        return Err(value_error("Invalid name"));
    }
    if let Some(v) = value {
        Location::parse(Some(v), None)?;
    }
    Ok(())
}

/// Splits `NAME` like borg: `section.key` when there is exactly one dot.
fn split_name(name: &str, cache: bool) -> (String, String) {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 2 {
        return (parts[0].to_string(), parts[1].to_string());
    }
    let section = if cache { "cache" } else { "repository" };
    (section.to_string(), name.to_string())
}

/// configparser's `get` outcome for a missing section or option.
fn get_value(config: &Config, section: &str, name: &str) -> ConfigOutcome {
    if !config.has_section(section) {
        return ConfigOutcome::Missing(format!("No section: '{section}'"));
    }
    match config.get(section, &name.to_lowercase()) {
        Some(v) => ConfigOutcome::Print(v.to_string()),
        None => ConfigOutcome::Missing(format!(
            "No option '{}' in section: '{section}'",
            name.to_lowercase()
        )),
    }
}

/// borg's `list_config`: the known repository keys in a fixed order; a missing key prints
/// `False` (borg reads them with `fallback=False`).
fn list_repository(repo: &LocalRepository) -> String {
    let mut out = String::from("[repository]\n");
    for key in [
        "version",
        "segments_per_dir",
        "max_segment_size",
        "storage_quota",
        "additional_free_space",
        "append_only",
        "id",
    ] {
        let v = repo.config_get(key).unwrap_or_else(|| "False".to_string());
        out.push_str(&format!("{key} = {v}\n"));
    }
    if let Some(v) = repo.config_get("last_segment_checked") {
        out.push_str(&format!("last_segment_checked = {v}\n"));
    }
    out.pop();
    out
}

/// borg 1.2 refuses `config` on a remote repository already while parsing the arguments
/// (`location_validator(proto='file')`): the repository config is only reachable through the
/// file system, `borg serve` has no RPC for it. `text` is the REPOSITORY argument as given
/// (empty when it came from `BORG_REPO`, as in borg).
pub fn must_be_local(text: &str) -> CommandError {
    CommandError::new(format!(
        "argument REPOSITORY: \"{text}\": Repository must be local"
    ))
}

/// Runs `config` on the repository at `loc`.
pub fn run(
    loc: &Location,
    req: &ConfigRequest,
    confirm: crate::security::Confirm<'_>,
) -> Result<ConfigOutcome> {
    if loc.proto != crate::location::Proto::File {
        return Err(must_be_local(&loc.raw_repo));
    }
    let mut repo = LocalRepository::open(
        &loc.local_path(),
        &OpenOptions {
            exclusive: true,
            lock_wait: Some(req.lock_wait),
            lock: req.lock,
            ..OpenOptions::default()
        },
    )?;
    let (section, name) = match (&req.action, &req.name) {
        (ConfigAction::List, _) => (String::new(), String::new()),
        (_, None) => {
            // borg 1.4's `CommandError` (modern exit code 4)
            return Err(CommandError::with_id(
                "Command Error: No config key name was provided.",
                "CommandError",
            ));
        }
        (_, Some(n)) => split_name(n, req.cache),
    };
    if req.cache {
        drop(repo);
        return run_cache(loc, req, &section, &name, confirm);
    }
    match &req.action {
        ConfigAction::List => Ok(ConfigOutcome::Print(list_repository(&repo))),
        ConfigAction::Get => {
            let text = std::fs::read_to_string(loc.local_path().join("config"))?;
            let config = Config::parse(&text).map_err(|e| CommandError::new(e.0))?;
            Ok(get_value(&config, &section, &name))
        }
        ConfigAction::Delete => {
            repo_validate(&section, &name, None)?;
            repo.config_set(&name, None)?;
            Ok(ConfigOutcome::Done)
        }
        ConfigAction::Set(value) => {
            repo_validate(&section, &name, Some(value))?;
            repo.config_set(&name, Some(value))?;
            Ok(ConfigOutcome::Done)
        }
    }
}

/// `config --cache`: the cache's `config` file (the key is needed, as borg loads the manifest
/// and opens the cache first).
fn run_cache(
    loc: &Location,
    req: &ConfigRequest,
    section: &str,
    name: &str,
    confirm: crate::security::Confirm<'_>,
) -> Result<ConfigOutcome> {
    let access = super::common::Access {
        exclusive: true,
        lock_wait: req.lock_wait,
        lock: req.lock,
    };
    let mut opened = super::common::open_with_manifest(
        loc,
        &access,
        &[crate::archive::Operation::Write],
        confirm,
    )?;
    // Like borg, open (create or synchronise) the cache first; its lock is released on drop.
    drop(crate::cache::Cache::open(
        &mut opened.store,
        &opened.manifest,
        crate::cache::CacheOptions {
            lock_wait: req.lock_wait,
            location: Some(loc.canonical()),
            ..crate::cache::CacheOptions::default()
        },
    )?);
    let path = super::common::repo_cache_dir(&opened.id()).join("config");
    let mut config = match std::fs::read_to_string(&path) {
        Ok(text) => Config::parse(&text).map_err(|e| CommandError::new(e.0))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::new(),
        Err(e) => {
            return Err(CommandError::new(format!("{}: {e}", path.display())));
        }
    };
    let save = |config: &Config| -> Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, config.to_text())
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| CommandError::new(format!("{}: {e}", path.display())))
    };
    // borg adapts the recorded location as soon as a relocation was accepted.
    let here = loc.canonical();
    if config
        .get("cache", "previous_location")
        .is_some_and(|p| p != here)
    {
        config.set("cache", "previous_location", &here);
        save(&config)?;
    }
    match &req.action {
        ConfigAction::List => Ok(ConfigOutcome::Print(
            config.to_text().trim_end().to_string(),
        )),
        ConfigAction::Get => Ok(get_value(&config, section, name)),
        ConfigAction::Delete => {
            cache_validate(section, name, None)?;
            config.remove(section, name);
            save(&config)?;
            Ok(ConfigOutcome::Done)
        }
        ConfigAction::Set(value) => {
            cache_validate(section, name, Some(value))?;
            config.set(section, name, value);
            save(&config)?;
            Ok(ConfigOutcome::Done)
        }
    }
}
