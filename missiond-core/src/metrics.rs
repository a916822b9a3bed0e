//! Counters of what the daemon has done, and `/metrics` in the Prometheus text format.
//!
//! Counters are the daemon's own atomics ([`Counters`], one set per supervisor, so two daemons
//! in one process count apart), bumped where the work happens (a PTY read, a frame sent to a
//! viewer, an answer submitted): one relaxed add, nothing to lock.
//! Gauges (slots by status and state, viewers, tasks) are read from the live state when scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::tasks::TasksOverview;
use crate::protocol::{SemanticState, SlotInfo, SlotStatus};

/// Everything counted since the daemon started.
#[derive(Debug, Default)]
pub struct Counters {
    pub pty_bytes_read: AtomicU64,
    pub viewer_bytes_sent: AtomicU64,
    pub events_sent: AtomicU64,
    pub task_events_sent: AtomicU64,
    pub dialogs_answered: AtomicU64,
    pub prompts_submitted: AtomicU64,
    pub hook_events: AtomicU64,
    pub statusline_updates: AtomicU64,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

const STATUSES: [SlotStatus; 3] = [
    SlotStatus::Starting,
    SlotStatus::Running,
    SlotStatus::Exited,
];
const STATES: [SemanticState; 8] = [
    SemanticState::Starting,
    SemanticState::Idle,
    SemanticState::Thinking,
    SemanticState::ToolRunning,
    SemanticState::Responding,
    SemanticState::Confirming,
    SemanticState::Error,
    SemanticState::Exited,
];

/// The whole scrape: `text/plain; version=0.0.4`.
pub fn render(counters: &Counters, slots: &[SlotInfo], tasks: &TasksOverview) -> String {
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let count = |counter: &AtomicU64| vec![(String::new(), counter.load(Ordering::Relaxed) as f64)];

    let by_status: Vec<_> = STATUSES
        .iter()
        .map(|status| {
            let n = slots.iter().filter(|s| s.status == *status).count();
            (format!("{{status=\"{}\"}}", status_name(*status)), n as f64)
        })
        .collect();
    family(
        "missiond_slots",
        "gauge",
        "Slots by process status.",
        &by_status,
    );
    let by_state: Vec<_> = STATES
        .iter()
        .map(|state| {
            let n = slots.iter().filter(|s| s.state == *state).count();
            (format!("{{state=\"{}\"}}", state.as_str()), n as f64)
        })
        .collect();
    family(
        "missiond_slots_by_state",
        "gauge",
        "Slots by semantic state.",
        &by_state,
    );
    let viewers: usize = slots.iter().map(|s| s.viewers).sum();
    family(
        "missiond_viewers",
        "gauge",
        "Terminal viewers attached (/pty WebSockets).",
        &[(String::new(), viewers as f64)],
    );
    let restarts: u64 = slots.iter().map(|s| u64::from(s.restarts)).sum();
    family(
        "missiond_slot_restarts",
        "gauge",
        "Restarts of the listed slots' programs.",
        &[(String::new(), restarts as f64)],
    );
    family(
        "missiond_pty_read_bytes_total",
        "counter",
        "Bytes the slots' programs wrote to their terminals.",
        &count(&counters.pty_bytes_read),
    );
    family(
        "missiond_viewer_sent_bytes_total",
        "counter",
        "Bytes of frames sent to terminal viewers.",
        &count(&counters.viewer_bytes_sent),
    );
    family(
        "missiond_events_sent_total",
        "counter",
        "Messages sent on /events streams.",
        &count(&counters.events_sent),
    );
    family(
        "missiond_task_events_sent_total",
        "counter",
        "Messages sent on /tasks streams.",
        &count(&counters.task_events_sent),
    );
    family(
        "missiond_dialogs_answered_total",
        "counter",
        "Dialogs answered through confirm (REST, CLI, viewer buttons).",
        &count(&counters.dialogs_answered),
    );
    family(
        "missiond_prompts_submitted_total",
        "counter",
        "Prompts typed and submitted through prompt.",
        &count(&counters.prompts_submitted),
    );
    family(
        "missiond_hook_events_total",
        "counter",
        "Claude Code hook events heard (the second witness of a slot's state).",
        &count(&counters.hook_events),
    );
    family(
        "missiond_statusline_updates_total",
        "counter",
        "Status-line reports heard (cost, tokens, context).",
        &count(&counters.statusline_updates),
    );
    let drifting = slots
        .iter()
        .filter(|s| s.state_detail.drift.is_some())
        .count();
    family(
        "missiond_slots_drifting",
        "gauge",
        "Slots whose screen and hooks disagree now (states may be wrong for their release).",
        &[(String::new(), drifting as f64)],
    );
    let t = &tasks.tasks_by_status;
    family(
        "missiond_tasks",
        "gauge",
        "Claude Code tasks by status, over every task list watched.",
        &[
            ("{status=\"pending\"}".into(), t.pending as f64),
            ("{status=\"in_progress\"}".into(), t.in_progress as f64),
            ("{status=\"completed\"}".into(), t.completed as f64),
        ],
    );
    family(
        "missiond_task_sessions",
        "gauge",
        "Claude Code sessions with a task list, and how many are active.",
        &[
            (
                "{active=\"false\"}".into(),
                (tasks.total_sessions - tasks.active_sessions.min(tasks.total_sessions)) as f64,
            ),
            ("{active=\"true\"}".into(), tasks.active_sessions as f64),
        ],
    );
    if let Some(me) = crate::procfs::stat(std::process::id()) {
        family(
            "process_cpu_seconds_total",
            "counter",
            "CPU time of the daemon (user and system), in seconds.",
            &[(String::new(), me.cpu_seconds())],
        );
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the daemon, in bytes.",
            &[(String::new(), me.rss_bytes() as f64)],
        );
    }
    out
}

fn status_name(status: SlotStatus) -> &'static str {
    match status {
        SlotStatus::Starting => "starting",
        SlotStatus::Running => "running",
        SlotStatus::Exited => "exited",
    }
}
