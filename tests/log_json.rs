//! `--log-json` as borg 1.4.5 emits it: for the same command, hoard's records have borg's
//! types, fields and msgids (`log_message`, `file_status`, `archive_progress`,
//! `progress_percent`, `question_*`). borg 1.4.5 is the oracle; times and sizes differ, and
//! hoard's progress records carry its figures as extra keys ([`HOARD_EXTRAS`]), which the
//! comparisons leave out and the progress tests check for.

mod common;

use std::collections::BTreeSet;

use common::{borg14, Env};
use serde_json::Value;

/// Every stderr line as JSON (a line that is not JSON fails the test: a frontend reading the
/// stream would choke on it too).
fn records(stderr: &str, who: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{who}: not JSON ({e}): {l:?}")))
        .collect()
}

/// The keys hoard adds to progress records (its progress figures; borg's parsers ignore
/// unknown keys). Comparisons with borg leave them out; the tests below check they are there.
const HOARD_EXTRAS: [&str; 4] = [
    "eta_seconds",
    "bytes_per_second",
    "estimated_original_size",
    "estimated_nfiles",
];

/// The keys of a record that borg also writes.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !HOARD_EXTRAS.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// A record without its time and hoard's extra keys.
fn borg_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("time");
        for k in HOARD_EXTRAS {
            m.remove(k);
        }
    }
    v
}

/// True when every unfinished record of `kind` carries all of `extras`.
fn carries(recs: &[Value], kind: &str, extras: &[&str]) -> bool {
    let open: Vec<&Value> = of_type(recs, kind)
        .into_iter()
        .filter(|v| v["finished"] == false)
        .collect();
    !open.is_empty()
        && open
            .iter()
            .all(|v| extras.iter().all(|k| v.get(*k).is_some()))
}

fn of_type<'a>(recs: &'a [Value], t: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == t).collect()
}

/// One environment with a hoard and a borg 1.4.5 repository holding the same input.
struct Pair {
    env: Env,
    borg: String,
}

impl Pair {
    fn new() -> Option<Pair> {
        let b14 = borg14()?;
        let env = Env::new();
        let input = env.path().join("input");
        std::fs::create_dir_all(input.join("dir")).expect("mkdir");
        std::fs::write(input.join("file"), b"some content").expect("write");
        std::fs::write(input.join("dir/big"), vec![7u8; 300_000]).expect("write");
        Some(Pair {
            env,
            borg: b14.to_string_lossy().into_owned(),
        })
    }

    fn repo(&self, who: &str) -> String {
        self.env.path().join(who).to_string_lossy().into_owned()
    }

    /// Runs `args` (with `REPO` replaced by each program's repository) with both programs;
    /// returns (hoard records, borg records) and both exit codes.
    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> ((Vec<Value>, i32), (Vec<Value>, i32)) {
        let mut out = Vec::new();
        for who in ["hoard", "borg"] {
            let repo = self.repo(who);
            let argv: Vec<String> = args.iter().map(|a| a.replace("REPO", &repo)).collect();
            let mut c = if who == "hoard" {
                self.env.hoard_cmd()
            } else {
                self.env.command_for(&self.borg)
            };
            for (k, v) in vars {
                c.env(k, v);
            }
            let o = c.args(&argv).output().expect("run");
            let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
            out.push((records(&stderr, who), o.status.code().unwrap_or(-1)));
        }
        let b = out.pop().expect("borg");
        let h = out.pop().expect("hoard");
        (h, b)
    }

    /// Runs `args` with both programs without `--log-json` (output not checked).
    fn plain(&self, args: &[&str]) {
        for who in ["hoard", "borg"] {
            let repo = self.repo(who);
            let argv: Vec<String> = args.iter().map(|a| a.replace("REPO", &repo)).collect();
            let mut c = if who == "hoard" {
                self.env.hoard_cmd()
            } else {
                self.env.command_for(&self.borg)
            };
            let o = c.args(&argv).output().expect("run");
            assert!(
                o.status.success(),
                "{who} {argv:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }

    fn init_both(&self) {
        self.plain(&["init", "-e", "repokey", "REPO"]);
    }
}

#[test]
fn error_record_matches_borg() {
    let Some(p) = Pair::new() else { return };
    let ((h, hc), (b, bc)) = p.run(&["list", "--log-json", "REPO"], &[]);
    assert_eq!((hc, bc), (2, 2));
    let (h, b) = (of_type(&h, "log_message"), of_type(&b, "log_message"));
    let (h, b) = (
        h.last().expect("hoard error"),
        b.last().expect("borg error"),
    );
    assert_eq!(keys(h), keys(b));
    for k in ["levelname", "name", "msgid"] {
        assert_eq!(h[k], b[k], "{k}");
    }
    assert_eq!(h["msgid"], "Repository.DoesNotExist");
    assert!(h["time"].is_f64());
    // same text, each naming its own repository
    let hm = h["message"]
        .as_str()
        .unwrap_or_default()
        .replace("hoard", "X");
    let bm = b["message"]
        .as_str()
        .unwrap_or_default()
        .replace("borg", "X");
    assert_eq!(hm, bm);
}

#[test]
fn create_file_status_and_archive_progress_match_borg() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    let ((h, hc), (b, bc)) = p.run(
        &[
            "create",
            "--log-json",
            "--list",
            "--progress",
            "REPO::a",
            "input",
        ],
        &[],
    );
    assert_eq!((hc, bc), (0, 0));
    let status = |r: &[Value]| -> BTreeSet<(String, String)> {
        of_type(r, "file_status")
            .iter()
            .map(|v| (v["status"].to_string(), v["path"].to_string()))
            .collect()
    };
    assert_eq!(status(&h), status(&b));
    assert!(status(&h).contains(&("\"A\"".into(), "\"input/file\"".into())));
    for finished in [false, true] {
        let pick = |r: &[Value]| -> Option<BTreeSet<String>> {
            of_type(r, "archive_progress")
                .into_iter()
                .find(|v| v["finished"] == finished)
                .map(keys)
        };
        assert_eq!(pick(&h), pick(&b), "archive_progress finished={finished}");
        assert!(pick(&h).is_some());
    }
    let extras = ["estimated_original_size", "eta_seconds", "bytes_per_second"];
    assert!(carries(&h, "archive_progress", &extras), "{h:?}");
}

#[test]
fn file_warning_carries_borg_class_as_msgid() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    let ((h, hc), (b, bc)) = p.run(
        &["create", "--log-json", "REPO::a", "input", "missing"],
        &[],
    );
    assert_eq!((hc, bc), (1, 1));
    let warning = |r: &[Value]| -> Option<Value> {
        of_type(r, "log_message")
            .into_iter()
            .find(|v| v["levelname"] == "WARNING")
            .cloned()
    };
    let (h, b) = (
        warning(&h).expect("hoard warning"),
        warning(&b).expect("borg warning"),
    );
    assert_eq!(h["msgid"], b["msgid"]);
    assert_eq!(h["msgid"], "BackupFileNotFoundError");
    assert_eq!(keys(&h), keys(&b));
}

#[test]
fn extract_progress_percent_matches_borg() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    p.plain(&["create", "REPO::a", "input"]);
    let out = p.env.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let mut recs = Vec::new();
    for who in ["hoard", "borg"] {
        let dest = out.join(who);
        std::fs::create_dir_all(&dest).expect("mkdir");
        let mut c = if who == "hoard" {
            p.env.hoard_cmd()
        } else {
            p.env.command_for(&p.borg)
        };
        let o = c
            .current_dir(&dest)
            .args([
                "extract",
                "--progress",
                "--log-json",
                &format!("{}::a", p.repo(who)),
            ])
            .output()
            .expect("extract");
        assert!(o.status.success());
        recs.push(records(&String::from_utf8_lossy(&o.stderr), who));
    }
    let shape = |r: &[Value]| -> BTreeSet<(BTreeSet<String>, String, bool)> {
        of_type(r, "progress_percent")
            .iter()
            .map(|v| {
                (
                    keys(v),
                    v["msgid"].as_str().unwrap_or_default().to_string(),
                    v["finished"] == true,
                )
            })
            .collect()
    };
    assert_eq!(shape(&recs[0]), shape(&recs[1]));
    assert!(shape(&recs[0]).iter().any(|(_, m, f)| m == "extract" && *f));
    let extras = ["eta_seconds", "bytes_per_second"];
    assert!(carries(&recs[0], "progress_percent", &extras));
}

#[test]
fn prune_progress_matches_borg_record_for_record() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    for n in ["a", "b", "c", "d"] {
        p.plain(&["create", &format!("REPO::{n}"), "input"]);
    }
    let ((h, hc), (b, bc)) = p.run(
        &[
            "prune",
            "--progress",
            "--log-json",
            "--keep-last",
            "1",
            "REPO",
        ],
        &[],
    );
    assert_eq!((hc, bc), (0, 0));
    let seq = |r: &[Value]| -> Vec<Value> {
        of_type(r, "progress_percent")
            .into_iter()
            .map(borg_part)
            .collect()
    };
    assert_eq!(seq(&h), seq(&b));
    assert_eq!(seq(&h).len(), 4, "3 steps and the end");
    assert!(carries(
        &h,
        "progress_percent",
        &["eta_seconds", "bytes_per_second"]
    ));
}

#[test]
fn question_records_match_borg() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    for answer in ["NO", "maybe"] {
        let ((h, hc), (b, bc)) = p.run(
            &["delete", "--log-json", "REPO"],
            &[("BORG_DELETE_I_KNOW_WHAT_I_AM_DOING", answer)],
        );
        assert_eq!((hc, bc), (2, 2));
        let questions = |r: &[Value]| -> Vec<Value> {
            r.iter()
                .filter(|v| {
                    v["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("question_"))
                })
                .map(|v| {
                    let mut v = v.clone();
                    // the prompt names each repository's own id and path
                    if v["type"] == "question_prompt" {
                        v["message"] = Value::Null;
                    }
                    v
                })
                .collect()
        };
        assert_eq!(questions(&h), questions(&b), "answer {answer}");
        assert_eq!(questions(&h).len(), 3);
        let last = |r: &[Value]| r.last().map(|v| (v["msgid"].clone(), v["message"].clone()));
        assert_eq!(last(&h), last(&b));
    }
}

/// The `progress_message` and `progress_percent` records without their times (and hoard's
/// extra keys).
fn progress(r: &[Value]) -> Vec<Value> {
    r.iter()
        .filter(|v| v["type"] == "progress_message" || v["type"] == "progress_percent")
        .map(borg_part)
        .collect()
}

#[test]
fn create_cache_transaction_messages_match_borg() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    for name in ["a", "b"] {
        let ((h, hc), (b, bc)) = p.run(
            &[
                "create",
                "--log-json",
                "--progress",
                &format!("REPO::{name}"),
                "input",
            ],
            &[],
        );
        assert_eq!((hc, bc), (0, 0));
        // record for record: operation numbers, msgids, messages, the closing records
        assert_eq!(progress(&h), progress(&b), "create {name}");
        let msgids: Vec<String> = progress(&h)
            .iter()
            .filter(|v| v["finished"] == true)
            .map(|v| v["msgid"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(msgids, ["cache.begin_transaction", "cache.commit"]);
        // the types in borg's order: the transaction begins after the first archive progress
        let types = |r: &[Value]| -> Vec<String> {
            let mut t: Vec<String> = r
                .iter()
                .map(|v| v["type"].as_str().unwrap_or_default().to_string())
                .filter(|t| t != "log_message")
                .collect();
            t.dedup();
            t
        };
        assert_eq!(types(&h), types(&b), "create {name}");
    }
    // without --progress: none
    let ((h, _), (b, _)) = p.run(&["create", "--log-json", "REPO::c", "input"], &[]);
    assert!(progress(&h).is_empty() && progress(&b).is_empty());
}

#[test]
fn check_progress_matches_borg() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    p.plain(&["create", "REPO::a", "input"]);
    p.plain(&["create", "REPO::b", "input"]);
    for extra in [&[][..], &["--verify-data"][..]] {
        let mut args = vec!["check", "--log-json", "--progress"];
        args.extend_from_slice(extra);
        args.push("REPO");
        let ((h, hc), (b, bc)) = p.run(&args, &[]);
        assert_eq!((hc, bc), (0, 0));
        // The segment counts of the two repositories may differ: compare which indicators
        // report, in which order, with which keys, and how each ends.
        let shape = |r: &[Value]| -> Vec<(String, String, u64, bool, BTreeSet<String>)> {
            let mut s: Vec<_> = progress(r)
                .iter()
                .map(|v| {
                    (
                        v["type"].as_str().unwrap_or_default().to_string(),
                        v["msgid"].as_str().unwrap_or_default().to_string(),
                        v["operation"].as_u64().unwrap_or(0),
                        v["finished"] == true,
                        keys(v),
                    )
                })
                .collect();
            s.dedup();
            s
        };
        assert_eq!(shape(&h), shape(&b), "{args:?}");
        let msgids: Vec<String> = shape(&h).into_iter().filter(|s| s.3).map(|s| s.1).collect();
        let want: &[&str] = if extra.is_empty() {
            &["repository.check", "check.rebuild_refcounts"]
        } else {
            &[
                "repository.check",
                "check.verify_data",
                "check.rebuild_refcounts",
            ]
        };
        assert_eq!(msgids, want, "{args:?}");
        let first = progress(&h)[0].clone();
        assert_eq!(first["message"], "Checking segments 0.0%", "{first}");
        assert_eq!(first["current"], 1);
        assert!(carries(
            &h,
            "progress_percent",
            &["eta_seconds", "bytes_per_second"]
        ));
    }
}

#[test]
fn library_messages_have_borg_logger_names() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    p.plain(&["create", "REPO::a", "input"]);
    let mut shared = 0;
    // a resync of a deleted cache, a create, a check: each program logs at --debug
    for args in [
        &["delete", "--cache-only", "REPO"][..],
        &["list", "--debug", "--log-json", "REPO"][..],
        &["create", "--debug", "--log-json", "REPO::b", "input"][..],
        &["check", "--debug", "--log-json", "REPO"][..],
    ] {
        let ((h, _), (b, _)) = p.run(args, &[]);
        let names = |r: &[Value]| -> std::collections::BTreeMap<String, String> {
            of_type(r, "log_message")
                .into_iter()
                .map(|v| {
                    (
                        v["message"].as_str().unwrap_or_default().to_string(),
                        v["name"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        };
        let (hn, bn) = (names(&h), names(&b));
        for (message, name) in &hn {
            assert!(
                !name.starts_with("hoard"),
                "{args:?}: {message:?} logged as {name}"
            );
            if let Some(bname) = bn.get(message) {
                assert_eq!(name, bname, "{args:?}: {message:?}");
                shared += 1;
            }
        }
    }
    assert!(shared >= 5, "only {shared} messages in common");
}

/// `create --stats --log-json`: the stats block comes as borg's `log_message` records of
/// `borg.output.stats`, written as borg writes them (Python's `json.dumps`: borg's key order,
/// `", "` / `": "` separators), one record a line, as many as borg's.
#[test]
fn create_stats_lines_are_borgs_log_records() {
    let Some(p) = Pair::new() else { return };
    p.init_both();
    let mut shapes = Vec::new();
    for who in ["hoard", "borg"] {
        let repo = format!("{}::a", p.repo(who));
        let mut c = if who == "hoard" {
            p.env.hoard_cmd()
        } else {
            p.env.command_for(&p.borg)
        };
        let o = c
            .args(["create", "--log-json", "--stats", &repo, "input"])
            .output()
            .expect("run");
        assert!(o.status.success(), "{who}: {o:?}");
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        // each record without its time and message: what stays is borg's frame
        let frames: Vec<String> = stderr
            .lines()
            .filter(|l| l.contains("\"borg.output.stats\""))
            .map(|l| {
                let head = l.split("\"time\": ").next().unwrap_or("");
                let tail = l.rsplit("\", \"levelname\"").next().unwrap_or("");
                format!("{head}…{tail}")
            })
            .collect();
        shapes.push(frames);
    }
    let frame = "{\"type\": \"log_message\", …: \"INFO\", \"name\": \"borg.output.stats\"}";
    assert!(shapes[0].len() > 5, "{:?}", shapes[0]);
    assert!(shapes[0].iter().all(|f| f == frame), "{:?}", shapes[0]);
    assert_eq!(shapes[0], shapes[1]);
}
