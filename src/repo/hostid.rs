//! Process identity for locks (FORMAT.md §3): borg's host id `"<fqdn>@<uuid.getnode()>"` (or
//! `BORG_HOST_ID`) and the liveness test used for stale-lock detection.
//!
//! `uuid.getnode()` is reproduced as libuuid computes it on Linux: the MAC address (as a 48-bit
//! integer) of the first interface that has an IPv4 address and a non-zero MAC, in interface
//! order. This is an approximation (libuuid uses `SIOCGIFCONF`; we use `getifaddrs`); when it
//! differs from borg's value, the locks still exclude each other but neither side sees the
//! other's dead locks as stale.

use std::fs;
use std::io;
use std::sync::OnceLock;

/// Who holds a lock: (host id, pid, thread) — thread is always 0 (§3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId {
    /// Host id string (§3).
    pub host: String,
    /// Process id.
    pub pid: i64,
    /// Thread id (always 0 in borg).
    pub thread: i64,
}

impl ProcessId {
    /// Our own identity, host id computed once per process (see the module doc).
    pub fn current() -> ProcessId {
        ProcessId {
            host: host_id().to_string(),
            pid: std::process::id() as i64,
            thread: 0,
        }
    }

    /// The unique lock file name `<host>.<pid>-<thread hex>`.
    pub fn unique_name(&self) -> String {
        format!("{}.{}-{:x}", self.host, self.pid, self.thread)
    }
}

/// The host id of this process: `BORG_HOST_ID` or `<fqdn>@<uuid.getnode()>` (§3).
pub fn host_id() -> &'static str {
    // Process state, not configuration: the identity of this process, computed once.
    static HOST_ID: OnceLock<String> = OnceLock::new();
    HOST_ID.get_or_init(|| match std::env::var("BORG_HOST_ID") {
        Ok(v) if !v.is_empty() => v,
        _ => format!("{}@{}", fqdn(), uuid_getnode()),
    })
}

/// Python's patched `getfqdn()`: the canonical name from `getaddrinfo(hostname, AI_CANONNAME)`,
/// else the host name.
pub fn fqdn() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let Ok(c) = std::ffi::CString::new(host.clone()) else {
        return host;
    };
    // SAFETY: plain getaddrinfo/freeaddrinfo usage with a zeroed hints struct; all pointers
    // returned are checked for null and only read before freeaddrinfo.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_socktype = libc::SOCK_DGRAM;
        hints.ai_flags = libc::AI_CANONNAME;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) != 0 {
            return host;
        }
        let mut out = host.clone();
        let mut p = res;
        while !p.is_null() {
            let cn = (*p).ai_canonname;
            if !cn.is_null() {
                let s = std::ffi::CStr::from_ptr(cn).to_string_lossy().into_owned();
                if !s.is_empty() {
                    out = s;
                    break;
                }
            }
            p = (*p).ai_next;
        }
        libc::freeaddrinfo(res);
        out
    }
}

fn read_mac(name: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    let bytes: Vec<u8> = s
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    if bytes.len() != 6 || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    Some(bytes.iter().fold(0u64, |a, b| (a << 8) | *b as u64))
}

/// Approximates Python's `uuid.getnode()` on Linux (see the module doc).
pub fn uuid_getnode() -> u64 {
    let mut names: Vec<String> = Vec::new();
    // SAFETY: getifaddrs/freeaddrinfo usage; the list is only read before it is freed.
    unsafe {
        let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifap) == 0 {
            let mut p = ifap;
            while !p.is_null() {
                let a = (*p).ifa_addr;
                if !a.is_null()
                    && (*a).sa_family as i32 == libc::AF_INET
                    && !(*p).ifa_name.is_null()
                {
                    let n = std::ffi::CStr::from_ptr((*p).ifa_name)
                        .to_string_lossy()
                        .into_owned();
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                p = (*p).ifa_next;
            }
            libc::freeifaddrs(ifap);
        }
    }
    for n in &names {
        if let Some(m) = read_mac(n) {
            return m;
        }
    }
    // fallback: any interface, in ifindex order
    let mut all: Vec<(u32, String)> = fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let idx = fs::read_to_string(e.path().join("ifindex"))
                        .ok()?
                        .trim()
                        .parse()
                        .ok()?;
                    Some((idx, n))
                })
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    for (_, n) in &all {
        if let Some(m) = read_mac(n) {
            return m;
        }
    }
    // Python falls back to a random 48-bit number with the multicast bit set.
    (rand::random::<u64>() & 0xffff_ffff_ffff) | (1 << 40)
}

/// borg `process_alive`: entries from other hosts or threads are alive; for our host, the pid is
/// checked with `kill(pid, 0)` (only ESRCH means dead).
pub fn process_alive(our_host: &str, id: &ProcessId) -> bool {
    if id.host != our_host || id.thread != 0 {
        return true;
    }
    let Ok(pid) = libc::pid_t::try_from(id.pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill with signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    if r == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
