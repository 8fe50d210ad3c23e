//! `debug dump-archive-items`, `dump-archive`, `dump-manifest`, `dump-repo-objs`,
//! `search-repo-objs` and `dump-hints`: decoded views of repository objects in borg 1.4.5's
//! file names and JSON layout (see [`super::pyjson`]).

use std::io::Write;

use crate::archive::objects::decode_object;
use crate::archive::MANIFEST_ID;
use crate::location::{Location, Proto};
use crate::msgpack::{self, Limits, StreamDecoder, Value};
use crate::repo::debug::EntryKind;
use crate::repo::{LocalRepository, ObjectId, OpenOptions, LIST_SCAN_LIMIT};
use crate::security::Confirm;

use super::pyjson::{self, PyValue};
use super::{key_for_object, open_plain, OpenFlags};
use crate::commands::common::{self, Access, CommandError, Opened, Result};

/// Opens the output of a dump when the command has something to write (borg opens it only
/// after the archive or manifest was found): a file, or stdout for `-`.
pub type OutputOpener<'a> = &'a mut dyn FnMut() -> Result<Box<dyn Write>>;

fn write_err(e: std::io::Error) -> CommandError {
    CommandError::new(format!(
        "cannot write the dump: {}",
        crate::platform::strerror(&e)
    ))
}

fn open_manifest(loc: &Location, flags: OpenFlags, confirm: Confirm<'_>) -> Result<Opened> {
    let access = Access {
        exclusive: false,
        lock_wait: flags.lock_wait,
        lock: flags.lock,
    };
    // borg: compatibility=Manifest.NO_OPERATION_CHECK (no feature flags checked)
    common::open_with_manifest(loc, &access, &[], confirm)
}

fn archive_name(loc: &Location) -> Result<&str> {
    loc.archive
        .as_deref()
        .ok_or_else(|| CommandError::new("No archive specified"))
}

/// `debug dump-archive-items REPO::ARCHIVE`: writes each item-stream chunk of the archive,
/// decrypted and decompressed, to `NNNNNN_<id>.items` in the current directory.
pub fn dump_archive_items(
    loc: &Location,
    flags: OpenFlags,
    confirm: Confirm<'_>,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let name = archive_name(loc)?;
    let mut opened = open_manifest(loc, flags, confirm)?;
    let (_, meta) = crate::commands::list::load_archive(&mut opened, name.as_bytes())?;
    for (i, id) in meta.items.iter().enumerate() {
        let data = opened.store.get(id, None)?;
        let filename = format!("{i:06}_{}.items", hex::encode(id));
        say(&format!("Dumping {filename}"));
        write_file(&filename, &data)?;
    }
    say("Done.");
    Ok(())
}

fn write_file(name: &str, data: &[u8]) -> Result<()> {
    std::fs::write(name, data)
        .map_err(|e| CommandError::new(format!("{name}: {}", crate::platform::strerror(&e))))
}

/// The decoded manifest as msgpack (borg decodes it without looking at feature flags).
fn raw_manifest(opened: &mut Opened) -> Result<Value> {
    let plain = opened.store.get(&MANIFEST_ID, None)?;
    msgpack::decode_all(&plain, Limits::MANIFEST)
        .map_err(|e| CommandError::new(format!("Manifest cannot be decoded: {e}")))
}

/// `debug dump-manifest REPO PATH`: the manifest as JSON (`json.dump(indent=4)`, no newline
/// at the end, as borg writes it).
pub fn dump_manifest(
    loc: &Location,
    flags: OpenFlags,
    confirm: Confirm<'_>,
    open_out: OutputOpener<'_>,
) -> Result<()> {
    let mut opened = open_manifest(loc, flags, confirm)?;
    let manifest = raw_manifest(&mut opened)?;
    let text = pyjson::dumps(&pyjson::prepare(&manifest));
    let mut out = open_out()?;
    out.write_all(text.as_bytes()).map_err(write_err)?;
    out.flush().map_err(write_err)
}

/// `debug dump-archive REPO::ARCHIVE PATH`: the archive's manifest entry, metadata and every
/// item as one JSON document, streamed item by item in borg's layout.
pub fn dump_archive(
    loc: &Location,
    flags: OpenFlags,
    confirm: Confirm<'_>,
    open_out: OutputOpener<'_>,
) -> Result<()> {
    let name = archive_name(loc)?;
    let mut opened = open_manifest(loc, flags, confirm)?;
    let manifest = raw_manifest(&mut opened)?;
    let entry = manifest
        .get("archives")
        .and_then(Value::as_map)
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_bytes() == Some(name.as_bytes()))
                .map(|(_, v)| v.clone())
        })
        .ok_or_else(|| crate::commands::list::does_not_exist(name.as_bytes()))?;
    let id: ObjectId = entry
        .get("id")
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| CommandError::new(format!("Manifest entry of archive {name} has no id")))?;
    let indent = |v: &PyValue| pyjson::indent(&pyjson::dumps(v), "    ");
    let mut out = open_out()?;
    let mut w = |s: &str| out.write_all(s.as_bytes()).map_err(write_err);
    w("{\n")?;
    w(&format!(
        "    \"_name\": {},\n",
        pyjson::string_literal(name)
    ))?;
    w("    \"_manifest_entry\":\n")?;
    w(&indent(&pyjson::prepare(&entry)))?;
    w(",\n")?;
    let meta_plain = opened.store.get(&id, None)?;
    let meta = msgpack::decode_all(&meta_plain, Limits::ARCHIVE).map_err(|e| {
        CommandError::new(format!("Archive {name}: metadata cannot be decoded: {e}"))
    })?;
    w("    \"_meta\":\n")?;
    w(&indent(&pyjson::prepare(&meta)))?;
    w(",\n")?;
    w("    \"_items\": [\n")?;
    let item_ids: Vec<ObjectId> = match meta.get("items").and_then(Value::as_array) {
        Some(ids) => ids
            .iter()
            .map(|v| {
                v.as_bytes()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| CommandError::new(format!("Archive {name}: bad item-stream id")))
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let mut decoder = StreamDecoder::new(Limits::ITEM);
    let mut first = true;
    for id in &item_ids {
        let data = opened.store.get(id, None)?;
        decoder.feed(&data);
        loop {
            match decoder.next_value() {
                Ok(Some(item)) => {
                    if !first {
                        w(",\n")?;
                    }
                    first = false;
                    w(&indent(&pyjson::prepare(&item)))?;
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(CommandError::new(format!(
                        "Archive {name}: item stream chunk {} at offset {}: {e}",
                        hex::encode(id),
                        decoder.offset()
                    )))
                }
            }
        }
    }
    w("\n")?;
    w("    ]\n}\n")?;
    out.flush().map_err(write_err)
}

/// A local (or object-storage) repository opened as [`LocalRepository`], for what only the
/// segment files can tell (`--ghost`, `dump-hints`); borg has no remote form of these either.
fn open_local(loc: &Location, flags: OpenFlags, what: &str) -> Result<LocalRepository> {
    let opts = OpenOptions {
        exclusive: flags.exclusive,
        lock_wait: Some(flags.lock_wait),
        lock: flags.lock,
        ..OpenOptions::default()
    };
    match loc.proto {
        Proto::File => Ok(LocalRepository::open(&loc.local_path(), &opts)?),
        Proto::S3 => {
            let store = crate::repo::objstore::store_for(loc)?;
            Ok(LocalRepository::open_obj(&store, &opts)?)
        }
        Proto::Ssh => Err(CommandError::new(format!(
            "{what} is only supported for local repositories"
        ))),
    }
}

/// What `dump-repo-objs` is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct RepoObjsOptions {
    /// `--ghost`: every segment entry, committed or not, deleted or not, and the commits.
    pub ghost: bool,
    /// `--segment`: only this segment (with `--ghost`).
    pub segment: Option<u32>,
    /// `--offset`: only entries up to this offset, starting there (with `--ghost`).
    pub offset: Option<u32>,
}

fn dump_name(
    i: u64,
    id: Option<&ObjectId>,
    tag: Option<&str>,
    segment: Option<u32>,
    offset: Option<u32>,
) -> String {
    let mut name = format!("{i:08}");
    if let Some(s) = segment {
        name.push_str(&format!("_{s}"));
    }
    if let Some(o) = offset {
        name.push_str(&format!("_{o}"));
    }
    if let Some(t) = tag {
        name.push('_');
        name.push_str(t);
    }
    if let Some(id) = id {
        name.push('_');
        name.push_str(&hex::encode(id));
    }
    name.push_str(".obj");
    name
}

fn decode_for_dump(key: &crate::crypto::Key, id: &ObjectId, object: &[u8]) -> Result<Vec<u8>> {
    decode_object(key, id, object, None).map_err(|e| {
        CommandError::with_id(
            format!("Object {} cannot be decoded: {e}", hex::encode(id)),
            "IntegrityError",
        )
    })
}

/// `debug dump-repo-objs REPO`: every live object (decrypted, decompressed) in on-disk order
/// to `NNNNNNNN_<id>.obj`; with `--ghost`, every segment entry to
/// `NNNNNNNN_<segment>_<offset>_<put|del|commit>[_<id>].obj`. Segment read errors met with
/// `--ghost` go to `warn` and the segment is skipped, as borg does.
pub fn dump_repo_objs(
    loc: &Location,
    flags: OpenFlags,
    opts: RepoObjsOptions,
    say: &mut dyn FnMut(&str),
    warn: &mut dyn FnMut(&str),
) -> Result<()> {
    if opts.ghost {
        return dump_ghosts(loc, flags, opts, say, warn);
    }
    for_each_object(loc, flags, &mut |i, id, data| {
        let filename = dump_name(i, Some(id), None, None, None);
        say(&format!("Dumping {filename}"));
        write_file(&filename, &data)
    })?;
    say("Done.");
    Ok(())
}

/// What [`for_each_object`] calls for each object: its number, its id and its plaintext.
type ObjectVisitor<'a> = &'a mut dyn FnMut(u64, &ObjectId, Vec<u8>) -> Result<()>;

/// Calls `visit(i, id, data)` for every live object of the repository, `i` counting from 0,
/// in on-disk order (`scan`), each decrypted and decompressed with the key the first object
/// needs (borg's `dump-repo-objs` and `search-repo-objs` walk).
fn for_each_object(loc: &Location, flags: OpenFlags, visit: ObjectVisitor<'_>) -> Result<()> {
    let mut repo = open_plain(loc, flags)?;
    let first = repo.list(Some(1), None)?;
    let Some(first_id) = first.first() else {
        return Ok(());
    };
    let object = repo.get(first_id)?;
    let key = key_for_object(repo.as_mut(), &object, loc)?;
    let mut marker: Option<ObjectId> = None;
    let mut i = 0u64;
    loop {
        let ids = repo.scan(Some(LIST_SCAN_LIMIT), marker.as_ref())?;
        let Some(last) = ids.last() else {
            return Ok(());
        };
        marker = Some(*last);
        for id in &ids {
            let object = repo.get(id)?;
            visit(i, id, decode_for_dump(&key, id, &object)?)?;
            i += 1;
        }
    }
}

fn dump_ghosts(
    loc: &Location,
    flags: OpenFlags,
    opts: RepoObjsOptions,
    say: &mut dyn FnMut(&str),
    warn: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut repo = open_local(loc, flags, "--ghost")?;
    // the key, without depending on a manifest: from the first PUT anywhere
    let mut first_put: Option<Vec<u8>> = None;
    repo.scan_low_level(
        None,
        None,
        &mut |e| {
            if e.kind == EntryKind::Put {
                first_put = e.data;
                return Ok(false);
            }
            Ok(true)
        },
        &mut |_| {},
    )?;
    let key = match first_put {
        Some(object) => Some(key_for_object(&mut repo, &object, loc)?),
        None => None,
    };
    let mut i = 0u64;
    let mut failure: Option<CommandError> = None;
    repo.scan_low_level(
        opts.segment,
        opts.offset,
        &mut |e| {
            let (tag, data) = match e.kind {
                EntryKind::Put => {
                    let (Some(id), Some(object), Some(key)) = (&e.id, &e.data, &key) else {
                        return Ok(true);
                    };
                    match decode_for_dump(key, id, object) {
                        Ok(d) => ("put", d),
                        Err(err) => {
                            failure = Some(err);
                            return Ok(false);
                        }
                    }
                }
                EntryKind::Delete => ("del", Vec::new()),
                EntryKind::Commit => ("commit", Vec::new()),
            };
            let id = if e.kind == EntryKind::Commit {
                None
            } else {
                e.id.as_ref()
            };
            let filename = dump_name(i, id, Some(tag), Some(e.segment), Some(e.offset));
            say(&format!("Dumping {filename}"));
            if let Err(err) = write_file(&filename, &data) {
                failure = Some(err);
                return Ok(false);
            }
            i += 1;
            Ok(true)
        },
        &mut |m| warn(&m),
    )?;
    if let Some(err) = failure {
        return Err(err);
    }
    say("Done.");
    Ok(())
}

/// What `search-repo-objs` looks for: `hex:…` or `str:…`.
pub fn parse_search_term(wanted: &str) -> Result<Vec<u8>> {
    let bytes = if let Some(h) = wanted.strip_prefix("hex:") {
        hex::decode(h).ok()
    } else {
        wanted.strip_prefix("str:").map(|s| s.as_bytes().to_vec())
    };
    match bytes {
        Some(b) if !b.is_empty() => Ok(b),
        _ => Err(super::command_error(
            "search term needs to be hex:123abc or str:foobar style",
        )),
    }
}

fn finding(info: &str, wanted: &[u8], data: &[u8], offset: usize) -> String {
    const CONTEXT: usize = 32;
    let before = &data[offset.saturating_sub(CONTEXT)..offset];
    let end = (offset + wanted.len()).min(data.len());
    let after = &data[end..(end + CONTEXT).min(data.len())];
    format!(
        "{info}: {} {} {} == {} {} {}",
        hex::encode(before),
        hex::encode(wanted),
        hex::encode(after),
        crate::python::bytes_repr(before),
        crate::python::bytes_repr(wanted),
        crate::python::bytes_repr(after)
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    let mut n = 0;
    let mut start = 0;
    while let Some(p) = find(&haystack[start..], needle) {
        n += 1;
        start += p + needle.len();
    }
    n
}

/// `debug search-repo-objs REPO WANTED`: every live object (decrypted, decompressed) that
/// contains `WANTED`, and every pair of consecutive objects (on-disk order) it spans, with 32
/// bytes of context, in borg's line format.
pub fn search_repo_objs(
    loc: &Location,
    flags: OpenFlags,
    wanted: &str,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    const CONTEXT: usize = 32;
    let wanted = parse_search_term(wanted)?;
    let mut last: Option<(ObjectId, Vec<u8>)> = None;
    let w = wanted.len();
    for_each_object(loc, flags, &mut |i, id, data| {
        // the sequence crossing the border of the previous object and this one
        if let Some((prev_id, prev)) = &last {
            if w > 1 {
                let tail = &prev[prev.len().saturating_sub(w - 1)..];
                let head = &data[..(w - 1).min(data.len())];
                let boundary = [tail, head].concat();
                if find(&boundary, &wanted).is_some() {
                    let tail = &prev[prev.len().saturating_sub(w - 1 + CONTEXT)..];
                    let head = &data[..(w - 1 + CONTEXT).min(data.len())];
                    let boundary = [tail, head].concat();
                    if let Some(off) = find(&boundary, &wanted) {
                        let info = format!("{i} {} | {}", hex::encode(prev_id), hex::encode(id));
                        say(&finding(&info, &wanted, &boundary, off));
                    }
                }
            }
        }
        let n = count(&data, &wanted);
        if n > 0 {
            if let Some(off) = find(&data, &wanted) {
                let info = format!("{i} {} #{n}", hex::encode(id));
                say(&finding(&info, &wanted, &data, off));
            }
        }
        last = Some((*id, data));
        if (i + 1).is_multiple_of(10000) {
            say(&format!("{} objects processed.", i + 1));
        }
        Ok(())
    })?;
    say("Done.");
    Ok(())
}

/// `debug dump-hints REPO PATH`: the hints of the last commit as JSON (segments, compact,
/// storage_quota_use, shadow_index).
pub fn dump_hints(loc: &Location, flags: OpenFlags, open_out: OutputOpener<'_>) -> Result<()> {
    let mut repo = open_local(
        loc,
        OpenFlags {
            exclusive: true,
            ..flags
        },
        "dump-hints",
    )?;
    let hints = repo.current_hints()?;
    let seg_map = |m: &std::collections::BTreeMap<u32, i64>| {
        PyValue::Dict(
            m.iter()
                .map(|(k, v)| (k.to_string(), PyValue::Int(i128::from(*v))))
                .collect(),
        )
    };
    let value = PyValue::Dict(vec![
        ("segments".into(), seg_map(&hints.segments)),
        ("compact".into(), seg_map(&hints.compact)),
        (
            "storage_quota_use".into(),
            PyValue::Int(i128::from(hints.storage_quota_use)),
        ),
        (
            "shadow_index".into(),
            PyValue::Dict(
                hints
                    .shadow_index
                    .iter()
                    .map(|(k, segs)| {
                        (
                            hex::encode(k),
                            PyValue::List(
                                segs.iter().map(|s| PyValue::Int(i128::from(*s))).collect(),
                            ),
                        )
                    })
                    .collect(),
            ),
        ),
    ]);
    let mut out = open_out()?;
    out.write_all(pyjson::dumps(&value).as_bytes())
        .map_err(write_err)?;
    out.flush().map_err(write_err)
}
