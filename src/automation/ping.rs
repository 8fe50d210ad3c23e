//! Healthchecks-style monitoring pings: a plain HTTP/1.1 GET with a hard timeout, so a dead
//! monitor never blocks the backup.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Sends `GET url` and returns the status line, or an error message. The whole exchange
/// (resolve, connect, send, first response line) is bounded by `timeout`.
pub fn get(url: &str, timeout: f64) -> Result<String, String> {
    if url.starts_with("https://") {
        return get_with_curl(url, timeout);
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported URL {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
    let addr_text = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let addr = addr_text
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let left = |d: Instant| {
        d.checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "timed out".to_string())
    };
    let mut s = TcpStream::connect_timeout(&addr, left(deadline)?).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: hoard\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        s.set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.contains(&b'\n') {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out".into())
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let status = line.lines().next().unwrap_or("").trim().to_string();
    let code: Option<u16> = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok());
    match code {
        Some(c) if (200..400).contains(&c) => Ok(status),
        _ => Err(format!("unexpected response {status:?}")),
    }
}

/// https through `curl` when installed. The URL (often a secret token) goes in on stdin as a
/// curl config line, never in argv; the process is killed if it outlives the timeout.
fn get_with_curl(url: &str, timeout: f64) -> Result<String, String> {
    if url.contains(['"', '\\', '\n', '\r']) {
        return Err("unsupported characters in ping URL".into());
    }
    let mut child = std::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--output",
            "/dev/null",
        ])
        .args(["--max-time", &format!("{timeout}"), "--config", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("https ping URLs need curl ({e})"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("url = \"{url}\"\n").as_bytes());
    }
    let deadline = Instant::now() + Duration::from_secs_f64(timeout + 1.0);
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok("OK (curl)".into()),
            Ok(Some(st)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!("curl {st}: {}", err.trim()));
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_and_bad_urls_fail_fast() {
        let start = Instant::now();
        assert!(get("http://127.0.0.1:1/x", 2.0).is_err());
        assert!(get("https://127.0.0.1:1/x", 2.0).is_err());
        assert!(get("ftp://x", 2.0).is_err());
        assert!(start.elapsed() < Duration::from_secs(6));
    }
}
