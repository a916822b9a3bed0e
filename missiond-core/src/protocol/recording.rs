//! Wire types of recordings (`GET /api/slots/{id}/runs`, `GET /api/recordings`,
//! `missiond rec ls`). The recordings themselves are asciicast v2 files: docs/RECORDINGS.md.

use serde::{Deserialize, Serialize};

/// One recorded run of a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub slot: String,
    /// The run's number within its slot: 1, 2, ... (the file is `<n>.cast`).
    pub run: u64,
    /// When the run started, milliseconds since the Unix epoch.
    pub started_at: u64,
    /// Seconds from the start to the last event written so far.
    pub duration: f64,
    /// Size of the `.cast` file.
    pub bytes: u64,
    pub cols: u16,
    pub rows: u16,
    /// The command line the run started.
    pub command: String,
    /// The run is still being written.
    pub recording: bool,
}

/// Disk use of one slot's recordings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotUsage {
    pub slot: String,
    pub runs: u64,
    pub bytes: u64,
}

/// The limits recordings are kept within (`[record]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordLimits {
    /// Recording is on for slots that do not say `record = false`.
    pub enabled: bool,
    pub max_slot_bytes: u64,
    pub max_total_bytes: u64,
    /// Runs older than this many days are removed (0: no age limit).
    pub max_age_days: f64,
}

/// `GET /api/recordings`: where recordings are, how much they take, and the limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingUsage {
    pub dir: String,
    pub total_bytes: u64,
    pub runs: u64,
    pub limits: RecordLimits,
    pub slots: Vec<SlotUsage>,
}
