//! Running the `git` command: one place that clears the caller's git environment, captures
//! output and turns a failure into an error that quotes git's own words.

use super::WorktreeError;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Variables that would point git at another repository or index than the one asked for.
const GIT_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
];

/// `git -C dir ...`, with the caller's git environment removed.
pub(crate) fn command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    for var in GIT_ENV {
        cmd.env_remove(var);
    }
    // Never ask for credentials or an editor: there is nobody at this terminal.
    // Reading must not write: without this `git status` takes the index lock and may rewrite
    // the index, which the worktree's watcher would see as a change, and so on forever.
    cmd.env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_EDITOR", "true")
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::null());
    cmd
}

/// Runs git in `dir` and returns its stdout; a non-zero status is an error with git's stderr.
pub(crate) fn run<I, S>(dir: &Path, args: I) -> Result<String, WorktreeError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command(dir);
    cmd.args(args);
    output(cmd).map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a prepared git command; a non-zero status is an error with git's stderr.
pub(crate) fn output(mut cmd: Command) -> Result<Output, WorktreeError> {
    let described = describe(&cmd);
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            WorktreeError::NoGit
        } else {
            WorktreeError::Git(format!("{described}: {e}"))
        }
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr.trim();
        Err(WorktreeError::Git(if said.is_empty() {
            format!("{described} failed ({})", out.status)
        } else {
            format!("{described}: {said}")
        }))
    }
}

/// Whether git in `dir` says yes (status 0) to a question such as `rev-parse --verify`.
pub(crate) fn succeeds<I, S>(dir: &Path, args: I) -> bool
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command(dir);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.status().is_ok_and(|s| s.success())
}

/// `git worktree add` as a person would type it, for messages.
fn describe(cmd: &Command) -> String {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Skip `-C <dir>`: the message names the directory elsewhere.
    let shown: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    format!("git {}", shown.join(" "))
}
