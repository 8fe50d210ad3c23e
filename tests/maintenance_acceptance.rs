//! Acceptance tests of the maintenance issue against the real borg 1.2:
//! * prune equivalence, CLI against CLI, on generated archive sets and rule combinations;
//! * corruption injection on hoard-made repositories, with `--verify-data` and `--repair`;
//! * SIGKILL at every crash point of `delete`;
//! * storage quota with `create`.

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{tree, Env};
use hoard::repo::{LocalRepository, OpenOptions, Repository};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn p(x: &Path) -> String {
    x.display().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

fn borg_ok(env: &Env, args: &[&str]) -> String {
    let r = env.borg(args);
    assert_eq!(
        r.code,
        0,
        "borg {args:?} failed:\n{}\n{}",
        r.out(),
        r.stderr
    );
    r.out()
}

fn hoard_ok(env: &Env, args: &[&str]) -> String {
    let r = env.hoard(args);
    assert_eq!(
        r.code,
        0,
        "hoard {args:?} failed:\n{}\n{}",
        r.out(),
        r.stderr
    );
    r.out()
}

fn names(out: &str) -> Vec<String> {
    out.lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Prune equivalence

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
        hoard_ok(&env, &["init", "-e", "none", &p(&repo)]);
        let archives = gen_archives(&mut rng);
        for (name, ts) in &archives {
            hoard_ok(
                &env,
                &[
                    "create",
                    "--timestamp",
                    ts,
                    &format!("{}::{name}", p(&repo)),
                    &p(&empty),
                ],
            );
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
            args.push(p(&repo));
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
        let zero = ["prune", "--dry-run", "-d", "0", "-w", "0", &p(&repo)];
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
            let rs = p(&repo);
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
        let listed: BTreeSet<String> = names(&borg_ok(
            &env,
            &["list", "--consider-checkpoints", "--short", &p(&repo)],
        ))
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

// ---------------------------------------------------------------------------------------------
// 2. Corruption injection on hoard-made repositories

/// Byte ranges `[start, end)` of live entries per segment file name, from the index.
fn live_ranges(repo: &Path) -> Vec<(String, u64, u64)> {
    let mut r = LocalRepository::open(
        repo,
        &OpenOptions {
            exclusive: true,
            ..OpenOptions::default()
        },
    )
    .expect("open repository");
    let mut ids = Vec::new();
    let mut marker = None;
    loop {
        let batch = r.list(Some(1000), marker.as_ref()).expect("list");
        if batch.is_empty() {
            break;
        }
        marker = batch.last().copied();
        ids.extend(batch);
    }
    let mut out = Vec::new();
    for id in &ids {
        let (seg, off) = r.location(id).expect("location").expect("indexed");
        let path = repo
            .join("data")
            .join((seg / 10_000).to_string())
            .join(seg.to_string());
        let bytes = std::fs::read(&path).expect("segment");
        let off = off as usize;
        let size = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as u64;
        out.push((seg.to_string(), off as u64, off as u64 + size));
    }
    r.close().expect("close");
    assert!(out.len() > 5, "too few live objects");
    out
}

/// Flips one random byte in a random segment file; returns (segment name, offset, description).
fn flip_random_byte(repo: &Path, rng: &mut impl Rng) -> (String, u64, String) {
    let mut segs: Vec<PathBuf> = Vec::new();
    for d in std::fs::read_dir(repo.join("data")).expect("data") {
        for f in std::fs::read_dir(d.expect("dir").path()).expect("dir") {
            let f = f.expect("entry").path();
            if std::fs::metadata(&f).expect("meta").len() > 8 {
                segs.push(f);
            }
        }
    }
    segs.sort();
    let seg = &segs[rng.gen_range(0..segs.len())];
    let mut bytes = std::fs::read(seg).expect("read");
    let off = rng.gen_range(0..bytes.len());
    let mask: u8 = rng.gen_range(1..=255);
    bytes[off] ^= mask;
    std::fs::write(seg, &bytes).expect("write");
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    let what = format!("{name}@{off}^{mask:#04x}");
    (name, off as u64, what)
}

#[test]
fn corruption_injection_on_hoard_made_repositories() {
    let have_borg = common::borg_available();
    let mut env = Env::new();
    // A hoard-made repokey repository with two archives and small chunks.
    let data = env.path().join("data");
    std::fs::create_dir_all(data.join("sub")).expect("mkdir");
    std::fs::write(data.join("big"), tree::pseudo_random(120_000, 11)).expect("write");
    std::fs::write(data.join("sub/mid"), tree::pseudo_random(30_000, 12)).expect("write");
    std::fs::write(data.join("small"), b"small file\n".repeat(20)).expect("write");
    let pristine = env.path().join("pristine");
    hoard_ok(&env, &["init", "-e", "repokey", &p(&pristine)]);
    let cp = "buzhash,10,14,12,4095";
    let create = |name: &str| {
        let out = env
            .hoard_cmd()
            .args([
                "create",
                "--chunker-params",
                cp,
                &format!("{}::{name}", p(&pristine)),
                "data",
            ])
            .output()
            .expect("hoard create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    create("one");
    std::fs::write(data.join("added"), tree::pseudo_random(5_000, 13)).expect("write");
    create("two");
    if have_borg {
        borg_ok(&env, &["check", "--verify-data", &p(&pristine)]);
    }
    let live = live_ranges(&pristine);
    env.set("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "YES");

    let trials = 100;
    let borg_every = 5;
    let mut rng = StdRng::seed_from_u64(0xF11B);
    let (mut live_hits, mut hoard_flagged, mut borg_trials, mut borg_flagged) = (0, 0, 0, 0);
    for t in 0..trials {
        let work = env.path().join(format!("t{t}"));
        std::fs::create_dir_all(&work).expect("mkdir");
        let repo = work.join("repo");
        copy_dir(&pristine, &repo);
        let (seg, off, what) = flip_random_byte(&repo, &mut rng);
        let hit_live = live
            .iter()
            .any(|(s, a, b)| *s == seg && (*a..*b).contains(&off));
        let with_borg = have_borg && t % borg_every == 0;
        let borg_copy = work.join("borg");
        if with_borg {
            copy_dir(&repo, &borg_copy);
        }
        let h = env.hoard(["check", "--verify-data", &p(&repo)]);
        assert!(h.code == 0 || h.code == 1, "trial {t} {what}: {}", h.stderr);
        assert!(
            !h.stderr.contains("panicked"),
            "trial {t} {what}: {}",
            h.stderr
        );
        if hit_live {
            live_hits += 1;
            assert_eq!(
                h.code, 1,
                "trial {t} {what}: a flip in live data was not reported\n{}",
                h.stderr
            );
        }
        if h.code != 0 {
            hoard_flagged += 1;
        }
        if with_borg {
            borg_trials += 1;
            let b = env.borg(["check", "--verify-data", &p(&borg_copy)]);
            if b.code != 0 {
                borg_flagged += 1;
                assert_ne!(
                    h.code, 0,
                    "trial {t} {what}: borg flagged it, hoard did not\nborg: {}\nhoard: {}",
                    b.stderr, h.stderr
                );
            }
        }
        let r = env.hoard(["check", "--repair", &p(&repo)]);
        assert_eq!(r.code, 0, "trial {t} {what}: repair failed: {}", r.stderr);
        let r = env.hoard(["check", &p(&repo)]);
        assert_eq!(
            r.code, 0,
            "trial {t} {what}: check after repair: {}",
            r.stderr
        );
        let remaining = names(&hoard_ok(&env, &["list", "--short", &p(&repo)]));
        for name in &remaining {
            let dest = work.join(format!("h-{name}"));
            std::fs::create_dir_all(&dest).expect("mkdir");
            let out = env
                .hoard_cmd()
                .current_dir(&dest)
                .args(["extract", &format!("{}::{name}", p(&repo))])
                .output()
                .expect("hoard extract");
            // 1: damaged files flagged (zero-filled replacement chunks).
            assert!(
                matches!(out.status.code(), Some(0) | Some(1)),
                "trial {t} {what}: hoard extract {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if with_borg {
            borg_ok(&env, &["check", &p(&repo)]);
            let listed = names(&borg_ok(
                &env,
                &["list", "--consider-checkpoints", "--short", &p(&repo)],
            ));
            assert_eq!(listed, remaining, "trial {t} {what}");
            for name in &listed {
                let dest = work.join(format!("b-{name}"));
                std::fs::create_dir_all(&dest).expect("mkdir");
                let out = env
                    .borg_cmd()
                    .current_dir(&dest)
                    .args(["extract", &format!("{}::{name}", p(&repo))])
                    .output()
                    .expect("borg extract");
                assert!(
                    matches!(out.status.code(), Some(0) | Some(1)),
                    "trial {t} {what}: borg extract {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        std::fs::remove_dir_all(&work).expect("rm");
    }
    println!(
        "corruption on hoard-made repositories: {trials} trials, {live_hits} hit live data, hoard flagged {hoard_flagged}; borg compared on {borg_trials}, borg flagged {borg_flagged}"
    );
    assert!(live_hits >= 20, "too few flips hit live data ({live_hits})");
}

// ---------------------------------------------------------------------------------------------
// 3. SIGKILL during delete

/// A private copy of the hoard binary (the target directory may be rebuilt while this runs).
fn private_hoard(env: &Env) -> PathBuf {
    let exe = env.path().join("hoard-under-test");
    std::fs::copy(env!("CARGO_BIN_EXE_hoard"), &exe).expect("copy hoard");
    exe
}

fn hoard_at(env: &Env, exe: &Path) -> std::process::Command {
    let base = env.hoard_cmd();
    let mut c = std::process::Command::new(exe);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.current_dir(env.path()).stdin(Stdio::null());
    c
}

#[test]
fn sigkill_during_delete_keeps_the_last_commit() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let exe = private_hoard(&env);
    let repo = env.path().join("repo");
    let rs = p(&repo);
    hoard_ok(&env, &["init", "-e", "repokey", &rs]);
    let src = env.path().join("src");
    for g in 0..2u64 {
        std::fs::create_dir_all(&src).expect("mkdir");
        std::fs::write(src.join("shared"), tree::pseudo_random(200_000, 1)).expect("write");
        std::fs::write(src.join("unique"), tree::pseudo_random(300_000, 50 + g)).expect("write");
        let out = hoard_at(&env, &exe)
            .current_dir(&src)
            .args(["create", &format!("{rs}::a{g}"), "."])
            .output()
            .expect("create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pristine = env.path().join("pristine");
    std::fs::create_dir_all(&pristine).expect("mkdir");
    copy_dir(&repo, &pristine.join("repo"));
    copy_dir(&env.base(), &pristine.join("base"));
    let full = vec!["a0".to_string(), "a1".to_string()];
    let deleted = vec!["a0".to_string()];

    let list = |k: u64| -> Vec<String> {
        let out = hoard_at(&env, &exe)
            .args(["list", "--short", &rs])
            .output()
            .expect("hoard list");
        assert!(
            out.status.success(),
            "crash point {k}: hoard cannot open the repository: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        names(&String::from_utf8_lossy(&out.stdout))
    };
    let mut k = 1u64;
    let (mut kills, mut before, mut after, mut borg_checks) = (0, 0, 0, 0);
    loop {
        // A fresh archive a1 (and client state) for every attempt.
        for part in ["repo", "base"] {
            copy_dir(&pristine.join(part), &env.path().join(part));
        }
        let out = hoard_at(&env, &exe)
            .env("HOARD_CRASH_AT", k.to_string())
            .args(["delete", &format!("{rs}::a1")])
            .output()
            .expect("hoard delete");
        let killed = match out.status.signal() {
            Some(9) => true,
            Some(sig) => panic!("crash point {k}: unexpected signal {sig}"),
            None => {
                assert!(
                    out.status.success(),
                    "crash point {k}: delete failed without a crash: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                false
            }
        };
        let now = list(k);
        if now == full {
            before += 1;
        } else if now == deleted {
            after += 1;
        } else {
            panic!("crash point {k}: archives {now:?}, neither before nor after the delete");
        }
        let c = hoard_at(&env, &exe)
            .args(["check", &rs])
            .output()
            .expect("hoard check");
        assert!(
            c.status.success(),
            "crash point {k}: hoard check: {}",
            String::from_utf8_lossy(&c.stderr)
        );
        if k % 3 == 1 || !killed {
            borg_ok(&env, &["check", &rs]);
            borg_checks += 1;
        }
        if !killed {
            assert_eq!(now, deleted, "completed delete left {now:?}");
            break;
        }
        kills += 1;
        k += 1;
        assert!(k < 500, "delete never completed");
    }
    borg_ok(&env, &["check", "--verify-data", &rs]);
    println!(
        "delete: {kills} kill points ({before} at the old commit, {after} at the new one), borg check on {borg_checks}"
    );
    assert!(kills >= 3, "delete passed too few crash points ({kills})");
    assert!(before > 0);
}

// ---------------------------------------------------------------------------------------------
// 4. Storage quota with create

/// The repository's committed files: everything but the `nonce` reservation and the lock.
fn committed_files(repo: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    common::snapshot_dir(repo)
        .into_iter()
        .filter(|(path, _)| {
            let s = path.to_string_lossy();
            s != "nonce" && !s.starts_with("lock")
        })
        .collect()
}

/// The number of a segment file (`data/N/M`), else None.
fn segment_number(path: &Path) -> Option<u64> {
    let mut parts = path.iter();
    if parts.next()? != "data" {
        return None;
    }
    parts.next()?;
    let n = parts.next()?.to_str()?.parse().ok()?;
    parts.next().is_none().then_some(n)
}

#[test]
fn create_over_quota_fails_and_leaves_the_repository_unchanged() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.path().join("repo");
    let rs = p(&repo);
    hoard_ok(
        &env,
        &["init", "-e", "repokey", "--storage-quota", "10M", &rs],
    );
    let small = env.path().join("small");
    std::fs::create_dir_all(&small).expect("mkdir");
    std::fs::write(small.join("f"), tree::pseudo_random(1_000_000, 3)).expect("write");
    hoard_ok(&env, &["create", &format!("{rs}::first"), &p(&small)]);
    let before = committed_files(&repo);

    let big = env.path().join("big");
    std::fs::create_dir_all(&big).expect("mkdir");
    std::fs::write(big.join("a"), tree::pseudo_random(6_000_000, 4)).expect("write");
    std::fs::write(big.join("b"), tree::pseudo_random(6_000_000, 5)).expect("write");
    let r = env.hoard(["create", &format!("{rs}::big"), &p(&big)]);
    assert_eq!(r.code, 2, "over-quota create: {}\n{}", r.out(), r.stderr);
    common::assert_one_line_error(&r.stderr, "quota");
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let after = committed_files(&repo);
    // Every committed file is byte-identical; the only new files allowed are segments after the
    // last committed one (borg, too, leaves the uncommitted segment of a transaction that failed
    // on the quota; the next writer discards it).
    let last_segment = before
        .iter()
        .filter_map(|(path, _)| segment_number(path))
        .max()
        .expect("segments");
    for (path, content) in &before {
        let now = after.iter().find(|(q, _)| q == path);
        assert!(
            now.map(|(_, c)| c) == Some(content),
            "the failed create changed or removed {}",
            path.display()
        );
    }
    for (path, _) in &after {
        if before.iter().any(|(q, _)| q == path) {
            continue;
        }
        assert!(
            segment_number(path).is_some_and(|n| n > last_segment),
            "the failed create added {}",
            path.display()
        );
    }
    borg_ok(&env, &["check", &rs]);
    assert_eq!(names(&borg_ok(&env, &["list", "--short", &rs])), ["first"]);

    // A smaller create still fits.
    std::fs::write(small.join("g"), tree::pseudo_random(2_000_000, 6)).expect("write");
    hoard_ok(&env, &["create", &format!("{rs}::second"), &p(&small)]);
    assert_eq!(
        names(&borg_ok(&env, &["list", "--short", &rs])),
        ["first", "second"]
    );
    borg_ok(&env, &["check", "--verify-data", &rs]);
    println!(
        "quota: over-quota create refused with {:?}",
        r.stderr.trim()
    );
}
