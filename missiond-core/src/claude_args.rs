//! What missiond adds to a Claude Code command line: `--session-id <uuid>` so the session is
//! known from birth, and `--settings <json>` with hooks and a status-line command that hand
//! Claude Code's own signals to the daemon (docs/CLAUDE-INTEGRATION.md).
//!
//! Pure functions over argument lists, so the slot start and a restore (`--resume <id>`) share
//! them.

use serde_json::json;
use std::path::Path;

/// Arguments that pick the session themselves; missiond then adds no `--session-id`.
const SESSION_PICKERS: &[&str] = &["--resume", "-r", "--continue", "-c", "--session-id"];

/// The hook events missiond listens to. All three releases of the test matrix (2.1.200 to
/// 2.1.332) know every one of them; a release that does not know an event ignores it.
pub const HOOK_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "PermissionRequest",
    "Stop",
    "StopFailure",
    "SubagentStop",
    "SessionEnd",
];

/// The hidden subcommands of the missiond binary that Claude Code runs.
pub const HOOK_SUBCOMMAND: &str = "hook";
pub const STATUSLINE_SUBCOMMAND: &str = "statusline";

/// Environment of a slot's program that the hook and status-line subcommands read.
pub const ENV_HOOK_ADDR: &str = "MISSIOND_HOOK_ADDR";
pub const ENV_HOOK_SLOT: &str = "MISSIOND_HOOK_SLOT";
pub const ENV_HOOK_SECRET: &str = "MISSIOND_HOOK_SECRET";
/// The user's own status-line command, run by `missiond statusline` with the same input.
pub const ENV_USER_STATUSLINE: &str = "MISSIOND_USER_STATUSLINE";

/// `args` with `--session-id <fresh uuid v4>` in front, unless they already pick a session
/// (`--resume`, `-r`, `--continue`, `-c`, `--session-id`, also as `--flag=value`). Returns the
/// session id when it is known from the arguments: the fresh one, or the one `--session-id`
/// names; `None` for a resumed or continued session (the hooks tell it later).
pub fn with_session_id(args: &[String]) -> (Vec<String>, Option<String>) {
    let mut given = None;
    let mut picked = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !SESSION_PICKERS.contains(&flag) {
            continue;
        }
        picked = true;
        if flag == "--session-id" {
            given = inline.or_else(|| iter.next().cloned());
        }
    }
    if picked {
        return (args.to_vec(), given);
    }
    let id = new_uuid_v4();
    let mut out = vec!["--session-id".to_string(), id.clone()];
    out.extend_from_slice(args);
    (out, Some(id))
}

/// A random UUID (version 4, RFC 9562) in its lowercase hyphenated form.
pub fn new_uuid_v4() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No system randomness: the clock and pid still make a unique enough id.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (nanos ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The `--settings` JSON: every hook event of [`HOOK_EVENTS`] and the status line run `exe`
/// (the missiond binary). Claude Code adds these to the user's settings (hooks of all sources
/// run); the status line replaces the user's, which `missiond statusline` runs in turn.
pub fn settings_json(exe: &Path) -> String {
    let exe = shell_quote(&exe.to_string_lossy());
    let hook = json!([{
        "hooks": [{
            "type": "command",
            "command": format!("{exe} {HOOK_SUBCOMMAND}"),
            "timeout": 5,
        }]
    }]);
    let hooks: serde_json::Map<String, serde_json::Value> = HOOK_EVENTS
        .iter()
        .map(|event| (event.to_string(), hook.clone()))
        .collect();
    json!({
        "hooks": hooks,
        "statusLine": {
            "type": "command",
            "command": format!("{exe} {STATUSLINE_SUBCOMMAND}"),
            "padding": 0,
        },
    })
    .to_string()
}

/// `args` with `--settings <json>` in front.
pub fn with_settings(args: &[String], settings: String) -> Vec<String> {
    let mut out = vec!["--settings".to_string(), settings];
    out.extend_from_slice(args);
    out
}

/// The user's own status-line command, from the settings files Claude Code would read for a
/// session in `cwd` (local project, project, then user settings: the first one wins).
pub fn user_statusline(claude_dir: &Path, cwd: &Path) -> Option<String> {
    let files = [
        cwd.join(".claude/settings.local.json"),
        cwd.join(".claude/settings.json"),
        claude_dir.join("settings.json"),
    ];
    files.iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        let settings: serde_json::Value = serde_json::from_str(&text).ok()?;
        let line = settings.get("statusLine")?;
        (line.get("type").and_then(|t| t.as_str()) == Some("command"))
            .then(|| line.get("command")?.as_str().map(str::to_string))
            .flatten()
            .filter(|c| !c.trim().is_empty())
    })
}

/// Single-quoted for `sh` (Claude Code runs hook commands through a shell).
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_fresh_session_id_goes_in_front() {
        let (args, id) = with_session_id(&strings(&["--permission-mode", "default"]));
        let id = id.expect("a fresh id");
        assert_eq!(args[0], "--session-id");
        assert_eq!(args[1], id);
        assert_eq!(&args[2..], &strings(&["--permission-mode", "default"])[..]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4", "version 4: {id}");
        assert!("89ab".contains(&id[19..20]), "variant: {id}");
        assert_ne!(with_session_id(&[]).1, with_session_id(&[]).1);
    }

    #[test]
    fn arguments_that_pick_a_session_are_left_alone() {
        for picked in [
            &["--resume", "abc"][..],
            &["-r"],
            &["--continue"],
            &["-c"],
            &["--resume=abc"],
        ] {
            let args = strings(picked);
            assert_eq!(with_session_id(&args), (args.clone(), None), "{picked:?}");
        }
        let args = strings(&["--session-id", "0000-1"]);
        assert_eq!(
            with_session_id(&args),
            (args.clone(), Some("0000-1".into()))
        );
        let args = strings(&["--session-id=0000-2"]);
        assert_eq!(with_session_id(&args).1.as_deref(), Some("0000-2"));
        // After `--` it is a prompt, not an option.
        let (args, id) = with_session_id(&strings(&["--", "-c"]));
        assert!(id.is_some());
        assert_eq!(args.len(), 4);
    }

    #[test]
    fn settings_run_the_binary_for_every_hook_and_the_status_line() {
        let json: serde_json::Value =
            serde_json::from_str(&settings_json(Path::new("/opt/my bin/missiond"))).unwrap();
        for event in HOOK_EVENTS {
            assert_eq!(
                json["hooks"][event][0]["hooks"][0]["command"],
                "'/opt/my bin/missiond' hook"
            );
        }
        assert_eq!(
            json["statusLine"]["command"],
            "'/opt/my bin/missiond' statusline"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("/usr/bin/missiond"), "/usr/bin/missiond");
    }

    #[test]
    fn the_users_status_line_is_found_in_the_nearest_settings() {
        let dir = tempfile::tempdir().unwrap();
        let (claude, cwd) = (dir.path().join("claude"), dir.path().join("p"));
        std::fs::create_dir_all(claude.as_path()).unwrap();
        std::fs::create_dir_all(cwd.join(".claude")).unwrap();
        assert_eq!(user_statusline(&claude, &cwd), None);
        std::fs::write(
            claude.join("settings.json"),
            r#"{"statusLine":{"type":"command","command":"echo user"}}"#,
        )
        .unwrap();
        assert_eq!(user_statusline(&claude, &cwd).as_deref(), Some("echo user"));
        std::fs::write(
            cwd.join(".claude/settings.json"),
            r#"{"statusLine":{"type":"command","command":"echo project"}}"#,
        )
        .unwrap();
        assert_eq!(
            user_statusline(&claude, &cwd).as_deref(),
            Some("echo project")
        );
    }
}
