//! `hoard CMD --help` is complete: every command's long help exits 0, has a description and
//! examples, and names every option that borg 1.4's `borg CMD --help` lists (parsed from borg
//! at test time; options hoard deliberately lacks are in [`MISSING`]). Completion scripts and
//! man pages come from the same definitions.

mod common;

use common::Env;

/// (hoard's argv, borg's argv) of every command borg 1.4 has that hoard offers.
const COMMANDS: &[(&[&str], &[&str])] = &[
    (&["init"], &["init"]),
    (&["create"], &["create"]),
    (&["extract"], &["extract"]),
    (&["list"], &["list"]),
    (&["info"], &["info"]),
    (&["delete"], &["delete"]),
    (&["prune"], &["prune"]),
    (&["compact"], &["compact"]),
    (&["check"], &["check"]),
    (&["diff"], &["diff"]),
    (&["rename"], &["rename"]),
    (&["export-tar"], &["export-tar"]),
    (&["import-tar"], &["import-tar"]),
    (&["recreate"], &["recreate"]),
    (&["mount"], &["mount"]),
    (&["umount"], &["umount"]),
    (&["key", "export"], &["key", "export"]),
    (&["key", "import"], &["key", "import"]),
    (&["key", "change-passphrase"], &["key", "change-passphrase"]),
    (&["change-passphrase"], &["key", "change-passphrase"]),
    (&["break-lock"], &["break-lock"]),
    (&["with-lock"], &["with-lock"]),
    (&["config"], &["config"]),
    (&["upgrade"], &["upgrade"]),
    (&["serve"], &["serve"]),
];

/// hoard's own commands and `hoard --help` itself (no borg counterpart): only the description
/// and examples are checked.
const HOARD_ONLY: &[&[&str]] = &[
    &[],
    &["run"],
    &["schedule"],
    &["status"],
    &["report"],
    &["completion"],
    &["man"],
    &["key"],
];

/// Options borg 1.4.5 lists that hoard deliberately does not have, per command ("*" = all
/// commands). Each needs a reason.
const MISSING: &[(&str, &str)] = &[
    // deprecated spelling of --upload-buffer, removed in borg 2; hoard never had it
    ("*", "--remote-buffer"),
    // macOS "dataless" (cloud placeholder) files do not exist on the platforms hoard runs on
    ("create", "--exclude-dataless"),
    // borg 1.4.5's --files-changed (change detection while reading): hoard always compares
    // ctime, which is borg's default; the option is not offered yet
    ("create", "--files-changed"),
];

fn missing(cmd: &str, opt: &str) -> bool {
    MISSING
        .iter()
        .any(|(c, o)| (*c == "*" || *c == cmd) && *o == opt)
}

/// The option spellings in an argparse help text: every `-x` / `--long` on the lines that
/// define options (two spaces, then a dash), up to the start of the description column.
fn borg_options(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in help.lines() {
        let Some(rest) = line.strip_prefix("  ") else {
            continue;
        };
        if !rest.starts_with('-') {
            continue;
        }
        let spec = rest.split("  ").next().unwrap_or("");
        for part in spec.split(", ") {
            let name = part.split([' ', '=']).next().unwrap_or("");
            let ok = name.len() >= 2
                && name.starts_with('-')
                && name
                    .trim_start_matches('-')
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic());
            if ok && !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Whether `opt` occurs in `text` as a whole option (not as the start of a longer one).
fn mentions(text: &str, opt: &str) -> bool {
    text.match_indices(opt).any(|(i, _)| {
        let before_ok = i == 0 || {
            let b = text.as_bytes()[i - 1];
            !(b.is_ascii_alphanumeric() || b == b'-')
        };
        let after = text[i + opt.len()..].chars().next();
        before_ok && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

fn long_help(env: &Env, argv: &[&str]) -> String {
    let mut args: Vec<&str> = argv.to_vec();
    args.push("--help");
    let run = env.hoard(&args).ok();
    assert!(
        run.stderr.is_empty(),
        "{argv:?} --help wrote to stderr: {}",
        run.stderr
    );
    run.out()
}

#[test]
fn every_command_has_description_and_examples() {
    let env = Env::new();
    let all = COMMANDS
        .iter()
        .map(|(h, _)| *h)
        .chain(HOARD_ONLY.iter().copied());
    for argv in all {
        let long = long_help(&env, argv);
        assert!(
            long.contains("\nDescription:\n"),
            "{argv:?}: no description:\n{long}"
        );
        assert!(
            long.contains("\nExamples:\n"),
            "{argv:?}: no examples:\n{long}"
        );
        let example = format!("$ hoard {}", argv.join(" "));
        assert!(
            long.contains(&example),
            "{argv:?}: no example of `{example}`"
        );
        // `-h` is the summary: same options, no description
        let mut args: Vec<&str> = argv.to_vec();
        args.push("-h");
        let short = env.hoard(&args).ok().out();
        assert!(
            short.len() < long.len(),
            "{argv:?}: -h is not shorter than --help"
        );
        assert!(
            !short.contains("\nExamples:\n"),
            "{argv:?}: -h shows the examples"
        );
    }
}

#[test]
fn every_borg_14_option_is_in_hoard_help() {
    let Some(borg) = common::borg14() else {
        return;
    };
    let env = Env::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (hoard_argv, borg_argv) in COMMANDS {
        let mut args: Vec<&str> = borg_argv.to_vec();
        args.push("--help");
        let out = env
            .command_for(&borg.to_string_lossy())
            .args(&args)
            .env("COLUMNS", "80")
            .output()
            .expect("run borg 1.4");
        assert!(out.status.success(), "borg {args:?} failed");
        let borg_help = String::from_utf8_lossy(&out.stdout).into_owned();
        let options = borg_options(&borg_help);
        assert!(
            options.len() >= 20,
            "could not parse borg {args:?}: {options:?}"
        );
        let ours = long_help(&env, hoard_argv);
        let name = borg_argv.join(" ");
        for opt in options {
            checked += 1;
            if !mentions(&ours, &opt) && !missing(&name, &opt) {
                problems.push(format!("hoard {name} --help lacks {opt}"));
            }
        }
    }
    assert!(checked > 500, "only {checked} options checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn help_groups_options_like_borg() {
    let env = Env::new();
    let create = long_help(&env, &["create"]);
    let mut last = 0;
    for heading in [
        "\nOptions:\n",
        "\nInclude/Exclude options:\n",
        "\nFilesystem options:\n",
        "\nArchive options:\n",
        "\nCommon options:\n",
    ] {
        let at = create
            .find(heading)
            .unwrap_or_else(|| panic!("create --help lacks {heading:?}"));
        assert!(at > last, "{heading:?} out of order");
        last = at;
    }
    // a common option is listed under "Common options", not among create's own
    let common = &create[create.find("\nCommon options:\n").unwrap_or(0)..];
    assert!(common.contains("--lock-wait"));
    let own = &create[..create.find("\nInclude/Exclude options:\n").unwrap_or(0)];
    assert!(
        !own.contains("--lock-wait"),
        "common option among create's own"
    );
    // the compression methods and their levels
    for method in [
        "lz4",
        "zstd[,L]",
        "zlib[,L]",
        "lzma[,L]",
        "auto,C[,L]",
        "obfuscate,SPEC,C[,L]",
    ] {
        assert!(create.contains(method), "create --help lacks {method}");
    }
    assert!(create.contains("1 to 22"), "zstd levels");
    for (cmd, heading) in [
        (&["list"][..], "\nArchive filters:\n"),
        (&["list"][..], "\nInclude/Exclude options:\n"),
        (&["prune"][..], "\nArchive filters:\n"),
        (&["recreate"][..], "\nArchive options:\n"),
        (&["extract"][..], "\nInclude/Exclude options:\n"),
        (&["mount"][..], "\nArchive filters:\n"),
    ] {
        assert!(
            long_help(&env, cmd).contains(heading),
            "{cmd:?} lacks {heading:?}"
        );
    }
}

#[test]
fn completion_scripts_are_generated_and_bash_parses() {
    let env = Env::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef hoard"),
        ("fish", "complete -c hoard"),
    ] {
        let script = env.hoard(["completion", shell]).ok().out();
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        // every command and a command's own option are completed
        for word in ["create", "export-tar", "exclude-caches", "keep-daily"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let path = env.path().join("hoard.bash");
    std::fs::write(&path, env.hoard(["completion", "bash"]).ok().stdout).expect("write");
    let st = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .expect("run bash");
    assert!(st.success(), "bash -n rejects the completion script");
    let bad = env.hoard(["completion", "tcsh"]);
    assert_eq!(bad.code, 2, "unknown shell: {}", bad.stderr);
}

#[test]
fn man_pages_render() {
    let env = Env::new();
    let page = env.hoard(["man", "create"]).ok().out();
    assert!(
        page.starts_with(".ie") || page.contains("\n.TH "),
        "no .TH:\n{page}"
    );
    assert!(page.contains("hoard\\-create"), "page is not create's");
    assert!(page.contains("exclude\\-caches"));
    assert!(page.contains("Examples:"), "no examples in the man page");
    let key = env.hoard(["man", "key", "export"]).ok().out();
    assert!(key.contains("\\-\\-paper"));
    let bad = env.hoard(["man", "no-such-command"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("no such command"), "{}", bad.stderr);

    let dir = env.path().join("man1");
    env.hoard(["man", "--dir", dir.to_str().expect("utf-8")])
        .ok();
    for name in [
        "hoard.1",
        "hoard-create.1",
        "hoard-key-export.1",
        "hoard-prune.1",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).expect(name);
        assert!(text.contains(".TH "), "{name} has no .TH");
    }
    // `man -l` renders it when man is installed
    let man = std::process::Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(dir.join("hoard-create.1"))
        .env("MANWIDTH", "80")
        .output();
    if let Ok(out) = man {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("exclude-caches"), "man -l output:\n{text}");
        }
    }
}

#[test]
fn borg_option_parser_reads_argparse_help() {
    let sample = "options:\n  -n, --dry-run         do not\n  --info, -v, --verbose\n                        x\n  -e PATTERN, --exclude PATTERN\n  --stdin-mode M        set\n  PATH                  paths\n";
    assert_eq!(
        borg_options(sample),
        [
            "-n",
            "--dry-run",
            "--info",
            "-v",
            "--verbose",
            "-e",
            "--exclude",
            "--stdin-mode"
        ]
    );
    assert!(mentions("  --list  x", "--list"));
    assert!(!mentions("  --list-format  x", "--list"));
    assert!(!mentions("--keep-exclude-tags", "--exclude"));
}
