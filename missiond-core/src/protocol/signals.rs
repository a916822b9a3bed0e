//! Claude Code's own signals on the wire: the tool a hook named, drift between the screen and
//! the hooks, cost and context figures, and `missiond doctor`'s checks.

use serde::{Deserialize, Serialize};

/// The tool Claude Code is running, as its PreToolUse hook named it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolDetail {
    /// `Bash`, `Write`, `Edit`, `Task`, an MCP tool's name, ...
    pub name: String,
    /// A short summary of its input (the command, the file), at most a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// The screen and Claude Code's hooks have disagreed for a few seconds: the screen rules are
/// probably wrong for this release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// The state the screen rules give (`thinking`, `idle`, ...).
    pub screen: String,
    /// What the hooks say (`idle`: the turn stopped; `confirming`: a permission prompt is up;
    /// `tool_running`: a tool runs).
    pub hooks: String,
    /// Milliseconds since the Unix epoch when the disagreement began.
    pub since: u64,
    /// The Claude Code release of the slot, when known.
    #[serde(default)]
    pub claude_version: Option<String>,
}

/// A slot's cost and context figures, from Claude Code's status-line input (and its
/// transcript where the release gives less). Unknown figures are `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub model: Option<String>,
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub context_used_percent: Option<f64>,
    /// Milliseconds since the Unix epoch.
    pub updated_at: u64,
}

/// How one check of `missiond doctor` came out.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        super::names::name_of(&self)
    }
}

/// One line of `missiond doctor` (`GET /api/doctor`): a section adds one more of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoctorCheck {
    /// What was checked, e.g. `slot cc: hooks`.
    pub name: String,
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// What to do about it, when it is not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// `GET /api/doctor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoctorReport {
    pub checks: Vec<DoctorCheck>,
}

impl DoctorReport {
    /// The worst status of all checks (`ok` when there are none).
    pub fn worst(&self) -> CheckStatus {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(CheckStatus::Ok)
    }
}
