//! Progress with totals and time to go (issue #19, item 1): `create` estimates its total from
//! the previous archive and the estimate converges; the `progress_percent` records of
//! extract, check, compact, delete and prune carry `current`/`total` and hoard's
//! `eta_seconds`/`bytes_per_second`; nothing is shown without `-p` when stderr is not a
//! terminal; on a terminal (a pty from util-linux `script`) one line is redrawn in place, a
//! few times a second at most, and wiped at the end.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{arg, tree, Env};
use serde_json::Value;

/// The JSON records of a `--log-json` stderr (other lines are left out).
fn records(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The unfinished records of `kind` (and `msgid`, when given).
fn open_records<'a>(recs: &'a [Value], kind: &str, msgid: Option<&str>) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| r["type"] == kind && r["finished"] == false)
        .filter(|r| msgid.is_none_or(|m| r["msgid"] == m))
        .collect()
}

/// A file of the synthetic tree: its size varies from 4 to 60 KB with its number.
fn file_size(i: u64) -> usize {
    4_000 + ((i * 7_919) % 57) as usize * 1_000
}

/// Writes file `i` of the tree (in one of 8 directories) with content `seed`.
fn write_file(src: &Path, i: u64, seed: u64) {
    let dir = src.join(format!("d{}", i % 8));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join(format!("f{i:04}")),
        tree::pseudo_random(file_size(i), seed),
    )
    .expect("write");
}

/// A tree of 400 files over 8 directories; returns its root.
fn build_tree(env: &Env) -> PathBuf {
    let src = env.path().join("src");
    for i in 0..400 {
        write_file(&src, i, i);
    }
    src
}

/// The changes between two backups (round `n`): 10 % new files, 10 % rewritten with other
/// content, 5 % deleted, spread over the tree.
fn change_tree(src: &Path, n: u64) {
    for i in 0..40 {
        let i = 400 + 40 * n + i;
        write_file(src, i, 10_000 + i);
    }
    for i in (0..400).step_by(10) {
        write_file(src, i + 3, 20_000 + 1_000 * n + i);
    }
    for i in (0..400).step_by(20) {
        let p = src
            .join(format!("d{}", (i + 7) % 8))
            .join(format!("f{:04}", i + 7));
        let _ = std::fs::remove_file(p);
    }
}

/// `create --json --log-json --progress` with a record after every item; returns the
/// archive's original size and the records.
fn create_with_records(env: &Env, repo: &Path, name: &str, workers: &str) -> (u64, Vec<Value>) {
    let out = env
        .hoard_cmd()
        .env("HOARD_PROGRESS_INTERVAL", "0")
        .args([
            "create",
            "--json",
            "--log-json",
            "--progress",
            "--workers",
            workers,
            &format!("{}::{name}", arg(repo)),
            "src",
        ])
        .output()
        .expect("create");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "create {name}: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("create --json");
    let size = summary["archive"]["stats"]["original_size"]
        .as_u64()
        .expect("original_size");
    (size, records(&stderr))
}

#[test]
fn create_estimate_converges_on_the_second_backup() {
    for workers in ["1", "4"] {
        let env = Env::new();
        let src = build_tree(&env);
        let repo = env.init_repo("repo", "repokey");
        // the first archive: no earlier one to estimate from
        let (_, first) = create_with_records(&env, &repo, "host-2024-05-01", workers);
        let open = open_records(&first, "archive_progress", None);
        assert!(!open.is_empty());
        assert!(
            open.iter().all(|r| r["estimated_original_size"].is_null()),
            "workers {workers}: an estimate without a previous archive"
        );
        change_tree(&src, 0);
        let (real, second) = create_with_records(&env, &repo, "host-2024-05-02", workers);
        let open = open_records(&second, "archive_progress", None);
        assert!(
            open.len() > 100,
            "workers {workers}: {} records",
            open.len()
        );
        // the estimate when half of the real total is done
        let half = open
            .iter()
            .find(|r| r["original_size"].as_u64().unwrap_or(0) * 2 >= real)
            .expect("a record past half");
        let estimate = half["estimated_original_size"]
            .as_u64()
            .expect("an estimate from the previous archive");
        let error = (estimate as f64 - real as f64).abs() / real as f64;
        assert!(
            error <= 0.25,
            "workers {workers}: estimate {estimate} at half of {real} is {:.0} % off",
            error * 100.0
        );
        // the last estimate is closer still (deleted files show only at the end)
        let end = open[open.len() - 1]["estimated_original_size"]
            .as_u64()
            .expect("end");
        let end_error = (end as f64 - real as f64).abs() / real as f64;
        assert!(
            end_error <= 0.1,
            "workers {workers}: last estimate {end} of {real}"
        );
        eprintln!(
            "workers {workers}: estimate at half {:.1} % off, at the end {:.1} %",
            error * 100.0,
            end_error * 100.0
        );
        assert!(
            open.iter()
                .any(|r| r["estimated_nfiles"].as_u64().is_some()),
            "workers {workers}: no file estimate"
        );
        assert!(
            open.iter()
                .any(|r| r["eta_seconds"].as_f64().is_some_and(|e| e >= 0.0)),
            "workers {workers}: no time to go"
        );
        assert!(open
            .iter()
            .any(|r| r["bytes_per_second"].as_u64().is_some_and(|b| b > 0)));
    }
}

/// An environment with a repository holding archives `a` and `b` of the tree.
fn two_archives() -> (Env, PathBuf) {
    let env = Env::new();
    build_tree(&env);
    let repo = env.init_repo("repo", "repokey");
    for (n, name) in ["a", "b"].into_iter().enumerate() {
        env.hoard(["create", &format!("{}::{name}", arg(&repo)), "src"])
            .ok();
        change_tree(&env.path().join("src"), n as u64 + 1);
    }
    (env, repo)
}

/// Runs hoard with `args` (stderr piped) and returns its records.
fn json_run(env: &Env, dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = env
        .hoard_cmd()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    records(&stderr)
}

/// Every unfinished `progress_percent` record of `msgid` has numbers `current` ≤ `total`
/// (total > 0) and hoard's keys; with three records or more some time to go is known.
/// (A message before the total is known, such as extract's "Calculating total archive
/// size", has 0 of 0 and is left out.)
fn assert_figures(recs: &[Value], msgid: &str) {
    let open: Vec<&Value> = open_records(recs, "progress_percent", Some(msgid))
        .into_iter()
        .filter(|r| r["total"] != 0 || r["current"] != 0)
        .collect();
    assert!(!open.is_empty(), "no {msgid} records in {recs:?}");
    for r in &open {
        let (Some(current), Some(total)) = (r["current"].as_u64(), r["total"].as_u64()) else {
            panic!("{msgid}: {r}");
        };
        assert!(total > 0 && current <= total, "{msgid}: {r}");
        assert!(
            r.get("eta_seconds").is_some() && r.get("bytes_per_second").is_some(),
            "{msgid}: {r}"
        );
    }
    if open.len() >= 3 {
        assert!(
            open.iter().any(|r| r["eta_seconds"].as_f64().is_some()),
            "{msgid}: no time to go in {} records",
            open.len()
        );
    }
}

#[test]
fn progress_percent_records_carry_totals_and_time_to_go() {
    let (env, repo) = two_archives();
    let r = arg(&repo);
    let out = env.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let p = ["--log-json", "--progress"];
    let recs = json_run(
        &env,
        &out,
        &[&["extract"][..], &p, &[&format!("{r}::a")]].concat(),
    );
    assert_figures(&recs, "extract");
    // bytes: the rate of an extract is its bytes per second
    assert!(open_records(&recs, "progress_percent", Some("extract"))
        .iter()
        .any(|r| r["bytes_per_second"].as_u64().is_some_and(|b| b > 0)));
    let recs = json_run(&env, env.path(), &[&["check"][..], &p, &[r]].concat());
    assert_figures(&recs, "repository.check");
    assert_figures(&recs, "check.rebuild_refcounts");
    let recs = json_run(
        &env,
        env.path(),
        &[&["check", "--verify-data"][..], &p, &[r]].concat(),
    );
    assert_figures(&recs, "check.verify_data");
    let recs = json_run(
        &env,
        env.path(),
        &[&["delete"][..], &p, &[&format!("{r}::a")]].concat(),
    );
    assert_figures(&recs, "archive.delete");
    let recs = json_run(&env, env.path(), &[&["compact"][..], &p, &[r]].concat());
    assert_figures(&recs, "repository.compact_segments");
    for name in ["c", "d", "e"] {
        env.hoard(["create", &format!("{r}::{name}"), "src"]).ok();
    }
    let recs = json_run(
        &env,
        env.path(),
        &[&["prune", "--keep-last", "1"][..], &p, &[r]].concat(),
    );
    assert_figures(&recs, "prune");
}

#[test]
fn nothing_is_shown_without_p_when_stderr_is_not_a_terminal() {
    let (env, repo) = two_archives();
    let r = arg(&repo);
    let src = env.path().join("src");
    let src = arg(&src);
    // a tar for import-tar (export-tar without -p and a terminal: nothing on stderr)
    let tar = env.path().join("in.tar");
    let o = env
        .hoard_cmd()
        .args(["export-tar", &format!("{r}::a"), arg(&tar)])
        .output()
        .expect("run");
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    let tar = arg(&tar);
    // each command plainly, then with --log-json (archives named apart)
    let runs: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["create".into(), format!("{r}::c"), src.into()],
            vec!["create".into(), format!("{r}::d"), src.into()],
        ),
        (
            vec!["extract".into(), format!("{r}::a")],
            vec!["extract".into(), format!("{r}::b")],
        ),
        (
            vec!["check".into(), "--verify-data".into(), r.into()],
            vec!["check".into(), "--verify-data".into(), r.into()],
        ),
        (
            vec!["export-tar".into(), format!("{r}::a"), "a.tar".into()],
            vec!["export-tar".into(), format!("{r}::b"), "b.tar".into()],
        ),
        (
            vec!["import-tar".into(), format!("{r}::i1"), tar.into()],
            vec!["import-tar".into(), format!("{r}::i2"), tar.into()],
        ),
        (
            vec!["delete".into(), format!("{r}::a")],
            vec!["delete".into(), format!("{r}::b")],
        ),
        (
            vec!["compact".into(), r.into()],
            vec!["compact".into(), r.into()],
        ),
        (
            vec!["prune".into(), "--keep-last".into(), "1".into(), r.into()],
            vec!["prune".into(), "--keep-last".into(), "1".into(), r.into()],
        ),
    ];
    for (i, (plain, mut json)) in runs.into_iter().enumerate() {
        let dir = env.path().join(format!("out{i}"));
        std::fs::create_dir_all(dir.join("json")).expect("mkdir");
        let o = env
            .hoard_cmd()
            .current_dir(&dir)
            .args(&plain)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{plain:?}: {stderr}");
        assert_eq!(stderr, "", "{plain:?}");
        json.insert(1, "--log-json".into());
        let o = env
            .hoard_cmd()
            .current_dir(dir.join("json"))
            .args(&json)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{json:?}: {stderr}");
        assert!(
            !stderr.contains("progress") && !stderr.contains('\r'),
            "{json:?}: {stderr}"
        );
    }
}

/// Runs `hoard ARGS` on a pty (util-linux `script`); returns what the terminal received and
/// the seconds it took. None when `script` is missing.
fn on_terminal(env: &Env, args: &[&str]) -> Option<(String, f64)> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(script) = script else {
        eprintln!("util-linux script not found; terminal part skipped");
        return None;
    };
    let mut line = shell_words::quote(env!("CARGO_BIN_EXE_hoard")).into_owned();
    for a in args {
        line.push(' ');
        line.push_str(&shell_words::quote(a));
    }
    let start = Instant::now();
    let out = env
        .command_for(script)
        .env("COLUMNS", "100")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("script");
    let secs = start.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?} on a terminal: {text}");
    Some((text, secs))
}

/// The lines drawn with figures (`message | figures`), in order.
fn drawn(text: &str) -> Vec<&str> {
    text.split(['\r', '\n'])
        .filter(|l| l.contains(" | "))
        .collect()
}

#[test]
fn a_terminal_gets_one_line_redrawn_in_place_and_wiped() {
    let (env, repo) = two_archives();
    let r = arg(&repo);
    // no -p: a terminal is enough
    let Some((text, secs)) = on_terminal(&env, &["check", "--verify-data", r]) else {
        return;
    };
    let lines = drawn(&text);
    assert!(
        lines.iter().any(|l| l.starts_with("Verifying data")),
        "{text:?}"
    );
    assert!(
        lines.iter().all(|l| l.chars().count() < 100),
        "wider than the terminal: {lines:?}"
    );
    // at most 4 drawings a second, plus the first of each indicator (check has 3)
    assert!(
        lines.len() as f64 <= 4.0 * secs + 6.0,
        "{} drawings in {secs:.1} s",
        lines.len()
    );
    // wiped at the end: the last thing on the terminal is a blank line start
    let tail = text.trim_end_matches(['\n']);
    assert!(
        tail.ends_with('\r')
            && tail
                .rsplit('\r')
                .nth(1)
                .is_some_and(|l| l.trim().is_empty()),
        "not wiped: {:?}",
        &tail[tail.len().saturating_sub(200)..]
    );
    // export-tar and import-tar (no -p either): export-tar's percentage with the bytes done of
    // the total, import-tar the archive's figures as create shows them
    let tar = env.path().join("t.tar");
    let (text, _) =
        on_terminal(&env, &["export-tar", &format!("{r}::b"), arg(&tar)]).expect("script");
    assert!(
        drawn(&text)
            .iter()
            .any(|l| l.contains("% Processing: src/") && l.contains(" kB/")),
        "{text:?}"
    );
    let (text, _) =
        on_terminal(&env, &["import-tar", &format!("{r}::imported"), arg(&tar)]).expect("script");
    assert!(
        drawn(&text)
            .iter()
            .any(|l| l.contains(" files, ") && l.contains(" src")),
        "{text:?}"
    );
    // create on a terminal: the estimate from the previous archive, the rate and '~'
    let src = env.path().join("src");
    change_tree(&src, 3);
    // (`b-3`: of the family of `b`, whose figures start the estimate)
    let (text, _) =
        on_terminal(&env, &["create", "-p", &format!("{r}::b-3"), "src"]).expect("script");
    let lines = drawn(&text);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" files, ") && l.contains("/~")),
        "{text:?}"
    );
    // log lines do not land on the progress line: --list lines start at a line start
    change_tree(&src, 4);
    let (text, _) = on_terminal(
        &env,
        &[
            "create",
            "--list",
            "--filter",
            "A",
            &format!("{r}::d"),
            "src",
        ],
    )
    .expect("script");
    let listed: Vec<&str> = text.split('\n').filter(|l| l.contains("A src/")).collect();
    // the new files, and rewritten ones the files cache did not keep (too recent)
    assert!(listed.len() >= 40, "{text:?}");
    for l in listed {
        // what stays on the terminal: the text after the last carriage return
        let l = l.trim_end_matches('\r');
        let shown = l.rsplit('\r').next().unwrap_or(l);
        assert!(shown.starts_with("A src/"), "{l:?}");
    }
    // --log-json without -p: no progress records, no line
    let (text, _) = on_terminal(&env, &["check", "--log-json", r]).expect("script");
    assert!(
        !text.contains("progress") && !text.contains(" | "),
        "{text:?}"
    );
}

/// `create -p` with stderr not a terminal writes borg 1.4's lines (`Statistics.show_progress`
/// without a terminal): whole lines ended by a line feed, the path not shortened, the first
/// item's line at once and an empty line at the end, as borg 1.4.5 writes them.
#[test]
fn create_progress_text_is_borg_14s_when_stderr_is_not_a_terminal() {
    let Some(borg) = common::borg14() else {
        return;
    };
    let env = Env::new();
    let deep = "a-directory-name-long-enough-to-be-shortened-on-an-eighty-column-terminal";
    let tree = common::write_files(
        &env.path().join("t"),
        &[(&format!("{deep}/{deep}/f"), b"hello".as_slice())],
    );
    let mut outputs = Vec::new();
    for (name, exe) in [("borg", borg), ("hoard", common::hoard_exe())] {
        let repo = env.path().join(format!("repo-{name}"));
        env.run_at(&exe, ["init", "-e", "none", arg(&repo)]).ok();
        let r = env
            .run_at(
                &exe,
                ["create", "-p", &common::archive(&repo, "a"), arg(&tree)],
            )
            .ok();
        let progress: Vec<String> = r
            .stderr
            .split('\n')
            .filter(|l| l.contains(" O ") && l.contains(" N "))
            .map(str::to_string)
            .collect();
        outputs.push((name, r.stderr, progress));
    }
    let (_, borg_err, borg_lines) = &outputs[0];
    let (_, hoard_err, hoard_lines) = &outputs[1];
    let first = format!(
        "0 B O 0 B C 0 B D 0 N {}",
        tree.display().to_string().trim_start_matches('/')
    );
    assert_eq!(borg_lines.first(), Some(&first), "borg:\n{borg_err:?}");
    assert_eq!(hoard_lines.first(), Some(&first), "hoard:\n{hoard_err:?}");
    assert!(
        !hoard_err.contains(" \r") && !hoard_err.contains("...\r"),
        "a padded or shortened line:\n{hoard_err:?}"
    );
    // the end: an empty line after the indicator, as borg's `show_progress(final=True)`
    assert!(borg_err.contains("\r\n"), "borg:\n{borg_err:?}");
    assert!(
        hoard_err.contains("\r\n") || hoard_err.contains("\n\n"),
        "hoard:\n{hoard_err:?}"
    );
}

/// `import-tar -p` with stderr not a terminal: the first member's line at once, whole and
/// ended by a line feed, as borg 1.4.5's `add_item` shows it.
#[test]
fn import_tar_progress_text_is_borg_14s_when_stderr_is_not_a_terminal() {
    let Some(borg) = common::borg14() else {
        return;
    };
    let env = Env::new();
    common::write_files(&env.path().join("t"), &[("sub/f", b"hello".as_slice())]);
    let tar = env.path().join("x.tar");
    let made = std::process::Command::new("tar")
        .current_dir(env.path())
        .args(["cf", arg(&tar), "t"])
        .status()
        .expect("tar");
    assert!(made.success());
    let mut firsts = Vec::new();
    for (name, exe) in [("borg", borg), ("hoard", common::hoard_exe())] {
        let repo = env.path().join(format!("repo-{name}"));
        env.run_at(&exe, ["init", "-e", "none", arg(&repo)]).ok();
        let r = env
            .run_at(
                &exe,
                ["import-tar", "-p", &common::archive(&repo, "a"), arg(&tar)],
            )
            .ok();
        assert!(
            !r.stderr.contains(" \r"),
            "{name}: a padded line:\n{:?}",
            r.stderr
        );
        firsts.push(r.stderr.split('\n').next().unwrap_or("").to_string());
    }
    assert_eq!(firsts[0], "0 B O 0 B C 0 B D 0 N t");
    assert_eq!(firsts[1], firsts[0]);
}
