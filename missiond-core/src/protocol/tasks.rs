//! Wire types of the `/tasks` stream and the task REST routes.
//!
//! Every frame is `{"type": "...", "payload": {...}}` with camelCase payload fields; see
//! `docs/TASKS.md` for examples. The task itself has the shape of Claude Code's own task file
//! (`<claude dir>/tasks/<list>/<n>.json`), so a file and a frame read the same.

use serde::{Deserialize, Serialize};

/// Where a task's status stands. Snake_case on the wire, as in Claude Code's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    InProgress,
    Completed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        super::names::name_of(&self)
    }
}

/// One task. Current lists give every field; a legacy todo gives `id` (its 1-based position),
/// `subject` (its `content`), `status` and `activeForm`, and empty `description`/`blocks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub subject: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_form: Option<String>,
    pub status: TaskStatus,
    #[serde(default)]
    pub blocks: Vec<String>,
    #[serde(default)]
    pub blocked_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Which on-disk format a list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListSource {
    /// `<claude dir>/tasks/<list id>/<n>.json`, one file per task (Claude Code 2.1.16 and later).
    Tasks,
    /// `<claude dir>/todos/<session>-agent-<agent>.json`, one array per agent (older versions).
    Todos,
}

/// Task counts over every list in an overview.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct TasksByStatus {
    pub pending: usize,
    pub in_progress: usize,
    pub completed: usize,
}

/// One task list and what is known of the session that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionTasks {
    /// The list id: the Claude Code session id unless `CLAUDE_CODE_TASK_LIST_ID` was set.
    /// For a legacy todos file, the session part of its name.
    pub session_id: String,
    /// The supervised slot whose process owns the session, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_id: Option<String>,
    /// Last path component of the session's cwd, or `unknown` when no session file names it.
    pub project_name: String,
    /// The session's working directory, `null` when unknown.
    #[serde(default)]
    pub cwd: Option<String>,
    /// The session's process is alive, or (with no session file) its list changed in the last
    /// 5 minutes.
    pub active: bool,
    pub source: ListSource,
    /// For a legacy todos file of a sub-agent (`<session>-agent-<agent>` with agent != session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub tasks: Vec<Task>,
}

/// Payload of `cc_tasks_overview`, and the body of `GET /api/tasks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TasksOverview {
    pub total_sessions: usize,
    pub active_sessions: usize,
    pub tasks_by_status: TasksByStatus,
    pub sessions: Vec<SessionTasks>,
}

/// A task whose status changed, with the status it had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub task: Task,
    pub previous_status: TaskStatus,
}

/// Payload of `cc_tasks_changed`: one per list per change, with the list's tasks afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TasksChanged {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_id: Option<String>,
    pub project_name: String,
    pub source: ListSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub added: Vec<Task>,
    pub removed: Vec<Task>,
    pub status_changed: Vec<StatusChange>,
    /// Tasks whose subject, description, blockers or owner changed (status changes excluded).
    #[serde(default)]
    pub updated: Vec<Task>,
    /// Every task of the list after the change (empty when the list was deleted).
    pub tasks: Vec<Task>,
}

/// Payload of `cc_task_started` and `cc_task_completed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskTransition {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_id: Option<String>,
    pub project_name: String,
    pub task: Task,
}

/// Payload of `cc_session_active` and `cc_session_inactive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionActivity {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_id: Option<String>,
    pub project_name: String,
    #[serde(default)]
    pub cwd: Option<String>,
    pub source: ListSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// Server -> client frames of `/tasks`: `{"type": "cc_...", "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum TaskEvent {
    CcTasksOverview(TasksOverview),
    CcTasksChanged(TasksChanged),
    CcTaskStarted(TaskTransition),
    CcTaskCompleted(TaskTransition),
    CcSessionActive(SessionActivity),
    CcSessionInactive(SessionActivity),
}

impl TaskEvent {
    /// The wire `type` of this event, e.g. `cc_task_started`.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskEvent::CcTasksOverview(_) => "cc_tasks_overview",
            TaskEvent::CcTasksChanged(_) => "cc_tasks_changed",
            TaskEvent::CcTaskStarted(_) => "cc_task_started",
            TaskEvent::CcTaskCompleted(_) => "cc_task_completed",
            TaskEvent::CcSessionActive(_) => "cc_session_active",
            TaskEvent::CcSessionInactive(_) => "cc_session_inactive",
        }
    }

    /// The list the event is about (`None` for the overview).
    pub fn session_id(&self) -> Option<&str> {
        match self {
            TaskEvent::CcTasksOverview(_) => None,
            TaskEvent::CcTasksChanged(c) => Some(&c.session_id),
            TaskEvent::CcTaskStarted(t) | TaskEvent::CcTaskCompleted(t) => Some(&t.session_id),
            TaskEvent::CcSessionActive(s) | TaskEvent::CcSessionInactive(s) => Some(&s.session_id),
        }
    }

    /// The supervised slot the event belongs to, if any.
    pub fn slot_id(&self) -> Option<&str> {
        match self {
            TaskEvent::CcTasksOverview(_) => None,
            TaskEvent::CcTasksChanged(c) => c.slot_id.as_deref(),
            TaskEvent::CcTaskStarted(t) | TaskEvent::CcTaskCompleted(t) => t.slot_id.as_deref(),
            TaskEvent::CcSessionActive(s) | TaskEvent::CcSessionInactive(s) => s.slot_id.as_deref(),
        }
    }
}

/// Client -> server frames of `/tasks`. `{"type":"get_tasks"}` asks for the overview again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TasksClientMsg {
    GetTasks,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shape() {
        let ev = TaskEvent::CcTaskStarted(TaskTransition {
            session_id: "s1".into(),
            slot_id: Some("a".into()),
            project_name: "proj".into(),
            task: Task {
                id: "1".into(),
                subject: "Design".into(),
                description: String::new(),
                active_form: Some("Designing".into()),
                status: TaskStatus::InProgress,
                blocks: vec![],
                blocked_by: vec!["2".into()],
                owner: None,
            },
        });
        let v = serde_json::to_value(&ev).unwrap_or_default();
        assert_eq!(v["type"], "cc_task_started");
        assert_eq!(v["payload"]["sessionId"], "s1");
        assert_eq!(v["payload"]["slotId"], "a");
        assert_eq!(v["payload"]["task"]["activeForm"], "Designing");
        assert_eq!(v["payload"]["task"]["status"], "in_progress");
        assert_eq!(v["payload"]["task"]["blockedBy"][0], "2");
        let back: TaskEvent = serde_json::from_value(v)
            .unwrap_or(TaskEvent::CcTasksOverview(TasksOverview::default()));
        assert_eq!(back, ev);
        let get: Result<TasksClientMsg, _> = serde_json::from_str(r#"{"type":"get_tasks"}"#);
        assert!(matches!(get, Ok(TasksClientMsg::GetTasks)));
    }
}
