//! A private OpenSSH server for the remote-repository tests: its own config, host key,
//! client keys and port on 127.0.0.1, started as a child process and killed on drop. Nothing
//! of the system's ssh setup is read or changed (the only system path used is sshd's
//! privilege-separation directory `/run/sshd`, created if missing when running as root).
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where sshd lives on Debian (`openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running private sshd.
pub struct Sshd {
    child: Child,
    /// Its directory (keys, config, logs).
    pub dir: PathBuf,
    /// The port it listens on.
    pub port: u16,
    /// The login user (the current user).
    pub user: String,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "hoard-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// True if sshd can be used here (binary present).
pub fn available() -> bool {
    Path::new(SSHD).exists()
        && Command::new("ssh-keygen")
            .arg("-?")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

impl Sshd {
    /// Starts sshd in `dir` (created). `forced` lists extra client keys as
    /// `(key name, forced command)`: each gets `command="…"` in authorized_keys.
    /// `env` is set in every session (sshd `SetEnv`).
    pub fn start(dir: &Path, forced: &[(&str, &str)], env: &[(&str, &str)]) -> Sshd {
        std::fs::create_dir_all(dir).expect("sshd dir");
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        let mut auth = std::fs::read_to_string(dir.join("client_key.pub")).expect("pub");
        for (name, cmd) in forced {
            let key = dir.join(name);
            keygen(&key);
            let pubkey = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
            auth.push_str(&format!(
                "command=\"{}\",no-pty,no-port-forwarding {}",
                cmd.replace('"', "\\\""),
                pubkey
            ));
        }
        std::fs::write(dir.join("authorized_keys"), auth).expect("authorized_keys");
        if unsafe { libc_geteuid() } == 0 {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let user = current_user();
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin yes\nAllowUsers {user}\nLogLevel ERROR\nMaxStartups 100\nMaxSessions 100\n\
                 Subsystem sftp internal-sftp\n",
                d = dir.display()
            );
            if !env.is_empty() {
                let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                config.push_str(&format!("SetEnv {}\n", vars.join(" ")));
            }
            let cfg = dir.join("sshd_config");
            std::fs::write(&cfg, config).expect("sshd_config");
            let log = std::fs::File::create(dir.join("sshd.log")).expect("log");
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        child,
                        dir: dir.to_path_buf(),
                        port,
                        user,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            last_err = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
        }
        panic!("sshd did not start:\n{last_err}");
    }

    /// `BORG_RSH` for the plain client key.
    pub fn rsh(&self) -> String {
        self.rsh_with("client_key")
    }

    /// `BORG_RSH` using the key `name` (e.g. one with a forced command).
    pub fn rsh_with(&self, name: &str) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            self.dir.join(name).display()
        )
    }

    /// `ssh://user@127.0.0.1:PORT/abs/path`.
    pub fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }
}

/// A client environment for the remote tests: a new private sshd under the environment's
/// `sshd` folder (with the `forced` command keys, see [`Sshd::start`]), `BORG_RSH` reaching it
/// with the plain client key and `BORG_REMOTE_PATH` set to `remote_path`; the server side
/// runs with `BORG_BASE_DIR` at the environment's `serverbase` and `LANG=C.UTF-8`. Panics
/// when sshd is not installed. Needs the test's `mod common`.
pub fn client_env(remote_path: &Path, forced: &[(&str, &str)]) -> (crate::common::Env, Sshd) {
    assert!(
        available(),
        "sshd is required for the remote tests: apt-get install openssh-server openssh-client"
    );
    let mut env = crate::common::Env::new();
    let server_base = env.path().join("serverbase");
    std::fs::create_dir_all(&server_base).expect("server base");
    let sshd = Sshd::start(
        &env.path().join("sshd"),
        forced,
        &[
            ("BORG_BASE_DIR", &server_base.to_string_lossy()),
            ("LANG", "C.UTF-8"),
        ],
    );
    env.set("BORG_RSH", &sshd.rsh());
    env.set("BORG_REMOTE_PATH", &remote_path.to_string_lossy());
    (env, sshd)
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
