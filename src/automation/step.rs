//! The step runner: how a job runs one hoard command. `automation` sits above the commands
//! and below the command line; the CLI passes its own parser and dispatcher in as a
//! [`StepRunner`], so nothing here imports `cli`.

/// What one step gave: exit code, error line and borg msgid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The command's exit code (0 success, 1 warning, 2 and up failure).
    pub code: i32,
    /// The error line, if the command failed.
    pub message: Option<String>,
    /// borg's message id of the error, if any (`Archive.AlreadyExists`, …).
    pub msgid: Option<String>,
}

/// The environment one step runs with, layered over the process environment: a value
/// replaces a variable, `None` removes it. Nothing of it is written to this process's own
/// environment: in-process steps receive it through the runner, child processes (hooks,
/// `--shell`) through `Command::envs`.
pub type StepEnv = crate::options::Env;

/// Runs hoard command lines for a job (`argv[0]` is the program name).
pub trait StepRunner {
    /// Parses `argv` without running it; the error is one line (config load time).
    fn check(&self, argv: &[String]) -> Result<(), String>;
    /// Runs `argv` with `env` over the process environment.
    fn run(&self, argv: &[String], env: &StepEnv) -> Outcome;
}

/// Applies a step environment to a child process.
pub fn apply_env(cmd: &mut std::process::Command, env: &StepEnv) {
    for (k, v) in env.overrides() {
        match v {
            Some(v) => {
                cmd.env(k, v);
            }
            None => {
                cmd.env_remove(k);
            }
        }
    }
}
