//! Which Claude Code release a slot runs, so users and drift reports can name it: the answer of
//! `<command> --version` (`2.1.330 (Claude Code)`), asked once per binary file and remembered
//! until the file changes (an upgrade in place gets a new answer).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// `--version` of a native binary answers in well under a second; a wrapper may be slower.
const ASK_TIMEOUT: Duration = Duration::from_secs(15);

/// One build of a binary: its path, modification time and size.
type Build = (PathBuf, SystemTime, u64);

/// The answers so far, by build.
static KNOWN: Mutex<Option<HashMap<Build, String>>> = Mutex::new(None);

/// The release of the Claude Code at `command` (a path, or a name looked up in `PATH`, the
/// slot's own `PATH` first), or `None` when it cannot be told.
pub async fn ask(command: &str, env: &BTreeMap<String, String>, cwd: &Path) -> Option<String> {
    let path = find(command, env.get("PATH").map(String::as_str))?;
    let meta = std::fs::metadata(&path).ok()?;
    let key = (path.clone(), meta.modified().ok()?, meta.len());
    if let Some(v) = super::run::lock(&KNOWN).as_ref().and_then(|k| k.get(&key)) {
        return Some(v.clone());
    }
    let out = tokio::time::timeout(
        ASK_TIMEOUT,
        tokio::process::Command::new(&path)
            .arg("--version")
            .envs(env)
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let version = parse(&String::from_utf8_lossy(&out.stdout))?;
    super::run::lock(&KNOWN)
        .get_or_insert_with(HashMap::new)
        .insert(key, version.clone());
    Some(version)
}

/// The first `N.N.N` word of `--version`'s output.
fn parse(output: &str) -> Option<String> {
    output
        .split_whitespace()
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() >= 3
                && parts[..3]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// `command` as a file: itself when it names a path, else the first match in `path_var` (or
/// the daemon's own `PATH`).
fn find(command: &str, path_var: Option<&str>) -> Option<PathBuf> {
    if command.contains('/') {
        return Some(PathBuf::from(command)).filter(|p| p.is_file());
    }
    let daemon_path = std::env::var("PATH").ok();
    let search = path_var.or(daemon_path.as_deref())?;
    std::env::split_paths(search)
        .map(|dir| dir.join(command))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_release() {
        assert_eq!(parse("2.1.330 (Claude Code)\n").as_deref(), Some("2.1.330"));
        assert_eq!(parse("claude 2.0.77\n").as_deref(), Some("2.0.77"));
        assert_eq!(parse("Claude Code\n"), None);
        assert_eq!(parse("1.2\n"), None);
    }

    #[tokio::test]
    async fn asks_the_binary_and_remembers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("claude");
        let counter = dir.path().join("asked");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho x >> '{}'\necho '9.8.7 (Claude Code)'\n",
                counter.display()
            ),
        )
        .expect("write script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let env = BTreeMap::from([("PATH".to_string(), dir.path().display().to_string())]);
        assert_eq!(
            ask("claude", &env, dir.path()).await.as_deref(),
            Some("9.8.7")
        );
        assert_eq!(
            ask("claude", &env, dir.path()).await.as_deref(),
            Some("9.8.7")
        );
        let asked = std::fs::read_to_string(&counter).expect("counter");
        assert_eq!(asked.lines().count(), 1, "asked once per binary");
        assert_eq!(ask("no-such-claude", &env, dir.path()).await, None);
    }
}
