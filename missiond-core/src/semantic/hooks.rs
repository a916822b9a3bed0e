//! Claude Code's hooks as a second witness of a slot's state.
//!
//! The screen decides the state (it parses dialogs and works for every program and release);
//! the hooks name the tool that runs and check the screen: when the two disagree for
//! [`DRIFT_AFTER`], the slot reports drift, since a screen rule is probably wrong for the
//! release. Hooks never submit anything and never end a dialog.

use crate::protocol::signals::ToolDetail;
use crate::protocol::SemanticState;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long the screen and the hooks may disagree before it is drift: longer than the busy ->
/// idle debounce and a slow redraw, short enough to be noticed during a turn.
pub const DRIFT_AFTER: Duration = Duration::from_secs(5);
/// Longest tool summary kept, in characters.
const SUMMARY_CHARS: usize = 120;

/// What one hook event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookSignal {
    /// SessionStart: the session is ready for a prompt.
    SessionStarted,
    /// UserPromptSubmit, PostToolUse, PostToolUseFailure: the turn goes on.
    Busy,
    /// PreToolUse: this tool is about to run (or to ask for permission).
    Tool(ToolDetail),
    /// PermissionRequest, or a Notification about a permission prompt: a dialog is up.
    PermissionPrompt,
    /// Stop, StopFailure: the turn ended.
    TurnEnded,
    /// SessionEnd: the session is over.
    SessionEnded,
    /// Anything else (SubagentStop, other notifications): heard, nothing to conclude.
    Other,
}

impl HookSignal {
    /// Reads a hook's JSON input (`hook_event_name`, `tool_name`, `tool_input`, ...).
    pub fn from_payload(payload: &Value) -> HookSignal {
        let event = payload
            .get("hook_event_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        match event {
            "SessionStart" => HookSignal::SessionStarted,
            "UserPromptSubmit" | "PostToolUse" | "PostToolUseFailure" => HookSignal::Busy,
            "PreToolUse" => HookSignal::Tool(ToolDetail {
                name: payload
                    .get("tool_name")
                    .and_then(Value::as_str)
                    .unwrap_or("tool")
                    .to_string(),
                summary: payload.get("tool_input").and_then(summarize_input),
            }),
            "PermissionRequest" => HookSignal::PermissionPrompt,
            "Notification" if is_permission_notification(payload) => HookSignal::PermissionPrompt,
            "Stop" | "StopFailure" => HookSignal::TurnEnded,
            "SessionEnd" => HookSignal::SessionEnded,
            _ => HookSignal::Other,
        }
    }
}

fn is_permission_notification(payload: &Value) -> bool {
    let kind = payload.get("notification_type").and_then(Value::as_str);
    let message = payload.get("message").and_then(Value::as_str).unwrap_or("");
    kind == Some("permission_prompt") || message.contains("needs your permission")
}

/// The most telling field of a tool's input, on one short line.
fn summarize_input(input: &Value) -> Option<String> {
    const KEYS: &[&str] = &[
        "command",
        "file_path",
        "path",
        "pattern",
        "url",
        "query",
        "description",
        "prompt",
        "subject",
    ];
    let text = KEYS
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))?;
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = line.chars().take(SUMMARY_CHARS).collect();
    if line.chars().count() > SUMMARY_CHARS {
        short.push('…');
    }
    Some(short)
}

/// What the hooks last said the session is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Claim {
    Idle,
    Busy,
    /// The tool, and whether a dialog has been on screen since it was announced (its
    /// permission question: after a refusal no hook says the tool is over).
    Tool(ToolDetail, bool),
    Ended,
}

/// The hooks' side of a slot, kept by its classifier.
#[derive(Debug, Default)]
pub struct HookWitness {
    claim: Option<Claim>,
    /// A permission prompt was announced and no dialog has been on screen since.
    permission_asked: bool,
    /// Since when the screen and the hooks disagree, and about what.
    disagreement: Option<(Instant, SemanticState, &'static str)>,
}

impl HookWitness {
    /// Whether any hook has been heard in this run.
    pub fn heard(&self) -> bool {
        self.claim.is_some() || self.permission_asked
    }

    pub fn hear(&mut self, signal: &HookSignal) {
        match signal {
            HookSignal::SessionStarted => self.claim = Some(Claim::Idle),
            HookSignal::Busy => {
                self.claim = Some(Claim::Busy);
                self.permission_asked = false;
            }
            HookSignal::Tool(t) => self.claim = Some(Claim::Tool(t.clone(), false)),
            HookSignal::PermissionPrompt => self.permission_asked = true,
            HookSignal::TurnEnded => {
                self.claim = Some(Claim::Idle);
                self.permission_asked = false;
            }
            HookSignal::SessionEnded => {
                self.claim = Some(Claim::Ended);
                self.permission_asked = false;
            }
            HookSignal::Other => {}
        }
    }

    /// Claude Code's session file says it is idle: a turn that ended without a Stop hook (an
    /// interrupt, a refused permission) leaves no tool running.
    pub fn session_idle(&mut self) {
        if matches!(self.claim, Some(Claim::Busy | Claim::Tool(..))) {
            self.claim = Some(Claim::Idle);
        }
        self.permission_asked = false;
    }

    /// The tool a PreToolUse named and no later hook finished.
    pub fn tool(&self) -> Option<&ToolDetail> {
        match &self.claim {
            Some(Claim::Tool(t, _)) => Some(t),
            _ => None,
        }
    }

    /// Compares with the state the screen gives. Returns the disagreement once it has lasted
    /// [`DRIFT_AFTER`]: (since, the screen's state, what the hooks say).
    pub fn compare(
        &mut self,
        screen: SemanticState,
        now: Instant,
    ) -> Option<(Instant, SemanticState, &'static str)> {
        if screen == SemanticState::Confirming {
            // The announced dialog is up; what the tool does after it is the screen's to tell
            // until the next hook.
            self.permission_asked = false;
            if let Some(Claim::Tool(_, dialog_seen)) = &mut self.claim {
                *dialog_seen = true;
            }
        }
        if screen == SemanticState::Idle && matches!(self.claim, Some(Claim::Tool(_, true))) {
            // Idle after the tool's dialog: refused (no hook says so) or done. The tool is over,
            // so the next prompt does not show it again before its own hooks arrive.
            self.claim = Some(Claim::Idle);
        }
        let hooks = match &self.claim {
            _ if self.permission_asked => Some("confirming"),
            Some(Claim::Idle) if screen.is_busy() => Some("idle"),
            Some(Claim::Tool(_, false)) if screen == SemanticState::Idle => Some("tool_running"),
            _ => None,
        };
        let Some(hooks) = hooks else {
            self.disagreement = None;
            return None;
        };
        let (since, _, _) = *self.disagreement.get_or_insert((now, screen, hooks));
        if self
            .disagreement
            .is_some_and(|(_, s, h)| s != screen || h != hooks)
        {
            self.disagreement = Some((since, screen, hooks));
        }
        (now >= since + DRIFT_AFTER).then_some((since, screen, hooks))
    }

    /// When the current disagreement becomes drift.
    pub fn deadline(&self) -> Option<Instant> {
        self.disagreement.map(|(since, _, _)| since + DRIFT_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hook_events_are_read_into_signals() {
        let tool = HookSignal::from_payload(&json!({
            "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": "sleep 6;\n  echo slept", "description": "Nap"},
        }));
        assert_eq!(
            tool,
            HookSignal::Tool(ToolDetail {
                name: "Bash".into(),
                summary: Some("sleep 6; echo slept".into())
            })
        );
        let named = |e: &str| HookSignal::from_payload(&json!({"hook_event_name": e}));
        assert_eq!(named("UserPromptSubmit"), HookSignal::Busy);
        assert_eq!(named("Stop"), HookSignal::TurnEnded);
        assert_eq!(named("PermissionRequest"), HookSignal::PermissionPrompt);
        assert_eq!(named("Notification"), HookSignal::Other);
        assert_eq!(named("SessionEnd"), HookSignal::SessionEnded);
        assert_eq!(named("whatever"), HookSignal::Other);
        let long = "x".repeat(500);
        let HookSignal::Tool(t) = HookSignal::from_payload(&json!({
            "hook_event_name": "PreToolUse", "tool_name": "Write",
            "tool_input": {"file_path": long},
        })) else {
            panic!("not a tool")
        };
        assert_eq!(
            t.summary.map(|s| s.chars().count()),
            Some(SUMMARY_CHARS + 1)
        );
        let asked = json!({"hook_event_name": "Notification",
            "notification_type": "permission_prompt", "message": "Claude needs your permission to use Bash"});
        assert_eq!(
            HookSignal::from_payload(&asked),
            HookSignal::PermissionPrompt
        );
    }

    #[test]
    fn a_disagreement_is_drift_only_after_a_while() {
        let t0 = Instant::now();
        let mut w = HookWitness::default();
        assert_eq!(w.compare(SemanticState::Thinking, t0), None);
        w.hear(&HookSignal::TurnEnded);
        assert_eq!(w.compare(SemanticState::Thinking, t0), None);
        assert_eq!(w.deadline(), Some(t0 + DRIFT_AFTER));
        assert_eq!(
            w.compare(SemanticState::Responding, t0 + DRIFT_AFTER),
            Some((t0, SemanticState::Responding, "idle"))
        );
        // The screen catches up: no more drift.
        assert_eq!(w.compare(SemanticState::Idle, t0 + DRIFT_AFTER), None);
        assert_eq!(w.deadline(), None);
    }

    #[test]
    fn a_dialog_on_screen_answers_the_permission_hook() {
        let t0 = Instant::now();
        let mut w = HookWitness::default();
        w.hear(&HookSignal::Tool(ToolDetail {
            name: "Bash".into(),
            summary: None,
        }));
        w.hear(&HookSignal::PermissionPrompt);
        assert_eq!(w.compare(SemanticState::Thinking, t0), None);
        assert_eq!(w.compare(SemanticState::Confirming, t0), None);
        // Refused: the screen is idle, and no hook says the tool ran; the tool is over.
        let later = t0 + DRIFT_AFTER * 2;
        assert_eq!(w.compare(SemanticState::Idle, later), None);
        assert_eq!(w.tool(), None);
        assert_eq!(w.compare(SemanticState::Idle, later + DRIFT_AFTER), None);
    }

    #[test]
    fn a_tool_the_screen_calls_idle_is_drift_unless_the_session_went_idle() {
        let t0 = Instant::now();
        let mut w = HookWitness::default();
        w.hear(&HookSignal::Tool(ToolDetail {
            name: "Bash".into(),
            summary: None,
        }));
        assert_eq!(w.compare(SemanticState::Idle, t0), None);
        assert_eq!(
            w.compare(SemanticState::Idle, t0 + DRIFT_AFTER),
            Some((t0, SemanticState::Idle, "tool_running"))
        );
        w.session_idle();
        assert_eq!(w.compare(SemanticState::Idle, t0 + DRIFT_AFTER), None);
    }
}
