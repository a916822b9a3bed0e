//! `missiond tasks`: Claude Code task lists as a table, or (`--follow`) the `/tasks` event
//! stream as it happens; `--json` gives scripts one JSON object per line.
//!
//! Frames are handled as JSON values, reading only the fields shown, so the command keeps working
//! when the daemon adds fields.

use clap::Args;
use futures_util::StreamExt;
use missiond_core::protocol::codes::close::RESTARTING as CLOSE_RESTARTING;
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{encode, Client, Failure};
use crate::output::print_json;
use crate::ConnArgs;

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Only the task list of this slot.
    #[arg(long, value_name = "ID")]
    pub slot: Option<String>,
    /// Keep running and print every change as it happens.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

pub async fn run(client: &Client, conn: &ConnArgs, args: TasksArgs) -> Result<ExitCode, Failure> {
    if args.follow {
        return follow(client, conn, args.slot.as_deref()).await;
    }
    let answer: Value = match &args.slot {
        Some(id) => {
            client
                .get(&format!("/api/slots/{}/tasks", encode(id)))
                .await?
        }
        None => client.get("/api/tasks").await?,
    };
    if conn.json {
        print_json(&answer);
    } else {
        print!("{}", render_sessions(&sessions_of(&answer)));
    }
    Ok(ExitCode::SUCCESS)
}

async fn follow(client: &Client, conn: &ConnArgs, slot: Option<&str>) -> Result<ExitCode, Failure> {
    let mut socket = client.websocket("/tasks").await?;
    while let Some(frame) = socket.next().await {
        let text = match frame {
            Ok(Message::Text(t)) => t.as_str().to_string(),
            // The daemon is upgrading: follow the new one (its stream starts with an overview).
            Ok(Message::Close(Some(frame))) if u16::from(frame.code) == CLOSE_RESTARTING => {
                match client.reconnect("/tasks").await {
                    Some(again) => {
                        socket = again;
                        continue;
                    }
                    None => {
                        return Err(Failure::new(format!(
                            "the daemon at {} did not come back after its upgrade",
                            client.base()
                        )))
                    }
                }
            }
            Ok(Message::Close(frame)) => {
                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return Err(Failure::new(
                    format!("the daemon closed the task stream {why}")
                        .trim_end()
                        .to_string(),
                ));
            }
            Ok(_) => continue,
            Err(e) => {
                return Err(Failure::new(format!(
                    "lost the connection to the daemon at {} ({e})",
                    client.base()
                )))
            }
        };
        let Ok(mut event) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let Some(slot) = slot {
            if !keep_for_slot(&mut event, slot) {
                continue;
            }
        }
        let line = if conn.json {
            event.to_string() + "\n"
        } else {
            describe_event(&event)
        };
        let mut out = std::io::stdout().lock();
        if out
            .write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            // The reader went away (e.g. `| head`): that is a normal end.
            return Ok(ExitCode::SUCCESS);
        }
    }
    Err(Failure::new(format!(
        "lost the connection to the daemon at {}",
        client.base()
    )))
}

/// With `--slot`: keep events of that slot; trim the overview to that slot's sessions.
fn keep_for_slot(event: &mut Value, slot: &str) -> bool {
    let Some(payload) = event.get_mut("payload") else {
        return false;
    };
    if let Some(sessions) = payload.get_mut("sessions").and_then(Value::as_array_mut) {
        sessions.retain(|s| s.get("slotId").and_then(Value::as_str) == Some(slot));
        return true;
    }
    payload.get("slotId").and_then(Value::as_str) == Some(slot)
}

/// The sessions in any of the daemon's task answers: an overview `{sessions}`, one session
/// `{tasks}`, or an array of either sessions or bare tasks.
fn sessions_of(answer: &Value) -> Vec<Value> {
    let answer = answer.get("payload").unwrap_or(answer);
    if let Some(sessions) = answer.get("sessions").and_then(Value::as_array) {
        return sessions.clone();
    }
    if answer.get("tasks").is_some() {
        return vec![answer.clone()];
    }
    if let Some(items) = answer.as_array() {
        if items.iter().all(|i| i.get("tasks").is_some()) {
            return items.clone();
        }
        return vec![serde_json::json!({ "tasks": items })];
    }
    Vec::new()
}

fn render_sessions(sessions: &[Value]) -> String {
    if sessions.is_empty() {
        return "no task lists\n".to_string();
    }
    let mut out = String::new();
    for s in sessions {
        out.push_str(&session_header(s));
        out.push('\n');
        let tasks = s
            .get("tasks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if tasks.is_empty() {
            out.push_str("  (no tasks)\n");
        }
        for t in &tasks {
            out.push_str("  ");
            out.push_str(&task_line(t));
            out.push('\n');
        }
    }
    out
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `myproject  [slot agent1]  session 3f2a…  active  ~/src/myproject`
fn session_header(s: &Value) -> String {
    let mut parts = Vec::new();
    parts.push(
        str_field(s, "projectName")
            .unwrap_or("(unknown project)")
            .to_string(),
    );
    if let Some(slot) = str_field(s, "slotId") {
        parts.push(format!("[slot {slot}]"));
    }
    if let Some(id) = str_field(s, "sessionId") {
        parts.push(format!("session {}", short_id(id)));
    }
    match s.get("active").and_then(Value::as_bool) {
        Some(true) => parts.push("active".into()),
        Some(false) => parts.push("inactive".into()),
        None => {}
    }
    if let Some(cwd) = str_field(s, "cwd") {
        parts.push(cwd.to_string());
    }
    parts.join("  ")
}

fn short_id(id: &str) -> String {
    if id.chars().count() > 8 {
        format!("{}…", id.chars().take(8).collect::<String>())
    } else {
        id.to_string()
    }
}

fn status_symbol(status: &str) -> &'static str {
    match status {
        "pending" => "○",
        "in_progress" => "◐",
        "completed" => "●",
        _ => "?",
    }
}

/// `◐ #2 Write the parser (blocked by #1)`; legacy todos have `content` and no id.
fn task_line(t: &Value) -> String {
    let status = str_field(t, "status").unwrap_or("");
    let subject = str_field(t, "subject")
        .or_else(|| str_field(t, "content"))
        .unwrap_or("(no subject)");
    let mut line = format!("{} ", status_symbol(status));
    if let Some(id) = t.get("id").and_then(|v| {
        v.as_str()
            .map(str::to_string)
            .or_else(|| v.as_u64().map(|n| n.to_string()))
    }) {
        line.push_str(&format!("#{id} "));
    }
    line.push_str(subject);
    let blockers: Vec<String> = t
        .get("blockedBy")
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .filter_map(|v| {
                    v.as_str()
                        .map(|s| format!("#{s}"))
                        .or_else(|| v.as_u64().map(|n| format!("#{n}")))
                })
                .collect()
        })
        .unwrap_or_default();
    if !blockers.is_empty() {
        line.push_str(&format!(" (blocked by {})", blockers.join(", ")));
    }
    if let Some(owner) = str_field(t, "owner") {
        line.push_str(&format!(" [{owner}]"));
    }
    line
}

/// One or more lines for a `/tasks` event, prefixed with the local time.
fn describe_event(event: &Value) -> String {
    let kind = str_field(event, "type").unwrap_or("event");
    let empty = Value::Null;
    let p = event.get("payload").unwrap_or(&empty);
    let time = clock();
    let place = {
        let project = str_field(p, "projectName").unwrap_or("");
        match str_field(p, "slotId") {
            Some(slot) => format!("{project} [slot {slot}]").trim().to_string(),
            None => project.to_string(),
        }
    };
    let task = p.get("task").map(task_line).unwrap_or_default();
    match kind {
        "cc_tasks_overview" => {
            let sessions = sessions_of(event);
            format!(
                "{time} overview: {} sessions\n{}",
                sessions.len(),
                indent(&render_sessions(&sessions))
            )
        }
        "cc_task_started" => format!("{time} started    {task}  ({place})\n"),
        "cc_task_completed" => format!("{time} completed  {task}  ({place})\n"),
        "cc_session_active" | "cc_session_inactive" => {
            let what = if kind == "cc_session_active" {
                "active"
            } else {
                "inactive"
            };
            let id = str_field(p, "sessionId").map(short_id).unwrap_or_default();
            format!("{time} session {id} {what}  ({place})\n")
        }
        "cc_tasks_changed" => {
            let mut out = format!("{time} changed    {place}\n");
            for t in p
                .get("added")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push_str(&format!("           + {}\n", task_line(t)));
            }
            for t in p
                .get("removed")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push_str(&format!("           - {}\n", task_line(t)));
            }
            for c in p
                .get("statusChanged")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let prev = str_field(c, "previousStatus").unwrap_or("?");
                let t = c.get("task").map(task_line).unwrap_or_default();
                out.push_str(&format!("           ~ {t} (was {prev})\n"));
            }
            out
        }
        other => format!("{time} {other}  {place}\n"),
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// Local wall-clock time as HH:MM:SS.
fn clock() -> String {
    // SAFETY: time and localtime_r write only into values we own.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return "--:--:--".into();
        }
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overview_renders_sessions_and_tasks() {
        let overview = json!({"sessions": [{
        "sessionId": "0123456789abcdef", "slotId": "a1", "projectName": "proj", "active": true,
        "tasks": [
            {"id": "1", "subject": "Plan", "status": "completed", "blockedBy": []},
            {"id": "2", "subject": "Build", "status": "in_progress", "blockedBy": ["1"]}
        ]}]});
        let text = render_sessions(&sessions_of(&overview));
        assert_eq!(
            text,
            "proj  [slot a1]  session 01234567…  active\n  ● #1 Plan\n  ◐ #2 Build (blocked by #1)\n"
        );
    }

    #[test]
    fn slot_filter_keeps_only_that_slot() {
        let mut started =
            json!({"type": "cc_task_started", "payload": {"slotId": "b", "task": {}}});
        assert!(!keep_for_slot(&mut started, "a"));
        assert!(keep_for_slot(&mut started, "b"));
        let mut overview = json!({"type": "cc_tasks_overview", "payload": {"sessions": [{"slotId": "a"}, {"slotId": "b"}]}});
        assert!(keep_for_slot(&mut overview, "a"));
        assert_eq!(
            overview["payload"]["sessions"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn legacy_todos_show_their_content() {
        assert_eq!(
            task_line(&json!({"content": "Fix it", "status": "pending"})),
            "○ Fix it"
        );
    }
}
