//! Prune equivalence with borg 1.2.4:
//! * the pure policy (`hoard::commands::prune_policy`) against borg's own `prune_within` /
//!   `prune_split` (imported from the installed borg with `python3`), on generated archive sets
//!   and rule combinations, in several time zones (UTC and zones with DST);
//! * `hoard prune --dry-run --list` against `borg prune --dry-run --list` on real repositories,
//!   line by line, and on 20 generated repositories with 220 random rule sets (UTC and
//!   Europe/Berlin, checkpoints, globs and prefixes).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{archive, arg, lines, Env};
use hoard::commands::prune_policy::{self, Candidate, Decision, PeriodRule, Rules};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The zones the policy is compared in; each runs in a child process with `TZ` set from the start.
const ZONES: [&str; 4] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
];

/// Cases per zone (4 zones → 600 cases).
const CASES_PER_ZONE: usize = 150;

const PY_REFERENCE: &str = r#"
import json, re, sys
from datetime import datetime, timezone
from collections import namedtuple
import borg.helpers.misc as misc
from borg.helpers import prune_within, prune_split, PRUNING_PATTERNS

Arch = namedtuple('Arch', 'name id ts')
data = json.load(sys.stdin)
out = []
for case in data:
    now = datetime.fromtimestamp(case['now_us'] // 1000000, timezone.utc).replace(
        microsecond=case['now_us'] % 1000000)
    class FixedNow(datetime):
        @classmethod
        def now(cls, tz=None):
            return now
    misc.datetime = FixedNow
    archs = []
    for (name, us, idx) in case['archives']:
        ts = datetime.fromtimestamp(us // 1000000, timezone.utc).replace(microsecond=us % 1000000)
        archs.append(Arch(name, idx, ts))
    # the manifest is loaded in name order; list(sort_by=['ts'], reverse=True)
    archs.sort(key=lambda a: a.name)
    archs.sort(key=lambda a: a.ts)
    archs.reverse()
    checkpoint_re = r'\.checkpoint(\.\d+)?'
    is_checkpoint = re.compile(r'(%s)\Z' % checkpoint_re).search
    checkpoints = [a for a in archs if is_checkpoint(a.name)]
    keep_checkpoints = checkpoints[:1] if archs and checkpoints and archs[0] is checkpoints[0] else []
    checkpoints = set(checkpoints)
    archives = [a for a in archs if a not in checkpoints]
    keep = []
    kept_because = {}
    if case['within'] is not None:
        keep += prune_within(archives, case['within'], kept_because)
    for rule in PRUNING_PATTERNS.keys():
        num = case['rules'].get(rule)
        if num is not None:
            keep += prune_split(archives, rule, num, kept_because)
    to_delete = (set(archives) | checkpoints) - (set(keep) | set(keep_checkpoints))
    res = []
    for a in archs:
        if a in to_delete:
            res.append([a.name, 'prune'])
        elif is_checkpoint(a.name):
            res.append([a.name, 'checkpoint'])
        else:
            res.append([a.name, '%s #%d' % kept_because[a.id]])
    out.append(res)
json.dump(out, sys.stdout)
"#;

/// Start of 2015 and end of 2026 (UTC seconds).
const T0: i64 = 1_420_070_400;
const T1: i64 = 1_798_761_600;

/// DST transitions worth crowding around (UTC seconds): Europe, US and Lord Howe switches.
const DST_POINTS: [i64; 6] = [
    1_711_846_800, // 2024-03-31 01:00 UTC, Europe spring forward
    1_729_990_800, // 2024-10-27 01:00 UTC, Europe fall back
    1_710_054_000, // 2024-03-10 07:00 UTC, US spring forward
    1_730_613_600, // 2024-11-03 06:00 UTC, US fall back
    1_712_413_800, // 2024-04-06 14:30 UTC, Lord Howe (30 min shift)
    1_727_879_400, // 2024-10-05 14:30 UTC, Lord Howe
];

/// A generated case: archives (name, µs) and rules.
struct Case {
    archives: Vec<(String, i64)>,
    rules: Rules,
    now_us: i64,
}

/// A random case; the borg 1.4 rules (`quarterly_*`) only when `quarterly` (the reference is
/// borg 1.4's code), and never both of them (borg's argparse makes them exclusive).
fn gen_case(rng: &mut StdRng, quarterly: bool) -> Case {
    let n = rng.gen_range(1..60);
    let mut times: Vec<i64> = Vec::new();
    let style = rng.gen_range(0..4);
    let mut base = match style {
        0 => DST_POINTS[rng.gen_range(0..DST_POINTS.len())] - rng.gen_range(0..2 * 86_400),
        _ => rng.gen_range(T0..T1),
    };
    for _ in 0..n {
        let step = match (style, rng.gen_range(0..10)) {
            (0, _) => rng.gen_range(0..3 * 3600),
            (1, 0..=5) => rng.gen_range(0..86_400 * 40),
            (1, _) => rng.gen_range(0..7200),
            (2, 0) => 0, // an exact tie
            (2, _) => rng.gen_range(0..86_400 * 3),
            (_, 0..=2) => rng.gen_range(0..400 * 86_400),
            (_, _) => rng.gen_range(0..120),
        };
        base += step;
        times.push(base * 1_000_000 + rng.gen_range(0..1_000_000));
    }
    let mut archives = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let name = match rng.gen_range(0..12) {
            0 => format!("host-{i:03}.checkpoint"),
            1 => format!("host-{i:03}.checkpoint.{}", rng.gen_range(1..12)),
            _ => format!("host-{i:03}"),
        };
        archives.push((name, *t));
    }
    let mut rules = Rules::default();
    loop {
        let quarter_rule = if rng.gen_bool(0.5) {
            PeriodRule::Quarterly13Weekly
        } else {
            PeriodRule::Quarterly3Monthly
        };
        for rule in PeriodRule::ALL {
            let is_quarterly = matches!(
                rule,
                PeriodRule::Quarterly13Weekly | PeriodRule::Quarterly3Monthly
            );
            if is_quarterly && (!quarterly || rule != quarter_rule) {
                rules.set(rule, None);
                continue;
            }
            let n = if rng.gen_bool(0.35) {
                Some(rng.gen_range(-1..8))
            } else {
                None
            };
            rules.set(rule, n);
        }
        rules.within_hours = if rng.gen_bool(0.25) {
            let unit = ["1H", "24", "168", "744", "8760"][rng.gen_range(0..5)];
            let mult: i64 = if unit == "1H" {
                1
            } else {
                unit.parse().unwrap()
            };
            Some(rng.gen_range(1..40) * mult)
        } else {
            None
        };
        if rules.any() {
            break;
        }
    }
    let last = times.iter().copied().max().unwrap_or(0);
    let now_us = last + rng.gen_range(0..90 * 86_400) * 1_000_000;
    Case {
        archives,
        rules,
        now_us,
    }
}

fn hoard_decisions(case: &Case) -> Vec<(String, String)> {
    let cands: Vec<Candidate> = case
        .archives
        .iter()
        .enumerate()
        .map(|(i, (name, t))| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Candidate {
                name: name.clone(),
                time_us: *t,
                id,
            }
        })
        .collect();
    prune_policy::decide(&cands, &case.rules, case.now_us, &chrono::Local)
        .into_iter()
        .map(|(i, d)| {
            let what = match d {
                Decision::Prune => "prune".to_string(),
                Decision::KeepCheckpoint => "checkpoint".to_string(),
                Decision::Keep { reason, number } => format!("{reason} #{number}"),
            };
            (cands[i].name.clone(), what)
        })
        .collect()
}

fn case_json(case: &Case) -> serde_json::Value {
    let mut rules = serde_json::Map::new();
    for (rule, n) in PeriodRule::ALL.iter().zip(case.rules.counts.iter()) {
        if let Some(n) = n {
            rules.insert(rule.name().into(), (*n).into());
        }
    }
    serde_json::json!({
        "now_us": case.now_us,
        "within": case.rules.within_hours,
        "rules": rules,
        "archives": case.archives.iter().enumerate()
            .map(|(i, (n, t))| serde_json::json!([n, t, i])).collect::<Vec<_>>(),
    })
}

/// The child half: runs in a process whose `TZ` was set by [`policy_matches_borg_python`].
#[test]
#[ignore = "run by policy_matches_borg_python in a child process"]
fn policy_child() {
    let zone = std::env::var("TZ").unwrap_or_default();
    let seed = zone
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = StdRng::seed_from_u64(seed);
    let python = std::env::var("HOARD_PRUNE_REFERENCE_PY").unwrap_or("/usr/bin/python3".into());
    let quarterly = std::env::var("HOARD_PRUNE_QUARTERLY").as_deref() == Ok("1");
    let cases: Vec<Case> = (0..CASES_PER_ZONE)
        .map(|_| gen_case(&mut rng, quarterly))
        .collect();
    let input = serde_json::Value::Array(cases.iter().map(case_json).collect()).to_string();
    let mut py = Command::new(&python);
    // Sensitivity check hook: a different zone for the reference must make the test fail.
    if let Ok(other) = std::env::var("HOARD_TEST_REFERENCE_TZ") {
        py.env("TZ", other);
    }
    let mut child = py
        .arg("-c")
        .arg(PY_REFERENCE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python output");
    assert!(out.status.success(), "python reference failed");
    let expected: Vec<Vec<(String, String)>> =
        serde_json::from_slice(&out.stdout).expect("python json");
    assert_eq!(expected.len(), cases.len());
    for (i, (case, want)) in cases.iter().zip(expected.iter()).enumerate() {
        let got = hoard_decisions(case);
        assert_eq!(
            &got, want,
            "TZ={zone} case {i} differs; rules {:?}, now {}\narchives {:?}",
            case.rules, case.now_us, case.archives
        );
    }
    println!("compared {} cases in TZ={zone} with {python}", cases.len());
}

#[test]
fn policy_matches_borg_python() {
    if !common::borg_available() {
        return;
    }
    let exe = std::env::current_exe().expect("test exe");
    // borg 1.2.4's rules with Debian's borg; all of borg 1.4.5's (13weekly, 3monthly) with the
    // python of the borg 1.4 venv.
    let mut references = vec![("/usr/bin/python3".to_string(), "0")];
    if let Some(b14) = common::borg14() {
        let py = b14.with_file_name("python");
        references.push((py.to_string_lossy().into_owned(), "1"));
    }
    for zone in ZONES
        .iter()
        .flat_map(|z| references.iter().map(move |r| (*z, r)))
    {
        let (zone, (python, quarterly)) = zone;
        let out = Command::new(&exe)
            .args(["--ignored", "--exact", "policy_child", "--nocapture"])
            .env("TZ", zone)
            .env("HOARD_PRUNE_REFERENCE_PY", python)
            .env("HOARD_PRUNE_QUARTERLY", quarterly)
            .output()
            .expect("spawn child test");
        assert!(
            out.status.success(),
            "policy differs from borg ({python}) in TZ={zone}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("compared {CASES_PER_ZONE} cases")),
            "{text}"
        );
    }
}

/// The `--list` lines of a prune run (stderr minus relocation chatter).
fn list_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| !l.starts_with("Warning: The repository at location"))
        .filter(|l| !l.starts_with("Do you want to continue"))
        .map(str::to_string)
        .collect()
}

#[test]
fn dry_run_list_matches_borg_on_real_repositories() {
    if !common::borg_available() {
        return;
    }
    let env = common::Env::new();
    let exe = env.private_hoard();
    let repo = env.path().join("repo");
    let out = env
        .borg_cmd()
        .args(["init", "-e", "none"])
        .arg(&repo)
        .output()
        .expect("borg init");
    assert!(out.status.success());
    let mut rng = StdRng::seed_from_u64(20261127);
    // 28 archives over five years, some on the same day, some around Berlin's DST switches,
    // a few checkpoints and a second name prefix.
    let mut archives: Vec<(String, String)> = Vec::new();
    let mut t: i64 = 1_546_300_800; // 2019-01-01
    for i in 0..28 {
        t += match i % 4 {
            0 => rng.gen_range(30..200) * 86_400,
            1 => rng.gen_range(60..20_000),
            2 => rng.gen_range(1..10) * 86_400,
            _ => rng.gen_range(3_600..200_000),
        };
        if i == 20 {
            t = 1_729_989_000; // 2024-10-27 00:30 UTC: Berlin fall-back night
        }
        let prefix = if i % 5 == 0 { "web" } else { "db" };
        let suffix = match i {
            9 => ".checkpoint",
            17 => ".checkpoint.2",
            27 => ".checkpoint",
            _ => "",
        };
        let name = format!("{prefix}-{i:02}{suffix}");
        let ts = chrono::DateTime::from_timestamp(t, 0)
            .expect("time")
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        archives.push((name, ts));
    }
    let empty = env.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    for (name, ts) in &archives {
        let out = env
            .borg_cmd()
            .args(["create", "--timestamp", ts])
            .arg(format!("{}::{name}", repo.display()))
            .arg(&empty)
            .output()
            .expect("borg create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cases: &[&[&str]] = &[
        &["-d", "3"],
        &["--keep-last", "4"],
        &["-d", "2", "-w", "2", "-m", "3", "-y", "-1"],
        &["-H", "5", "--keep-minutely", "2"],
        &["-w", "-1"],
        &["-m", "6", "-a", "db-*"],
        &["-y", "2", "-P", "web"],
        &["--keep-within", "3y", "-m", "2"],
        &["--keep-secondly", "2", "-d", "0", "-y", "1"],
        &["-d", "10", "-w", "4", "-m", "12", "-y", "10"],
        &["-w", "3", "-a", "*-2?"],
        &["--keep-within", "100w"],
    ];
    let mut compared = 0;
    for (k, rule_args) in cases.iter().enumerate() {
        for tz in ["Europe/Berlin", "UTC"] {
            if k % 2 == 1 && tz == "UTC" {
                continue;
            }
            let mut args: Vec<String> = vec!["prune".into(), "--dry-run".into(), "--list".into()];
            args.extend(rule_args.iter().map(|s| s.to_string()));
            args.push(repo.display().to_string());
            let b = env
                .borg_cmd()
                .env("TZ", tz)
                .args(&args)
                .output()
                .expect("borg");
            let h = env
                .command_at(&exe)
                .env("TZ", tz)
                .args(&args)
                .output()
                .expect("hoard");
            let (bs, hs) = (
                String::from_utf8_lossy(&b.stderr).into_owned(),
                String::from_utf8_lossy(&h.stderr).into_owned(),
            );
            assert_eq!(b.status.code(), h.status.code(), "{args:?}\n{bs}\n{hs}");
            // borg 1.2.4 pads the message to 40 columns, 1.4 (and hoard) to 44.
            let squeeze = |lines: Vec<String>| -> Vec<String> {
                lines
                    .iter()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect()
            };
            assert_eq!(
                squeeze(list_lines(&bs)),
                squeeze(list_lines(&hs)),
                "TZ={tz} {args:?}"
            );
            assert!(!list_lines(&bs).is_empty());
            compared += 1;
        }
    }
    assert!(compared >= 10);
    // borg 1.4.5: the quarterly rules, and 1.4's messages.
    let Some(b14) = common::borg14() else { return };
    let borg14 = || {
        let base = env.borg_cmd();
        let mut b = Command::new(&b14);
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => b.env(k, v),
                None => b.env_remove(k),
            };
        }
        b.current_dir(env.path()).stdin(Stdio::null());
        b
    };
    let cases14: &[&[&str]] = &[
        &["--keep-13weekly", "3"],
        &["--keep-3monthly", "4"],
        &["--keep-3monthly", "-1", "-a", "db-*"],
        &["-d", "2", "--keep-13weekly", "2", "-y", "1"],
        &["-w", "2", "--keep-3monthly", "3", "--keep-within", "2y"],
    ];
    for rule_args in cases14 {
        for tz in ["Europe/Berlin", "UTC", "Australia/Lord_Howe"] {
            let mut args: Vec<String> = vec!["prune".into(), "--dry-run".into(), "--list".into()];
            args.extend(rule_args.iter().map(|s| s.to_string()));
            args.push(repo.display().to_string());
            let b = borg14().env("TZ", tz).args(&args).output().expect("borg");
            let h = env
                .command_at(&exe)
                .env("TZ", tz)
                .args(&args)
                .output()
                .expect("hoard");
            let (bs, hs) = (
                String::from_utf8_lossy(&b.stderr).into_owned(),
                String::from_utf8_lossy(&h.stderr).into_owned(),
            );
            assert_eq!(b.status.code(), h.status.code(), "{args:?}\n{bs}\n{hs}");
            assert_eq!(list_lines(&bs), list_lines(&hs), "TZ={tz} {args:?}");
            assert!(
                list_lines(&bs).iter().any(|l| l.contains("quarterly_")),
                "{bs}"
            );
        }
    }
    // The two quarterly rules exclude each other, and so do --stats and --quick-stats.
    for extra in [
        &["--keep-13weekly", "1", "--keep-3monthly", "1"][..],
        &["-d", "1", "--stats", "--quick-stats"][..],
    ] {
        let mut args = vec!["prune".to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(repo.display().to_string());
        let b = borg14().args(&args).output().expect("borg");
        let h = env.command_at(&exe).args(&args).output().expect("hoard");
        assert_eq!(b.status.code(), Some(2), "{args:?}");
        assert_eq!(h.status.code(), Some(2), "{args:?}");
    }
    // No rule at all: the same error and exit code.
    let b = borg14().arg("prune").arg(&repo).output().expect("borg");
    let h = env
        .command_at(&exe)
        .arg("prune")
        .arg(&repo)
        .output()
        .expect("hoard");
    assert_eq!(b.status.code(), Some(2));
    assert_eq!(h.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&b.stderr),
        String::from_utf8_lossy(&h.stderr)
    );
}

/// `prune REPO::ARCHIVE` once pruned the whole repository (the name was ignored). borg refuses
/// an archive name for every command that works on the whole repository; so does hoard, with
/// exit 2, and nothing in the repository changes. Checked against borg when it is installed.
#[test]
fn repository_commands_refuse_an_archive_name() {
    let env = common::Env::new();
    let repo = env.path().join("repo");
    let repo_s = repo.to_str().expect("utf-8 temp path");
    env.hoard(["init", "-e", "none", repo_s]).ok();
    let data = env.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("f"), b"content").expect("write");
    for (name, ts) in [
        ("arch-2024-01-01-01:00", "2024-01-01T01:00:00"),
        ("arch-2024-01-02-01:00", "2024-01-02T01:00:00"),
        ("arch-2024-01-03-01:00", "2024-01-03T01:00:00"),
    ] {
        env.hoard([
            "create",
            "--timestamp",
            ts,
            &format!("{repo_s}::{name}"),
            data.to_str().expect("utf-8"),
        ])
        .ok();
    }
    let names = |env: &common::Env| -> Vec<String> {
        let run = env.hoard(["list", "--short", repo_s]).ok();
        run.out().lines().map(str::to_string).collect()
    };
    let before = names(&env);
    assert_eq!(before.len(), 3);
    let with_archive = format!("{repo_s}::arch-2024-01-01-01:00");
    let cases: Vec<Vec<&str>> = vec![
        vec!["prune", "--keep-last", "1", &with_archive],
        vec!["prune", "--keep-last", "1", "--dry-run", &with_archive],
        vec!["compact", &with_archive],
        vec!["break-lock", &with_archive],
        vec!["config", &with_archive, "append_only"],
        vec!["key", "export", &with_archive],
        vec!["with-lock", &with_archive, "true"],
        vec!["init", "-e", "none", &with_archive],
    ];
    for args in &cases {
        let run = env.hoard(args).expect_code(2);
        assert!(
            run.stderr
                .contains(&format!("\"{with_archive}\": No archive can be specified")),
            "{args:?}: {}",
            run.stderr
        );
    }
    // BORG_REPO is a repository: `repo::name` there is no repository (borg 1.2.4 ignores the
    // `::name` and prunes the whole repository; hoard refuses).
    let mut env2 = common::Env::new();
    env2.set("BORG_BASE_DIR", env.base().to_str().expect("utf-8"));
    env2.set("BORG_REPO", &with_archive);
    env2.hoard(["prune", "--keep-last", "1"]).expect_code(2);
    assert_eq!(
        names(&env),
        before,
        "a refused command changed the archives"
    );
    if common::borg_available() {
        let run = env
            .borg(["prune", "--keep-last", "1", &with_archive])
            .expect_code(2);
        assert!(
            run.stderr.contains("No archive can be specified"),
            "{}",
            run.stderr
        );
        assert_eq!(names(&env), before);
    }
    // The repository form still prunes by the rules.
    env.hoard(["prune", "--keep-last", "1", repo_s]).ok();
    assert_eq!(names(&env), vec!["arch-2024-01-03-01:00".to_string()]);
}

/// Number of repositories and rule sets per repository (20 × 11 = 220 rule sets).
const PRUNE_REPOS: usize = 20;
const RULES_PER_REPO: usize = 11;

/// Parses `prune --dry-run --list` output into (kept, pruned) archive names. The name is the
/// token just before the weekday of the timestamp column.
fn parse_prune_list(stderr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    let (mut kept, mut pruned) = (BTreeSet::new(), BTreeSet::new());
    for line in stderr.lines() {
        let keep = line.starts_with("Keeping");
        let prune = line.starts_with("Would prune:");
        if !keep && !prune {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        let day = toks
            .iter()
            .rposition(|t| DAYS.contains(t))
            .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
        let name = toks[day - 1].to_string();
        if keep {
            kept.insert(name);
        } else {
            pruned.insert(name);
        }
    }
    (kept, pruned)
}

/// Generates the archives (name, UTC timestamp) of one repository.
fn gen_archives(rng: &mut StdRng) -> Vec<(String, String)> {
    let n = rng.gen_range(5..40);
    let mut t: i64 = rng.gen_range(1_420_070_400..1_700_000_000); // 2015 .. 2023
    if rng.gen_bool(0.3) {
        // around Berlin's fall-back night 2024-10-27
        t = 1_729_990_800 - rng.gen_range(0..3 * 86_400);
    }
    let mut out = Vec::new();
    for i in 0..n {
        t += match rng.gen_range(0..10) {
            0..=2 => rng.gen_range(0..6 * 3600),    // several per day
            3..=5 => rng.gen_range(0..3 * 86_400),  // daily-ish
            6..=7 => rng.gen_range(0..40 * 86_400), // weekly/monthly
            _ => rng.gen_range(0..400 * 86_400),    // years
        } + 1;
        let name = match rng.gen_range(0..10) {
            0 => format!("h-{i:02}.checkpoint"),
            1 => format!("h-{i:02}.checkpoint.{}", rng.gen_range(1..5)),
            2 | 3 => format!("w-{i:02}"),
            _ => format!("h-{i:02}"),
        };
        let ts = chrono::DateTime::from_timestamp(t, 0)
            .expect("time")
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        out.push((name, ts));
    }
    out
}

/// A random, non-empty rule combination as command-line arguments.
fn gen_rules(rng: &mut StdRng) -> Vec<String> {
    const PERIODS: [&str; 8] = [
        "--keep-last",
        "--keep-secondly",
        "--keep-minutely",
        "-H",
        "-d",
        "-w",
        "-m",
        "-y",
    ];
    let mut args: Vec<String> = Vec::new();
    // borg refuses a rule set whose counts are all 0 (checked once, separately).
    while args.iter().skip(1).step_by(2).all(|v| v == "0") {
        args.clear();
        for rule in PERIODS {
            if rng.gen_bool(0.3) {
                args.push(rule.into());
                args.push(rng.gen_range(-1..8).to_string());
            }
        }
        if rng.gen_bool(0.2) {
            let unit = ["H", "d", "w", "m", "y"][rng.gen_range(0..5)];
            args.push("--keep-within".into());
            args.push(format!("{}{unit}", rng.gen_range(1..30)));
        }
    }
    match rng.gen_range(0..8) {
        0 => args.extend(["--glob-archives".into(), "w-*".into()]),
        1 => args.extend(["-P".into(), "h-".into()]),
        _ => {}
    }
    args
}

#[test]
fn prune_dry_run_list_matches_borg_on_generated_repositories() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let empty = env.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let mut rng = StdRng::seed_from_u64(0x9E11E);
    let (mut compared, mut berlin, mut total_pruned, mut refused) = (0, 0, 0, 0);
    for r in 0..PRUNE_REPOS {
        let repo = env.path().join(format!("repo{r}"));
        env.hoard(["init", "-e", "none", arg(&repo)]).ok();
        let archives = gen_archives(&mut rng);
        for (name, ts) in &archives {
            env.hoard([
                "create",
                "--timestamp",
                ts,
                &archive(&repo, name),
                arg(&empty),
            ])
            .ok();
        }
        let all: BTreeSet<String> = archives.iter().map(|(n, _)| n.clone()).collect();
        for _ in 0..RULES_PER_REPO {
            let tz = if rng.gen_bool(0.4) {
                "Europe/Berlin"
            } else {
                "UTC"
            };
            let mut args: Vec<String> = vec!["prune".into(), "--dry-run".into(), "--list".into()];
            args.extend(gen_rules(&mut rng));
            args.push(arg(&repo).into());
            let b = env
                .borg_cmd()
                .env("TZ", tz)
                .args(&args)
                .output()
                .expect("borg");
            let h = env
                .hoard_cmd()
                .env("TZ", tz)
                .args(&args)
                .output()
                .expect("hoard");
            let (bs, hs) = (
                String::from_utf8_lossy(&b.stderr).into_owned(),
                String::from_utf8_lossy(&h.stderr).into_owned(),
            );
            if b.status.code() == Some(2) && bs.contains("must be specified") {
                // e.g. `--keep-last 2 --keep-secondly 0`: one option, the last value wins.
                assert_eq!(h.status.code(), Some(2), "hoard {args:?}\n{hs}");
                assert_eq!(bs, hs, "{args:?}");
                refused += 1;
                continue;
            }
            assert_eq!(b.status.code(), Some(0), "borg {args:?}\n{bs}");
            assert_eq!(h.status.code(), Some(0), "hoard {args:?}\n{hs}");
            let (bk, bp) = parse_prune_list(&bs);
            let (hk, hp) = parse_prune_list(&hs);
            assert_eq!(
                bk.union(&bp).count(),
                bk.len() + bp.len(),
                "borg output lists a name twice"
            );
            assert!(
                bk.union(&bp).all(|n| all.contains(n)),
                "borg lists unknown archives"
            );
            assert_eq!(
                (&hk, &hp),
                (&bk, &bp),
                "TZ={tz} {args:?}: kept/pruned differ\nborg:\n{bs}\nhoard:\n{hs}\narchives {archives:?}"
            );
            compared += 1;
            total_pruned += bp.len();
            if tz != "UTC" {
                berlin += 1;
            }
        }
        // Only zero counts: the same refusal.
        let zero = ["prune", "--dry-run", "-d", "0", "-w", "0", arg(&repo)];
        let (b, h) = (env.borg(zero), env.hoard(zero));
        assert_eq!((b.code, h.code), (2, 2), "{}\n{}", b.stderr, h.stderr);
        // The text is borg 1.4's (1.2.4 knows no quarterly rules and no "Command Error:").
        if let Some(b14) = common::borg14() {
            let out = env
                .command_for(b14.to_str().expect("utf-8 path"))
                .args(zero)
                .output()
                .expect("borg 1.4");
            assert_eq!(String::from_utf8_lossy(&out.stderr), h.stderr);
        }
        if r == 0 {
            // Repeated options: the last value wins, as with borg's argparse; `--keep-last`
            // and `--keep-secondly` are one option.
            let rs = arg(&repo).to_string();
            for args in [
                vec!["prune", "-n", "--list", "-d", "1", "-d", "5", &rs],
                vec![
                    "prune",
                    "-n",
                    "--keep-last",
                    "2",
                    "--keep-secondly",
                    "0",
                    &rs,
                ],
            ] {
                let (b, h) = (env.borg(&args), env.hoard(&args));
                assert_eq!(b.code, h.code, "{args:?}\n{}\n{}", b.stderr, h.stderr);
                assert_eq!(parse_prune_list(&b.stderr), parse_prune_list(&h.stderr));
                // borg 1.2.4 pads the list message to 40 columns, 1.4 and hoard to 44.
                let squeeze = |t: &str| -> Vec<String> {
                    t.lines()
                        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                        .collect()
                };
                if b.code == 0 {
                    assert_eq!(squeeze(&b.stderr), squeeze(&h.stderr), "{args:?}");
                } else if let Some(b14) = common::borg14() {
                    // a refusal: the text is borg 1.4's ("Command Error: …", quarterly rules)
                    let out = env
                        .command_for(b14.to_str().expect("utf-8 path"))
                        .args(&args)
                        .output()
                        .expect("borg 1.4");
                    assert_eq!(String::from_utf8_lossy(&out.stderr), h.stderr, "{args:?}");
                }
            }
        }
        // Dry runs change nothing.
        let listed: BTreeSet<String> = lines(
            &env.borg(["list", "--consider-checkpoints", "--short", arg(&repo)])
                .ok()
                .out(),
        )
        .into_iter()
        .collect();
        assert_eq!(listed, all);
        std::fs::remove_dir_all(&repo).expect("rm repo");
    }
    println!(
        "prune equivalence: {compared} cases compared ({berlin} in Europe/Berlin), {total_pruned} prune decisions; {refused} rule sets refused by both"
    );
    assert!(compared >= 200);
    assert!(berlin > 0 && total_pruned > 0);
}
