//! The message layer of borg's RPC protocol (spec §9.2–§9.4), shared by the client
//! ([`RemoteRepository`](crate::repo::remote::RemoteRepository)) and the server
//! ([`serve`](crate::serve)); it sits below both and imports neither: requests and replies in the
//! dict format and in the legacy tuple format, and the positional argument order of the latter.

use crate::msgpack::Value;

/// borg's `MAX_INFLIGHT`: requests a client keeps outstanding at most (§9.5).
pub const MAX_INFLIGHT: usize = 100;

/// The version a hoard client or server announces in `negotiate` (the one borg version,
/// [`crate::version::BORG_VERSION`], as a tuple).
pub const PROTOCOL_VERSION: [i64; 4] = crate::version::BORG_VERSION_TUPLE;

/// The argument names of the legacy tuple format, in positional order (borg's `compatMap`).
pub fn compat_map(method: &str) -> Option<&'static [&'static str]> {
    Some(match method {
        "check" => &["repair", "save_space"],
        "commit" => &["save_space"],
        "rollback" | "destroy" | "__len__" | "load_key" | "break_lock" | "get_free_nonce" => &[],
        "list" => &["limit", "marker"],
        "put" => &["id", "data"],
        "get" | "delete" => &["id"],
        "save_key" => &["keydata"],
        "negotiate" => &["client_data"],
        "open" => &[
            "path",
            "create",
            "lock_wait",
            "lock",
            "exclusive",
            "append_only",
        ],
        "commit_nonce_reservation" => &["next_unreserved", "start_nonce"],
        _ => return None,
    })
}

/// hoard's additions to the protocol. A hoard server announces them in its dict-format
/// `negotiate` reply under the extra key [`HOARD_FEATURES`] (borg clients read
/// `server_version` and ignore other keys), and a hoard client calls these methods only on a
/// server that announced them. So a borg client never sees them, and a borg server is never
/// asked. They travel in the dict format only (there is no positional form).
pub mod hoard_ext {
    /// The negotiate reply's key listing the features (an array of names).
    pub const HOARD_FEATURES: &str = "hoard_features";
    /// The feature "segment information for resumable verification": the two methods below.
    pub const FEATURE_SEGMENTS: &str = "segments";
    /// `hoard_segments(marker, limit)`: the segments holding live objects after segment
    /// `marker` (nil: from the first), at most `limit`, ascending, as
    /// `[[segment, size, objects], …]` (see `repo::SegmentInfo`).
    pub const SEGMENTS: &str = "hoard_segments";
    /// `hoard_segment_objects(segments, start, limit)`: the live object ids of `segments`
    /// (each in on-disk order), concatenated; of that sequence the entries `start ..
    /// start + limit`, returned as one array per requested segment (`[[id, …], …]`). A reply
    /// with `limit` ids in all means there may be more: ask again from `start + limit`.
    pub const SEGMENT_OBJECTS: &str = "hoard_segment_objects";
    /// Segments a client asks for per `hoard_segments` call (a reply of 4 values each stays
    /// within the client's unpacker limits, `Limits::RPC_CLIENT`).
    pub const SEGMENTS_PAGE: usize = 10_000;
    /// Ids a client asks for per `hoard_segment_objects` call (within `Limits::RPC_CLIENT`).
    pub const SEGMENT_OBJECTS_PAGE: usize = 50_000;
    /// Segments per `hoard_segment_objects` call (the server unpacks arrays of at most 100).
    pub const SEGMENT_OBJECTS_MAX_SEGMENTS: usize = 64;

    /// The argument names of hoard's methods (dict format), like [`super::compat_map`] for
    /// borg's.
    pub fn method_args(method: &str) -> Option<&'static [&'static str]> {
        Some(match method {
            SEGMENTS => &["marker", "limit"],
            SEGMENT_OBJECTS => &["segments", "start", "limit"],
            _ => return None,
        })
    }
}

/// Packs a request. Dict format: `{"i", "m", "a"}`; legacy: `[1, msgid, method, [positional]]`
/// (arguments missing from `args` are sent as nil).
pub fn encode_request(dict: bool, msgid: u64, method: &str, args: &[(&str, Value)]) -> Vec<u8> {
    let v = if dict {
        Value::Map(vec![
            (Value::raw("i"), Value::int(msgid)),
            (Value::raw("m"), Value::raw(method)),
            (
                Value::raw("a"),
                Value::Map(
                    args.iter()
                        .map(|(k, v)| (Value::raw(k), v.clone()))
                        .collect(),
                ),
            ),
        ])
    } else {
        let names = compat_map(method).unwrap_or(&[]);
        let positional = names
            .iter()
            .map(|n| {
                args.iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Nil)
            })
            .collect();
        Value::Array(vec![
            Value::int(1),
            Value::int(msgid),
            Value::raw(method),
            Value::Array(positional),
        ])
    };
    v.to_bytes()
}

/// A request as the server sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The message id.
    pub msgid: Value,
    /// The method name (lossy UTF-8).
    pub method: String,
    /// Named arguments (the legacy format is mapped through [`compat_map`]).
    pub args: Vec<(String, Value)>,
    /// True for the dict format; the reply uses the same format.
    pub dict: bool,
}

impl Request {
    /// An argument by name.
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// Why a request could not be understood.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// Neither a dict-format map nor a 4-tuple: borg's `UnexpectedRPCDataFormatFromClient`.
    Format,
    /// A legacy request with too few positional arguments (Python raises `IndexError`).
    Positional(Value),
}

/// Parses one decoded value into a request.
pub fn parse_request(v: Value) -> Result<Request, RequestError> {
    match v {
        Value::Map(_) => {
            let msgid = v.get("i").cloned().ok_or(RequestError::Format)?;
            let method = v
                .get("m")
                .and_then(Value::as_bytes)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .ok_or(RequestError::Format)?;
            let args = match v.get("a") {
                Some(Value::Map(m)) => m
                    .iter()
                    .filter_map(|(k, v)| {
                        k.as_bytes()
                            .map(|k| (String::from_utf8_lossy(k).into_owned(), v.clone()))
                    })
                    .collect(),
                _ => return Err(RequestError::Format),
            };
            Ok(Request {
                msgid,
                method,
                args,
                dict: true,
            })
        }
        Value::Array(a) if a.len() == 4 => {
            let mut it = a.into_iter();
            let _type = it.next();
            let msgid = it.next().unwrap_or(Value::Nil);
            let method = it
                .next()
                .and_then(|m| {
                    m.as_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                })
                .ok_or(RequestError::Format)?;
            let positional = match it.next() {
                Some(Value::Array(p)) => p,
                _ => return Err(RequestError::Format),
            };
            let mut args = Vec::new();
            if let Some(names) = compat_map(&method) {
                // borg clients < 1.0.7 send open() with 4 arguments.
                let names = if method == "open" && positional.len() == 4 {
                    &names[..4]
                } else {
                    names
                };
                if positional.len() < names.len() {
                    return Err(RequestError::Positional(msgid));
                }
                for (n, v) in names.iter().zip(positional) {
                    args.push((n.to_string(), v));
                }
            }
            Ok(Request {
                msgid,
                method,
                args,
                dict: false,
            })
        }
        _ => Err(RequestError::Format),
    }
}

/// An error reply's contents (§9.4).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    /// The exception class name, e.g. `DoesNotExist`.
    pub class: String,
    /// The exception arguments.
    pub args: Vec<Value>,
    /// The formatted traceback lines.
    pub full: Vec<String>,
    /// The short message lines.
    pub short: Vec<String>,
    /// Whether the client should show the traceback.
    pub trace: bool,
    /// System information text.
    pub sysinfo: String,
}

impl ErrorReply {
    /// The short message on one line (what borg's `RPCError.get_message` gives, joined).
    pub fn message(&self) -> String {
        if self.short.is_empty() {
            return self.class.clone();
        }
        let joined = self.short.join("\n");
        let lines: Vec<&str> = joined
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect();
        lines.join(" ")
    }

    /// The first argument as text (`"(not available)"` when absent, as borg says for old servers).
    pub fn arg_text(&self, i: usize) -> String {
        match self.args.get(i) {
            Some(Value::Raw(b)) | Some(Value::Bin(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::Int(n)) => n.to_string(),
            _ => "(not available)".to_string(),
        }
    }
}

/// Packs a success reply in the request's format.
pub fn encode_result(dict: bool, msgid: &Value, result: Value) -> Vec<u8> {
    let v = if dict {
        Value::Map(vec![
            (Value::raw("i"), msgid.clone()),
            (Value::raw("r"), result),
        ])
    } else {
        Value::Array(vec![Value::int(1), msgid.clone(), Value::Nil, result])
    };
    v.to_bytes()
}

/// Packs an error reply in the request's format (the legacy format carries only the class).
pub fn encode_error(dict: bool, msgid: &Value, e: &ErrorReply) -> Vec<u8> {
    let lines = |l: &[String]| Value::Array(l.iter().map(Value::raw).collect());
    let v = if dict {
        Value::Map(vec![
            (Value::raw("i"), msgid.clone()),
            (Value::raw("exception_class"), Value::raw(&e.class)),
            (Value::raw("exception_args"), Value::Array(e.args.clone())),
            (Value::raw("exception_full"), lines(&e.full)),
            (Value::raw("exception_short"), lines(&e.short)),
            (Value::raw("exception_trace"), Value::Bool(e.trace)),
            (Value::raw("sysinfo"), Value::raw(&e.sysinfo)),
        ])
    } else {
        Value::Array(vec![
            Value::int(1),
            msgid.clone(),
            Value::raw(&e.class),
            Value::raw("Remote Exception (see remote log for the traceback)"),
        ])
    };
    v.to_bytes()
}

/// A reply as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The message id it answers.
    pub msgid: u64,
    /// The result, or the error.
    pub outcome: Result<Value, ErrorReply>,
}

fn text_lines(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|l| {
                l.as_bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            })
            .collect(),
        Some(Value::Raw(b)) => vec![String::from_utf8_lossy(b).into_owned()],
        _ => Vec::new(),
    }
}

/// Parses a decoded value as a reply; `None` if it is not one (borg's
/// `UnexpectedRPCDataFormatFromServer`).
pub fn parse_reply(v: Value) -> Option<Reply> {
    match &v {
        Value::Map(_) => {
            let msgid = v.get("i")?.as_u64()?;
            if let Some(class) = v.get("exception_class") {
                let class = String::from_utf8_lossy(class.as_bytes()?).into_owned();
                let args = v
                    .get("exception_args")
                    .and_then(Value::as_array)
                    .map(<[Value]>::to_vec)
                    .unwrap_or_default();
                let has_args = v.get("exception_args").is_some();
                let short = text_lines(v.get("exception_short"));
                let full = text_lines(v.get("exception_full"));
                let trace = v
                    .get("exception_trace")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let sysinfo = v
                    .get("sysinfo")
                    .and_then(Value::as_bytes)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let mut e = ErrorReply {
                    class,
                    args,
                    full,
                    short,
                    trace,
                    sysinfo,
                };
                if !has_args {
                    e.args.clear();
                }
                return Some(Reply {
                    msgid,
                    outcome: Err(e),
                });
            }
            let result = v.get("r").cloned().unwrap_or(Value::Nil);
            Some(Reply {
                msgid,
                outcome: Ok(result),
            })
        }
        Value::Array(a) if a.len() == 4 => {
            let msgid = a[1].as_u64()?;
            match &a[2] {
                Value::Nil => Some(Reply {
                    msgid,
                    outcome: Ok(a[3].clone()),
                }),
                other => {
                    let class = String::from_utf8_lossy(other.as_bytes()?).into_owned();
                    Some(Reply {
                        msgid,
                        outcome: Err(ErrorReply {
                            class,
                            args: Vec::new(),
                            full: Vec::new(),
                            short: Vec::new(),
                            trace: true,
                            sysinfo: String::new(),
                        }),
                    })
                }
            }
        }
        _ => None,
    }
}

/// A version array `[major, minor, patch, -1]` as a msgpack value.
pub fn version_value(v: [i64; 4]) -> Value {
    Value::Array(v.iter().map(|x| Value::int(*x)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_bytes_match_borg() {
        let arg = Value::Map(vec![(
            Value::raw("client_version"),
            version_value(PROTOCOL_VERSION),
        )]);
        let b = encode_request(false, 1, "negotiate", &[("client_data", arg)]);
        let mut want = vec![0x94, 0x01, 0x01, 0xa9];
        want.extend_from_slice(b"negotiate");
        want.extend_from_slice(&[0x91, 0x81, 0xae]);
        want.extend_from_slice(b"client_version");
        want.extend_from_slice(&[0x94, 0x01, 0x04, 0x05, 0xff]);
        assert_eq!(b, want);
        let reply = encode_result(
            false,
            &Value::int(1),
            Value::Map(vec![(
                Value::raw("server_version"),
                version_value(PROTOCOL_VERSION),
            )]),
        );
        assert_eq!(&reply[..4], &[0x94, 0x01, 0x01, 0xc0]);
    }

    #[test]
    fn request_round_trip_both_formats() {
        for dict in [true, false] {
            let b = encode_request(
                dict,
                7,
                "put",
                &[("id", Value::raw([1u8; 32])), ("data", Value::raw(b"x"))],
            );
            let (v, n) =
                crate::msgpack::decode_one(&b, crate::msgpack::Limits::RPC_SERVER).unwrap();
            assert_eq!(n, b.len());
            let r = parse_request(v).unwrap();
            assert_eq!(r.method, "put");
            assert_eq!(r.dict, dict);
            assert_eq!(r.arg("data"), Some(&Value::raw(b"x")));
        }
        assert_eq!(parse_request(Value::raw("junk")), Err(RequestError::Format));
    }

    #[test]
    fn error_reply_round_trip() {
        let e = ErrorReply {
            class: "ObjectNotFound".into(),
            args: vec![Value::raw("abcd"), Value::raw("/r")],
            full: vec!["Traceback\n".into()],
            short: vec!["Object with key abcd not found in repository /r.".into()],
            trace: true,
            sysinfo: "x".into(),
        };
        for dict in [true, false] {
            let b = encode_error(dict, &Value::int(3), &e);
            let (v, _) =
                crate::msgpack::decode_one(&b, crate::msgpack::Limits::RPC_CLIENT).unwrap();
            let r = parse_reply(v).unwrap();
            assert_eq!(r.msgid, 3);
            let got = r.outcome.unwrap_err();
            assert_eq!(got.class, "ObjectNotFound");
            if dict {
                assert_eq!(got, e);
            }
        }
    }
}
