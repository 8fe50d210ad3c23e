//! Passphrases: the environment sources, interactive prompts, and unlocking a key blob the way
//! borg does (FORMAT.md §4.10). Environment values are read once into [`PassphraseEnv`] so that the
//! logic can be tested without touching the process environment; interaction goes through the
//! [`Prompter`] trait ([`TtyPrompter`] talks to the terminal, on stderr, like borg).

use std::io::Read;

use super::key::wipe;
use super::{decrypt_key_blob, CryptoError, KeyMaterial};

/// A passphrase. Its bytes are overwritten when it is dropped; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Drop for Passphrase {
    fn drop(&mut self) {
        // SAFETY: zero bytes are valid UTF-8, so the String stays valid.
        unsafe { wipe(self.0.as_mut_vec()) };
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<Passphrase \"***hidden***\">")
    }
}

/// The passphrase-related environment variables, captured once (FORMAT.md §4.10).
#[derive(Debug, Clone, Default)]
pub struct PassphraseEnv {
    /// `BORG_PASSPHRASE` (used even when empty).
    pub passphrase: Option<String>,
    /// `BORG_PASSCOMMAND`.
    pub passcommand: Option<String>,
    /// `BORG_PASSPHRASE_FD`.
    pub passphrase_fd: Option<String>,
    /// `BORG_NEW_PASSPHRASE`.
    pub new_passphrase: Option<String>,
    /// `BORG_DISPLAY_PASSPHRASE` (answers the "display passphrase?" question).
    pub display_passphrase: Option<String>,
}

impl PassphraseEnv {
    /// Reads the variables from the process environment.
    pub fn from_process() -> PassphraseEnv {
        PassphraseEnv::from_env(&crate::options::Env::process())
    }

    /// Reads the variables from `env` (a command's environment, a job's variables included).
    pub fn from_env(env: &crate::options::Env) -> PassphraseEnv {
        let get = |n: &str| env.var(n);
        PassphraseEnv {
            passphrase: get("BORG_PASSPHRASE"),
            passcommand: get("BORG_PASSCOMMAND"),
            passphrase_fd: get("BORG_PASSPHRASE_FD"),
            new_passphrase: get("BORG_NEW_PASSPHRASE"),
            display_passphrase: get("BORG_DISPLAY_PASSPHRASE"),
        }
    }

    /// borg's message when no passphrase can be read interactively.
    fn no_passphrase_message(&self) -> String {
        let set = |o: &Option<String>| if o.is_some() { "set" } else { "not set" };
        format!(
            "BORG_PASSPHRASE is {}. BORG_PASSCOMMAND is {}. Interactive password query failed.",
            set(&self.passphrase),
            set(&self.passcommand)
        )
    }
}

/// The interactive side of passphrase handling.
pub trait Prompter {
    /// Reads a passphrase without echo after showing `prompt`; `None` if no terminal / EOF.
    fn getpass(&mut self, prompt: &str) -> Option<String>;
    /// Asks a yes/no question (default no) with borg's `yes()` rules; `env_answer` is the value
    /// of the overriding environment variable `env_name`, if set.
    fn yes(&mut self, msg: &str, env_name: &str, env_answer: Option<&str>) -> bool;
    /// Shows a message line (stderr for the terminal prompter).
    fn message(&mut self, text: &str);
}

/// Prompts on the controlling terminal (`/dev/tty`, no echo) and writes messages to stderr.
#[derive(Debug, Default, Clone, Copy)]
pub struct TtyPrompter;

const TRUISH: [&str; 6] = ["Yes", "YES", "yes", "Y", "y", "1"];
const FALSISH: [&str; 6] = ["No", "NO", "no", "N", "n", "0"];
const DEFAULTISH: [&str; 6] = ["Default", "DEFAULT", "default", "D", "d", ""];

impl Prompter for TtyPrompter {
    fn getpass(&mut self, prompt: &str) -> Option<String> {
        rpassword::prompt_password(prompt).ok()
    }

    fn yes(&mut self, msg: &str, env_name: &str, env_answer: Option<&str>) -> bool {
        use std::io::Write;
        let mut err = std::io::stderr();
        let _ = write!(err, "{msg}");
        let _ = err.flush();
        let mut env_answer = env_answer;
        loop {
            let answer = match env_answer.take() {
                Some(a) => {
                    let _ = writeln!(err, "{a} (from {env_name})");
                    a.to_string()
                }
                None => {
                    let mut line = String::new();
                    match std::io::stdin().read_line(&mut line) {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => line.trim_end_matches(['\n', '\r']).to_string(),
                    }
                }
            };
            let a = answer.as_str();
            if DEFAULTISH.contains(&a) || FALSISH.contains(&a) {
                return false;
            }
            if TRUISH.contains(&a) {
                return true;
            }
            let _ = writeln!(err, "Invalid answer, try again.");
            let _ = write!(err, "{msg}");
            let _ = err.flush();
        }
    }

    fn message(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

/// Python's repr of a list of strings (for borg's passcommand error messages).
fn py_list_repr(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn run_passcommand(cmd: &str) -> Result<Passphrase, CryptoError> {
    let argv =
        shell_words::split(cmd).map_err(|e| CryptoError::PasscommandFailure(e.to_string()))?;
    let Some((prog, args)) = argv.split_first() else {
        return Err(CryptoError::PasscommandFailure(
            "empty BORG_PASSCOMMAND".to_string(),
        ));
    };
    let out = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CryptoError::PasscommandFailure(format!(
                    "[Errno 2] No such file or directory: '{prog}'"
                ))
            } else {
                CryptoError::PasscommandFailure(e.to_string())
            }
        })?;
    if !out.status.success() {
        let status = out
            .status
            .code()
            .map_or_else(|| "a signal".to_string(), |c| c.to_string());
        return Err(CryptoError::PasscommandFailure(format!(
            "Command '{}' returned non-zero exit status {status}.",
            py_list_repr(&argv)
        )));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| CryptoError::PasscommandFailure("output is not valid UTF-8".into()))?;
    // universal newlines, then strip trailing "\n"
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    Ok(Passphrase::new(text.trim_end_matches('\n')))
}

fn read_passphrase_fd(fd_text: &str) -> Result<Option<Passphrase>, CryptoError> {
    let Ok(fd) = fd_text.trim().parse::<i32>() else {
        return Ok(None);
    };
    if fd < 0 {
        return Err(CryptoError::Io(format!(
            "BORG_PASSPHRASE_FD: bad file descriptor {fd}"
        )));
    }
    // SAFETY: borg takes ownership of this descriptor too (os.fdopen closes it). fcntl checks
    // that it is open before we wrap it.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(CryptoError::Io(format!(
            "BORG_PASSPHRASE_FD: {}",
            std::io::Error::last_os_error()
        )));
    }
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut s = String::new();
    f.read_to_string(&mut s)
        .map_err(|e| CryptoError::Io(format!("BORG_PASSPHRASE_FD: {e}")))?;
    let p = Passphrase::new(s.trim_end_matches('\n'));
    wipe(unsafe { s.as_mut_vec() });
    Ok(Some(p))
}

impl Passphrase {
    /// Wraps a passphrase string.
    pub fn new(s: impl Into<String>) -> Passphrase {
        Passphrase(s.into())
    }

    /// The passphrase text (used as UTF-8 bytes for PBKDF2, FORMAT.md §4.3).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The passphrase from the process environment (FORMAT.md §4.10): `BORG_PASSPHRASE` (even
    /// empty), else `BORG_PASSCOMMAND`, else `BORG_PASSPHRASE_FD`; `None` if none is set.
    pub fn from_env() -> Result<Option<Passphrase>, CryptoError> {
        Passphrase::from_env_with(&PassphraseEnv::from_process())
    }

    /// [`Passphrase::from_env`] with the environment passed in.
    pub fn from_env_with(env: &PassphraseEnv) -> Result<Option<Passphrase>, CryptoError> {
        if let Some(p) = &env.passphrase {
            return Ok(Some(Passphrase::new(p.clone())));
        }
        if let Some(cmd) = &env.passcommand {
            return run_passcommand(cmd).map(Some);
        }
        if let Some(fd) = &env.passphrase_fd {
            return read_passphrase_fd(fd);
        }
        Ok(None)
    }

    /// Reads a passphrase interactively (no echo). No terminal gives
    /// [`CryptoError::NoPassphrase`] with borg's message.
    pub fn prompt(prompt: &str) -> Result<Passphrase, CryptoError> {
        Passphrase::prompt_with(prompt, &PassphraseEnv::from_process(), &mut TtyPrompter)
    }

    /// [`Passphrase::prompt`] with environment and prompter passed in.
    pub fn prompt_with(
        prompt: &str,
        env: &PassphraseEnv,
        prompter: &mut dyn Prompter,
    ) -> Result<Passphrase, CryptoError> {
        prompter
            .getpass(prompt)
            .map(Passphrase::new)
            .ok_or_else(|| CryptoError::NoPassphrase(env.no_passphrase_message()))
    }

    /// A new passphrase (`init`, `key change-passphrase`; empty allowed like borg's
    /// `Passphrase.new(allow_empty=True)`): `BORG_NEW_PASSPHRASE`, else [`Passphrase::from_env`],
    /// else an interactive prompt with confirmation.
    pub fn new_from_env_or_prompt() -> Result<Passphrase, CryptoError> {
        Passphrase::new_with(&PassphraseEnv::from_process(), &mut TtyPrompter, true)
    }

    /// The logic of [`Passphrase::new_from_env_or_prompt`] with everything passed in: up to 10
    /// attempts of `Enter new passphrase: ` / `Enter same passphrase again: `, the
    /// "display for verification" question, borg's messages.
    pub fn new_with(
        env: &PassphraseEnv,
        prompter: &mut dyn Prompter,
        allow_empty: bool,
    ) -> Result<Passphrase, CryptoError> {
        if let Some(p) = &env.new_passphrase {
            return Ok(Passphrase::new(p.clone()));
        }
        if let Some(p) = Passphrase::from_env_with(env)? {
            return Ok(p);
        }
        for _ in 0..10 {
            let p = Passphrase::prompt_with("Enter new passphrase: ", env, prompter)?;
            if allow_empty || !p.0.is_empty() {
                let p2 = Passphrase::prompt_with("Enter same passphrase again: ", env, prompter)?;
                if p == p2 {
                    Passphrase::verification(&p, env, prompter);
                    return Ok(p);
                }
                prompter.message("Passphrases do not match");
            } else {
                prompter.message("Passphrase must not be blank");
            }
        }
        Err(CryptoError::PasswordRetriesExceeded)
    }

    fn verification(p: &Passphrase, env: &PassphraseEnv, prompter: &mut dyn Prompter) {
        let msg = "Do you want your passphrase to be displayed for verification? [yN]: ";
        if prompter.yes(
            msg,
            "BORG_DISPLAY_PASSPHRASE",
            env.display_passphrase.as_deref(),
        ) {
            prompter.message(&format!(
                "Your passphrase (between double-quotes): \"{}\"",
                p.0
            ));
            prompter
                .message("Make sure the passphrase displayed above is exactly what you wanted.");
            if !p.0.is_ascii() {
                prompter.message(&format!(
                    "Your passphrase (UTF-8 encoding in hex): {}",
                    hex::encode(p.0.as_bytes())
                ));
                prompter.message("As you have a non-ASCII passphrase, it is recommended to keep the UTF-8 encoding in hex together with the passphrase at a safe place.");
            }
        }
    }
}

/// Unlocks a key blob of an existing repository like borg (FORMAT.md §4.10): a passphrase from the
/// environment must be right ([`CryptoError::PassphraseWrong`]); without one the empty
/// passphrase is tried silently, then `Enter passphrase for key <target>: ` is asked up to 3
/// times ([`CryptoError::PasswordRetriesExceeded`]). The prompt names no target here; use
/// [`unlock_key_blob_for`] to name the key file path or repository location.
pub fn unlock_key_blob(text: &str) -> Result<(KeyMaterial, Passphrase), CryptoError> {
    unlock_key_blob_for(text, "")
}

/// [`unlock_key_blob`] with the prompt's target: the key file path (key-file modes) or the
/// canonical repository location (repokey modes).
pub fn unlock_key_blob_for(
    text: &str,
    target: &str,
) -> Result<(KeyMaterial, Passphrase), CryptoError> {
    unlock_key_blob_with(
        text,
        target,
        &PassphraseEnv::from_process(),
        &mut TtyPrompter,
    )
}

/// [`unlock_key_blob_for`] with environment and prompter passed in.
pub fn unlock_key_blob_with(
    text: &str,
    target: &str,
    env: &PassphraseEnv,
    prompter: &mut dyn Prompter,
) -> Result<(KeyMaterial, Passphrase), CryptoError> {
    if let Some(p) = Passphrase::from_env_with(env)? {
        return match decrypt_key_blob(text, p.as_str()) {
            Ok(m) => Ok((m, p)),
            Err(CryptoError::WrongPassphrase) => Err(CryptoError::PassphraseWrong),
            Err(e) => Err(e),
        };
    }
    match decrypt_key_blob(text, "") {
        Ok(m) => return Ok((m, Passphrase::new(""))),
        Err(CryptoError::WrongPassphrase) => {}
        Err(e) => return Err(e),
    }
    let prompt = format!("Enter passphrase for key {target}: ");
    for _ in 0..3 {
        let p = Passphrase::prompt_with(&prompt, env, prompter)?;
        match decrypt_key_blob(text, p.as_str()) {
            Ok(m) => return Ok((m, p)),
            Err(CryptoError::WrongPassphrase) => {}
            Err(e) => return Err(e),
        }
    }
    Err(CryptoError::PasswordRetriesExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyblob::{encode_blob_text, encrypt_key_blob_bytes};

    struct Scripted {
        answers: Vec<Option<String>>,
        prompts: Vec<String>,
        messages: Vec<String>,
    }

    impl Scripted {
        fn new(answers: &[Option<&str>]) -> Scripted {
            Scripted {
                answers: answers.iter().rev().map(|a| a.map(String::from)).collect(),
                prompts: vec![],
                messages: vec![],
            }
        }
    }

    impl Prompter for Scripted {
        fn getpass(&mut self, prompt: &str) -> Option<String> {
            self.prompts.push(prompt.to_string());
            self.answers.pop().flatten()
        }
        fn yes(&mut self, _msg: &str, _env_name: &str, env_answer: Option<&str>) -> bool {
            env_answer.is_some_and(|a| TRUISH.contains(&a))
        }
        fn message(&mut self, text: &str) {
            self.messages.push(text.to_string());
        }
    }

    fn blob(pass: &str) -> (KeyMaterial, String) {
        let m = KeyMaterial::generate(false, [4; 32]);
        let t = encode_blob_text(&encrypt_key_blob_bytes(&m, pass, &[0; 32], 10));
        (m, t)
    }

    #[test]
    fn env_sources_in_order() {
        let env = PassphraseEnv {
            passphrase: Some(String::new()),
            passcommand: Some("echo no".into()),
            ..Default::default()
        };
        assert_eq!(
            Passphrase::from_env_with(&env).unwrap().unwrap().as_str(),
            ""
        );
        let env = PassphraseEnv {
            passcommand: Some("printf 'a b\\n\\n'".into()),
            ..Default::default()
        };
        assert_eq!(
            Passphrase::from_env_with(&env).unwrap().unwrap().as_str(),
            "a b"
        );
        let env = PassphraseEnv {
            passcommand: Some("false".into()),
            ..Default::default()
        };
        assert_eq!(
            Passphrase::from_env_with(&env).unwrap_err().to_string(),
            "passcommand supplied in BORG_PASSCOMMAND failed: Command '['false']' returned non-zero exit status 1."
        );
        assert!(Passphrase::from_env_with(&PassphraseEnv::default())
            .unwrap()
            .is_none());
        let env = PassphraseEnv {
            passphrase_fd: Some("notanumber".into()),
            ..Default::default()
        };
        assert!(Passphrase::from_env_with(&env).unwrap().is_none());
    }

    #[test]
    fn passphrase_fd() {
        let mut fds = [0i32; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let msg = b"fd secret\n";
        assert_eq!(
            unsafe { libc::write(fds[1], msg.as_ptr().cast(), msg.len()) },
            msg.len() as isize
        );
        unsafe { libc::close(fds[1]) };
        let env = PassphraseEnv {
            passphrase_fd: Some(fds[0].to_string()),
            ..Default::default()
        };
        assert_eq!(
            Passphrase::from_env_with(&env).unwrap().unwrap().as_str(),
            "fd secret"
        );
    }

    #[test]
    fn unlock_rules() {
        let (m, text) = blob("secret");
        let env = PassphraseEnv {
            passphrase: Some("wrong".into()),
            ..Default::default()
        };
        let mut p = Scripted::new(&[]);
        let e = unlock_key_blob_with(&text, "/k", &env, &mut p).unwrap_err();
        assert_eq!(e.to_string(), "passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect.");
        assert!(p.prompts.is_empty());

        let mut p = Scripted::new(&[Some("x"), Some("secret")]);
        let (got, pass) =
            unlock_key_blob_with(&text, "/k", &PassphraseEnv::default(), &mut p).unwrap();
        assert_eq!(got, m);
        assert_eq!(pass.as_str(), "secret");
        assert_eq!(p.prompts, ["Enter passphrase for key /k: "; 2]);

        let mut p = Scripted::new(&[Some("a"), Some("b"), Some("c"), Some("secret")]);
        assert!(matches!(
            unlock_key_blob_with(&text, "/k", &PassphraseEnv::default(), &mut p),
            Err(CryptoError::PasswordRetriesExceeded)
        ));

        let mut p = Scripted::new(&[None]);
        let e = unlock_key_blob_with(&text, "/k", &PassphraseEnv::default(), &mut p).unwrap_err();
        assert_eq!(e.to_string(), "can not acquire a passphrase: BORG_PASSPHRASE is not set. BORG_PASSCOMMAND is not set. Interactive password query failed.");

        // empty passphrase is tried silently
        let (m0, t0) = blob("");
        let mut p = Scripted::new(&[]);
        let (got, pass) =
            unlock_key_blob_with(&t0, "/k", &PassphraseEnv::default(), &mut p).unwrap();
        assert_eq!(got, m0);
        assert_eq!(pass.as_str(), "");
        assert!(p.prompts.is_empty());
    }

    #[test]
    fn new_passphrase_flow() {
        let env = PassphraseEnv {
            new_passphrase: Some("n".into()),
            passphrase: Some("o".into()),
            ..Default::default()
        };
        let mut p = Scripted::new(&[]);
        assert_eq!(
            Passphrase::new_with(&env, &mut p, true).unwrap().as_str(),
            "n"
        );
        let env = PassphraseEnv {
            display_passphrase: Some("y".into()),
            ..Default::default()
        };
        let mut p = Scripted::new(&[Some("a"), Some("b"), Some("ä"), Some("ä")]);
        assert_eq!(
            Passphrase::new_with(&env, &mut p, true).unwrap().as_str(),
            "ä"
        );
        assert_eq!(p.messages[0], "Passphrases do not match");
        assert_eq!(
            p.messages[1],
            "Your passphrase (between double-quotes): \"ä\""
        );
        assert!(p.messages[3].ends_with("c3a4"));
        let mut p = Scripted::new(&[Some(""), Some("x"), Some("x")]);
        let env = PassphraseEnv::default();
        assert_eq!(
            Passphrase::new_with(&env, &mut p, false).unwrap().as_str(),
            "x"
        );
        assert_eq!(p.messages, ["Passphrase must not be blank"]);
        assert_eq!(
            format!("{:?}", Passphrase::new("s")),
            "<Passphrase \"***hidden***\">"
        );
    }
}
