//! borg 1.4 options of `create`, `delete`, `info` and `list`, with borg 1.4.5 as the oracle:
//! `--quick-stats`, the "This archive" figures (file data only), the working directory in
//! `info`, `BORG_HOSTNAME`/`BORG_USERNAME`, the slashdot hack (`a/b/./c`), the files cache
//! modes, `--files-changed`, `BORG_JSON_INDENT` and `list --json-lines` archive keys.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Env, Run};

/// Runs borg 1.4.5 in `env` (same environment as hoard gets).
fn borg14(env: &Env, b14: &Path, args: &[&str]) -> Run {
    run_in(env, b14, env.path(), args)
}

fn run_in(env: &Env, program: &Path, dir: &Path, args: &[&str]) -> Run {
    let mut c: Command = env.command_for(&program.to_string_lossy());
    let out = c
        .current_dir(dir)
        .stdin(Stdio::null())
        .args(args)
        .output()
        .expect("run program");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn hoard_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hoard"))
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, data).expect("write");
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", run.out(), run.stderr))
}

/// The lines of a `--stats` block without the lines that differ between two runs
/// (names, times, fingerprints, repository path).
fn stats_shape(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            !["Repository:", "Archive fingerprint:", "Time (", "Duration:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .filter(|l| !l.starts_with("Creating archive") && !l.starts_with("Ignoring"))
        .map(|l| {
            // The repository-wide deduplicated size counts the archive metadata objects, which
            // differ by content (the stored command line names the program: hoard or borg).
            match l.strip_prefix("All archives:") {
                Some(rest) => format!("All archives:{}", &rest[..rest.len().saturating_sub(21)]),
                None => l.to_string(),
            }
        })
        .collect()
}

/// Two identical files of 80 kB (one chunk each, deduplicated to one).
fn two_same_files(env: &Env) {
    let data = vec![b'Z'; 80 * 1024];
    write(&env.path().join("input/file1"), &data);
    write(&env.path().join("input/file2"), &data);
}

#[test]
fn quick_stats_blocks_equal_borg14s() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    two_same_files(&env);
    env.hoard(["init", "-e", "none", "h"]).ok();
    borg14(&env, &b14, &["init", "-e", "none", "b"]).ok();
    let h = env.hoard(["create", "--quick-stats", "h::a", "input"]).ok();
    let b = borg14(&env, &b14, &["create", "--quick-stats", "b::a", "input"]).ok();
    assert!(h.stderr.contains("This archive:"), "{}", h.stderr);
    assert!(!h.stderr.contains("All archives:"), "{}", h.stderr);
    assert!(!h.stderr.contains("Chunk index:"), "{}", h.stderr);
    assert_eq!(stats_shape(&h.stderr), stats_shape(&b.stderr));
    // --stats still shows the repository totals, the same as borg's for the same data
    let h = env.hoard(["create", "--stats", "h::b", "input"]).ok();
    let b = borg14(&env, &b14, &["create", "--stats", "b::b", "input"]).ok();
    assert!(h.stderr.contains("All archives:"), "{}", h.stderr);
    assert_eq!(stats_shape(&h.stderr), stats_shape(&b.stderr));
    // --json --quick-stats: no cache section, same archive figures
    let h = json(
        &env.hoard(["create", "--json", "--quick-stats", "h::c", "input"])
            .ok(),
    );
    let b = json(
        &borg14(
            &env,
            &b14,
            &["create", "--json", "--quick-stats", "b::c", "input"],
        )
        .ok(),
    );
    assert!(h.get("cache").is_none() && b.get("cache").is_none(), "{h}");
    assert_eq!(h["archive"]["stats"], b["archive"]["stats"]);
    // delete --quick-stats: "Deleted data:" only
    let h = env.hoard(["delete", "--quick-stats", "h::a"]).ok();
    let b = borg14(&env, &b14, &["delete", "--quick-stats", "b::a"]).ok();
    assert!(h.stderr.contains("Deleted data:"), "{}", h.stderr);
    // the deleted metadata objects differ by the stored command line, so only the labels
    let labels = |t: &str| -> Vec<String> {
        stats_shape(t)
            .iter()
            .map(|l| l.split("  ").next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(labels(&h.stderr), labels(&b.stderr));
    assert_eq!(labels(&h.stderr).len(), 4, "{}", h.stderr);
}

#[test]
fn stats_and_quick_stats_are_exclusive_and_dry_run_ignores_them() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    two_same_files(&env);
    let msg = "--stats and --quick-stats are mutually exclusive.";
    for args in [
        &["create", "--stats", "--quick-stats", "r::a", "input"][..],
        &["delete", "--stats", "--quick-stats", "r::a"][..],
        &["prune", "--stats", "--quick-stats", "-d", "1", "r"][..],
        &["import-tar", "--stats", "--quick-stats", "r::a", "x.tar"][..],
    ] {
        let h = env.hoard(args).expect_code(2);
        let b = borg14(&env, &b14, args).expect_code(2);
        assert!(b.stderr.contains(msg), "{}", b.stderr);
        assert!(h.stderr.contains(msg), "{args:?}: {}", h.stderr);
    }
    env.hoard(["init", "-e", "none", "r"]).ok();
    env.hoard(["create", "r::a", "input"]).ok();
    env.hoard(["create", "r::b", "input"]).ok();
    for args in [
        &["create", "--dry-run", "--quick-stats", "r::c", "input"][..],
        &["delete", "--dry-run", "--quick-stats", "r::a"][..],
    ] {
        let h = env.hoard(args).ok();
        assert!(
            h.stderr
                .contains("Ignoring --quick-stats. It is not supported when using --dry-run."),
            "{args:?}: {}",
            h.stderr
        );
        assert!(!h.stderr.contains("This archive:") && !h.stderr.contains("Deleted data:"));
    }
}

#[test]
fn this_archive_counts_file_data_only_as_borg14() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    two_same_files(&env);
    env.hoard(["init", "-e", "repokey", "h"]).ok();
    borg14(&env, &b14, &["init", "-e", "repokey", "b"]).ok();
    let hc = json(&env.hoard(["create", "--json", "h::only", "input"]).ok());
    let bc = json(&borg14(&env, &b14, &["create", "--json", "b::only", "input"]).ok());
    // the same figures as borg 1.4.5 for the same data
    assert_eq!(hc["archive"]["stats"], bc["archive"]["stats"], "{hc}\n{bc}");
    let dedup_create = &hc["archive"]["stats"]["deduplicated_size"];
    let unique_all = hc["cache"]["stats"]["unique_size"]
        .as_u64()
        .expect("unique_size");
    // info shows what create showed, and borg 1.4.5 reads hoard's archive alike
    let hi = json(&env.hoard(["info", "--json", "h::only"]).ok());
    let bi = json(&borg14(&env, &b14, &["info", "--json", "h::only"]).ok());
    let hstats = &hi["archives"][0]["stats"];
    assert_eq!(&hstats["deduplicated_size"], dedup_create);
    assert_eq!(hstats, &bi["archives"][0]["stats"]);
    assert_eq!(hstats, &bc["archive"]["stats"]);
    // metadata counts for the repository, not for the archive
    assert!(dedup_create.as_u64().expect("dedup") < unique_all);
    // and hoard reads borg 1.4.5's archive as borg does
    let hb = json(&env.hoard(["info", "--json", "b::only"]).ok());
    let bb = json(&borg14(&env, &b14, &["info", "--json", "b::only"]).ok());
    assert_eq!(hb["archives"][0]["stats"], bb["archives"][0]["stats"]);
}

#[test]
fn info_shows_the_working_directory() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    write(&env.path().join("input/file1"), b"x");
    env.hoard(["init", "-e", "repokey", "r"]).ok();
    let input = env.path().join("input");
    let repo = env.path().join("r");
    let repo_arg = format!("{}::test", repo.display());
    run_in(&env, &hoard_exe(), &input, &["create", &repo_arg, "."]).ok();
    let expected = format!("Working Directory: {}", input.display());
    let h = env.hoard(["info", "r::test"]).ok();
    assert!(h.out().contains(&expected), "{}", h.out());
    let b = borg14(&env, &b14, &["info", "r::test"]).ok();
    assert!(b.out().contains(&expected), "{}", b.out());
    let hj = json(&env.hoard(["info", "--json", "r::test"]).ok());
    let bj = json(&borg14(&env, &b14, &["info", "--json", "r::test"]).ok());
    assert_eq!(hj["archives"][0]["cwd"], input.display().to_string());
    assert_eq!(hj["archives"][0]["cwd"], bj["archives"][0]["cwd"]);
    // an archive of borg 1.4.5 shows its directory in hoard too
    run_in(
        &env,
        &b14,
        &input,
        &["create", &format!("{}::b", repo.display()), "."],
    )
    .ok();
    let h = env.hoard(["info", "r::b"]).ok();
    assert!(h.out().contains(&expected), "{}", h.out());
}

#[test]
fn hostname_and_username_overrides_as_borg14_reads_them() {
    let Some(b14) = common::borg14() else { return };
    let mut env = Env::new();
    write(&env.path().join("input/file1"), b"x");
    env.hoard(["init", "-e", "repokey", "r"]).ok();
    env.set("BORG_HOSTNAME", "foo_host");
    env.set("BORG_USERNAME", "bar_user");
    env.hoard(["create", "r::{hostname}-{user}", "input"]).ok();
    env.set("BORG_HOSTNAME", "");
    env.set("BORG_USERNAME", "");
    let info = json(&borg14(&env, &b14, &["info", "--json", "r::foo_host-bar_user"]).ok());
    let a = &info["archives"][0];
    assert_eq!(a["name"], "foo_host-bar_user");
    assert_eq!(a["hostname"], "foo_host");
    assert_eq!(a["username"], "bar_user");
    // empty values mean "not set", as in borg
    env.hoard(["create", "r::plain", "input"]).ok();
    let info = json(&borg14(&env, &b14, &["info", "--json", "r::plain"]).ok());
    assert_ne!(info["archives"][0]["hostname"], "");
    assert_ne!(info["archives"][0]["username"], "");
}

#[test]
fn slashdot_paths_are_stripped_as_borg14_does() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    for d in ["input/first/secondA/thirdA", "input/first/secondB/thirdB"] {
        std::fs::create_dir_all(env.path().join(d)).expect("mkdir");
    }
    write(&env.path().join("input/first/file1"), b"hello");
    write(&env.path().join("input/other"), b"other");
    env.hoard(["init", "-e", "none", "h"]).ok();
    borg14(&env, &b14, &["init", "-e", "none", "b"]).ok();
    for (name, roots) in [
        ("root", &["input/first/./"][..]),
        ("sub", &["input/./first/secondA"][..]),
        ("two", &["input/first/./secondB", "input/./other"][..]),
    ] {
        let mut args = vec!["create", "--list"];
        let h_arch = format!("h::{name}");
        let b_arch = format!("b::{name}");
        let mut ha = args.clone();
        ha.push(&h_arch);
        ha.extend_from_slice(roots);
        args.push(&b_arch);
        args.extend_from_slice(roots);
        let h = env.hoard(&ha).ok();
        let b = borg14(&env, &b14, &args).ok();
        // status lines name the walked paths, as borg's do
        let status = |s: &str| -> Vec<String> {
            let mut v: Vec<String> = s
                .lines()
                .filter(|l| l.len() > 2 && l.as_bytes()[1] == b' ')
                .map(str::to_string)
                .collect();
            v.sort();
            v
        };
        assert_eq!(status(&h.stderr), status(&b.stderr), "{roots:?}");
        // the archived paths, listed by borg 1.4.5 from both repositories
        let list = |repo: &str| {
            borg14(
                &env,
                &b14,
                &[
                    "list",
                    "--format",
                    "{mode} {path}{NL}",
                    &format!("{repo}::{name}"),
                ],
            )
            .ok()
            .out()
        };
        let (hl, bl) = (list("h"), list("b"));
        assert_eq!(hl, bl, "{roots:?}");
        assert!(!hl.contains("input"), "{hl}");
    }
    // --paths-from-stdin takes the hack per listed path
    let listed = "input/./first/file1\ninput/first/./secondA\n";
    let from_stdin = |program: &Path, arch: &str| -> Run {
        use std::io::Write;
        let mut child = env
            .command_for(&program.to_string_lossy())
            .args(["create", "--list", "--paths-from-stdin", arch])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(listed.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let h = from_stdin(&hoard_exe(), "h::stdin").ok();
    let b = from_stdin(&b14, "b::stdin").ok();
    assert_eq!(h.stderr, b.stderr);
    let list = |arch: &str| borg14(&env, &b14, &["list", "--short", arch]).ok().out();
    assert_eq!(list("h::stdin"), "first/file1\nsecondA\n");
    assert_eq!(list("h::stdin"), list("b::stdin"));
    // the hack's target is the archive root "." with the directory's metadata
    let out = borg14(&env, &b14, &["list", "h::root"]).ok().out();
    let first = out.lines().next().unwrap_or_default();
    assert!(first.starts_with('d') && first.ends_with(" ."), "{out}");
    assert!(
        out.contains(" secondA/thirdA\n") && out.contains(" file1\n"),
        "{out}"
    );
}

/// The status letters of a `create --list` run, sorted by path.
fn statuses(run: &Run) -> Vec<String> {
    let mut v: Vec<String> = run
        .stderr
        .lines()
        .filter(|l| l.ends_with("file1") || l.ends_with("file2"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn files_cache_modes_give_borg14s_statuses() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    write(&env.path().join("input/file1"), b"0123456789");
    write(&env.path().join("input/file2"), b"abcdefghij");
    // the newest file is never memorised (timestamp granularity); let it be another one
    std::thread::sleep(std::time::Duration::from_millis(50));
    write(&env.path().join("input/zlast"), b"z");
    env.hoard(["init", "-e", "none", "h"]).ok();
    borg14(&env, &b14, &["init", "-e", "none", "b"]).ok();
    let mut n = 0;
    let mut both = |args: &[&str], touch: Option<&dyn Fn()>| {
        if let Some(t) = touch {
            t();
        }
        n += 1;
        let run = |prog: &str| {
            let arch = format!("{prog}::x{n}");
            let mut a = vec!["create", "--list"];
            a.extend_from_slice(args);
            a.push(&arch);
            a.push("input");
            if prog == "h" {
                env.hoard(&a).ok()
            } else {
                borg14(&env, &b14, &a).ok()
            }
        };
        let (h, b) = (run("h"), run("b"));
        assert_eq!(
            statuses(&h),
            statuses(&b),
            "{args:?}\nhoard:\n{}\nborg:\n{}",
            h.stderr,
            b.stderr
        );
        statuses(&h)
    };
    both(&[], None);
    assert_eq!(both(&[], None), ["U input/file1", "U input/file2"]);
    // rechunk reads every file again but keeps the cache
    assert_eq!(
        both(&["--files-cache=rechunk,ctime"], None),
        ["A input/file1", "A input/file2"]
    );
    assert_eq!(both(&[], None), ["U input/file1", "U input/file2"]);
    assert_eq!(
        both(&["--files-cache=disabled"], None),
        ["A input/file1", "A input/file2"]
    );
    // a ctime-only change: modified for ctime modes, unchanged for mtime modes
    let chmod = || {
        use std::os::unix::fs::PermissionsExt;
        let p = env.path().join("input/file1");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    let ctime = both(&["--files-cache=ctime,size,inode"], Some(&chmod));
    assert_eq!(ctime, ["M input/file1", "U input/file2"]);
    let chmod2 = || {
        use std::os::unix::fs::PermissionsExt;
        let p = env.path().join("input/file1");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    };
    let mtime = both(&["--files-cache=mtime,size"], Some(&chmod2));
    assert_eq!(mtime.len(), 2);
    // bad modes are refused as borg refuses them
    for bad in ["--files-cache=ctime,mtime", "--files-cache=bogus"] {
        env.hoard(["create", bad, "h::bad", "input"]).expect_code(2);
        borg14(&env, &b14, &["create", bad, "b::bad", "input"]).expect_code(2);
    }
}

#[test]
fn files_changed_and_exclude_dataless_are_accepted() {
    let Some(b14) = common::borg14() else { return };
    let env = Env::new();
    write(&env.path().join("input/file1"), b"x");
    env.hoard(["init", "-e", "none", "r"]).ok();
    for (i, mode) in ["ctime", "mtime", "disabled"].iter().enumerate() {
        let arch = format!("r::a{i}");
        env.hoard([
            "create",
            "--files-changed",
            mode,
            "--exclude-dataless",
            &arch,
            "input",
        ])
        .ok();
    }
    let h = env
        .hoard(["create", "--files-changed", "size", "r::bad", "input"])
        .expect_code(2);
    let b = borg14(
        &env,
        &b14,
        &["create", "--files-changed", "size", "r::bad", "input"],
    )
    .expect_code(2);
    assert!(b.stderr.contains("invalid choice: 'size'"), "{}", b.stderr);
    assert!(h.stderr.contains("size"), "{}", h.stderr);
    borg14(&env, &b14, &["check", "r"]).ok();
}

#[test]
fn create_without_a_path_is_a_usage_error() {
    let env = Env::new();
    env.hoard(["init", "-e", "none", "r"]).ok();
    let h = env.hoard(["create", "r::a"]).expect_code(2);
    assert!(
        h.stderr.contains("Need at least one PATH argument."),
        "{}",
        h.stderr
    );
    let list = env.hoard(["list", "--short", "r"]).ok();
    assert_eq!(list.out(), "");
}

#[test]
fn json_indent_and_json_lines_archive_keys_match_borg14() {
    let Some(b14) = common::borg14() else { return };
    let mut env = Env::new();
    write(&env.path().join("input/file1"), b"x");
    env.hoard(["init", "-e", "none", "r"]).ok();
    env.hoard(["create", "r::a", "input"]).ok();
    for indent in [
        None,
        Some("none"),
        Some("2"),
        Some("0"),
        Some(""),
        Some("\t"),
    ] {
        match indent {
            Some(v) => env.set("BORG_JSON_INDENT", v),
            None => env.vars.retain(|(k, _)| k != "BORG_JSON_INDENT"),
        }
        let h = env.hoard(["list", "--json", "r"]).ok();
        let b = borg14(&env, &b14, &["list", "--json", "r"]).ok();
        assert_eq!(h.out(), b.out(), "BORG_JSON_INDENT={indent:?}");
    }
    env.vars.retain(|(k, _)| k != "BORG_JSON_INDENT");
    let args = [
        "list",
        "--json-lines",
        "--format={archivename} {archiveid}",
        "r::a",
    ];
    let h = env.hoard(args).ok();
    let b = borg14(&env, &b14, &args).ok();
    assert_eq!(h.out(), b.out());
    assert!(h.out().contains("\"archivename\": \"a\""), "{}", h.out());
    // not asked for: not there
    let h = env.hoard(["list", "--json-lines", "r::a"]).ok();
    assert!(!h.out().contains("archivename"), "{}", h.out());
}
