//! `debug info`: the system information borg prints for bug reports (`sysinfo()`), with
//! hoard's facts where borg names Python's.

/// The lines of `debug info` (`BORG_SHOW_SYSINFO=no` leaves out the system part, as borg).
pub fn lines(borg_version: &str, argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let show = std::env::var("BORG_SHOW_SYSINFO")
        .map(|v| v.to_lowercase() != "no")
        .unwrap_or(true);
    if show {
        if let Some(u) = uname() {
            out.push(format!("Platform: {}", u.join(" ")));
        }
        // borg 1.4 no longer asks the distribution and always prints this
        out.push("Linux: Unknown Linux  ".into());
        out.push(format!(
            "Borg: {borg_version}  Python: none (hoard {}, Rust) msgpack: hoard fuse: fuser [fuser]",
            env!("CARGO_PKG_VERSION")
        ));
        let cwd = std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        out.push(format!("PID: {}  CWD: {cwd}", std::process::id()));
        let argv: Vec<String> = argv.iter().map(|a| py_str_repr(a)).collect();
        out.push(format!("sys.argv: [{}]", argv.join(", ")));
        out.push(format!(
            "SSH_ORIGINAL_COMMAND: {}",
            match std::env::var("SSH_ORIGINAL_COMMAND") {
                Ok(v) => py_str_repr(&v),
                Err(_) => "None".into(),
            }
        ));
    }
    // sysinfo() ends in a newline and print() adds one: one empty line either way
    out.push(String::new());
    out.push(format!("CRC implementation: {}", crc_implementation()));
    out.push(format!(
        "Process ID: ({}, {}, 0)",
        py_str_repr(crate::repo::hostid::host_id()),
        std::process::id()
    ));
    out
}

/// Which CRC-32 code segment files are checked with (crc32fast picks it at run time).
fn crc_implementation() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("sse4.1")
        {
            return "crc32fast (pclmulqdq)";
        }
    }
    "crc32fast (table)"
}

/// `os.uname()`: sysname, nodename, release, version, machine.
fn uname() -> Option<Vec<String>> {
    // SAFETY: uname fills the zeroed struct we own; the fields are NUL-terminated C strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(vec![
        field(&u.sysname),
        field(&u.nodename),
        field(&u.release),
        field(&u.version),
        field(&u.machine),
    ])
}

/// Python's `repr(str)` for the printable cases (quotes chosen as Python chooses them).
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_names_crc_and_python_like_borg() {
        let text = lines(
            crate::version::BORG_VERSION,
            &["hoard".into(), "debug".into(), "info".into()],
        )
        .join("\n");
        assert!(text.contains("CRC implementation"));
        assert!(text.contains("Python"));
        assert!(text.contains("sys.argv: ['hoard', 'debug', 'info']"));
    }

    #[test]
    fn str_repr_matches_python() {
        assert_eq!(py_str_repr("a'b"), "\"a'b\"");
        assert_eq!(py_str_repr("a'\"b"), "'a\\'\"b'");
        assert_eq!(py_str_repr("x\ny"), "'x\\ny'");
    }
}
