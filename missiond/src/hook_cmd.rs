//! `missiond hook` and `missiond statusline`: hidden subcommands Claude Code runs in a slot
//! (docs/CLAUDE-INTEGRATION.md). They hand Claude Code's JSON to the daemon on loopback with the
//! slot's secret, and must never slow or change Claude Code: a hook prints nothing on stdout
//! (some hook output reaches the model) and both exit 0 whatever happens, within a short
//! timeout. No async runtime, no argument parsing: a blocking socket and a few lines of HTTP.

use missiond_core::claude_args::{
    ENV_HOOK_ADDR, ENV_HOOK_SECRET, ENV_HOOK_SLOT, ENV_USER_STATUSLINE,
};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// Connecting to the daemon on loopback takes microseconds; anything slower is a dead daemon.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Reading the daemon's answer (it only records the event).
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest stdin read: Claude Code's hook input with a big tool input or response.
const MAX_INPUT: u64 = 8 * 1024 * 1024;
/// Strings in the forwarded tool input are cut to this many characters.
const MAX_STRING: usize = 500;

/// `missiond hook`: reads the hook's JSON on stdin and forwards it. Prints nothing, exits 0.
pub fn hook() -> ExitCode {
    let input = read_stdin();
    if let Some(payload) = serde_json::from_slice::<Value>(&input).ok().map(trim_hook) {
        forward("hook", &payload.to_string());
    }
    ExitCode::SUCCESS
}

/// `missiond statusline`: forwards the status-line JSON and prints what the user's own
/// status-line command prints with the same input, or a compact default.
pub fn statusline() -> ExitCode {
    let input = read_stdin();
    let parsed = serde_json::from_slice::<Value>(&input).ok();
    if parsed.is_some() {
        forward("statusline", &String::from_utf8_lossy(&input));
    }
    let user = std::env::var(ENV_USER_STATUSLINE)
        .ok()
        .filter(|c| !c.trim().is_empty());
    let line = match user {
        Some(command) => run_user_statusline(&command, &input),
        None => parsed.map(|v| default_line(&v)).unwrap_or_default(),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
    ExitCode::SUCCESS
}

fn read_stdin() -> Vec<u8> {
    let mut input = Vec::new();
    let _ = std::io::stdin().take(MAX_INPUT).read_to_end(&mut input);
    input
}

/// Keeps what the daemon reads (event, session, tool and its input, notification) with long
/// strings cut, so a hook with a large tool response costs a small request.
fn trim_hook(payload: Value) -> Value {
    let Value::Object(map) = payload else {
        return Value::Null;
    };
    let keep = [
        "hook_event_name",
        "session_id",
        "transcript_path",
        "cwd",
        "tool_name",
        "tool_input",
        "message",
        "notification_type",
        "source",
        "reason",
    ];
    Value::Object(
        map.into_iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k, cut_strings(v)))
            .collect(),
    )
}

fn cut_strings(value: Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > MAX_STRING => {
            Value::String(s.chars().take(MAX_STRING).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().take(20).map(cut_strings).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, cut_strings(v))).collect())
        }
        other => other,
    }
}

/// POSTs `body` to `/hooks/<slot>/<kind>` of the daemon named in the environment. Errors are
/// dropped: a dead daemon costs Claude Code nothing visible.
fn forward(kind: &str, body: &str) {
    let (Ok(addr), Ok(slot), Ok(secret)) = (
        std::env::var(ENV_HOOK_ADDR),
        std::env::var(ENV_HOOK_SLOT),
        std::env::var(ENV_HOOK_SECRET),
    ) else {
        return;
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return;
    };
    let _ = post(addr, &format!("/hooks/{slot}/{kind}"), &secret, body);
}

fn post(addr: SocketAddr, path: &str, secret: &str, body: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         {}: {secret}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        missiond_core::server::signals_api::SECRET_HEADER,
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    // Wait for the answer, so the event is recorded before Claude Code goes on.
    let mut status = [0u8; 64];
    let _ = stream.read(&mut status)?;
    Ok(())
}

/// Runs the user's status-line command with the same input; its first line of output is kept.
fn run_user_statusline(command: &str, input: &[u8]) -> String {
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return String::new();
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    child
        .wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `Sonnet · $0.01 · 12% context` from whatever the release gives.
fn default_line(input: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(model) = input["model"]["display_name"]
        .as_str()
        .or(input["model"]["id"].as_str())
    {
        parts.push(model.to_string());
    }
    if let Some(cost) = input["cost"]["total_cost_usd"].as_f64() {
        parts.push(format!("${cost:.2}"));
    }
    if let Some(used) = input["context_window"]["used_percentage"].as_f64() {
        parts.push(format!("{used:.0}% context"));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hook_input_is_trimmed_to_what_the_daemon_reads() {
        let trimmed = trim_hook(json!({
            "hook_event_name": "PostToolUse", "tool_name": "Write",
            "tool_input": {"file_path": "a", "content": "x".repeat(10_000)},
            "tool_response": {"huge": "y".repeat(10_000)},
        }));
        assert_eq!(trimmed["hook_event_name"], "PostToolUse");
        assert!(trimmed.get("tool_response").is_none());
        assert_eq!(
            trimmed["tool_input"]["content"].as_str().map(str::len),
            Some(MAX_STRING)
        );
        assert_eq!(trim_hook(json!([1])), Value::Null);
    }

    #[test]
    fn the_default_status_line_is_compact() {
        let line = default_line(&json!({"model": {"display_name": "Sonnet"},
            "cost": {"total_cost_usd": 0.0149}, "context_window": {"used_percentage": 12.4}}));
        assert_eq!(line, "Sonnet · $0.01 · 12% context");
        assert_eq!(default_line(&json!({})), "");
    }
}
