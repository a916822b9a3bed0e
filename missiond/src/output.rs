//! Human-readable output: aligned tables and short renderings of slots, states and times.
//! (`--json` output never goes through here: it prints the wire types as they are.)

use missiond_core::protocol::{SlotInfo, SlotStatus, StateDetail};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// A table whose columns are padded to their widest cell (measured in characters).
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let width = widths.get(i).copied().unwrap_or(0);
                    line.push_str(cell);
                    line.push_str(&" ".repeat(width.saturating_sub(cell.chars().count()) + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Print a value as pretty JSON (the `--json` output of every verb).
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("missiond: cannot encode JSON: {e}"),
    }
}

/// The `ls` table.
pub fn slots_table(slots: &[SlotInfo]) -> String {
    let mut table = Table::new(&[
        "ID", "STATUS", "STATE", "PID", "SIZE", "RESTARTS", "SINCE", "COST", "CONTEXT", "WORKTREE",
        "COMMAND",
    ]);
    let now = now_ms();
    for s in slots {
        table.row(vec![
            s.id.clone(),
            status_text(s),
            s.state.as_str().to_string(),
            s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            format!("{}x{}", s.cols, s.rows),
            s.restarts.to_string(),
            // How long the slot has been in its current state: "idle 5m", "exited 2h".
            if s.state_since == 0 {
                "-".into()
            } else {
                ago(now, s.state_since)
            },
            cost_text(s),
            context_text(s),
            worktree_text(s),
            command_line(&s.command, &s.args),
        ]);
    }
    table.render()
}

/// `$0.42` from Claude Code's status line, or `-`.
pub fn cost_text(s: &SlotInfo) -> String {
    match s.usage.as_ref().and_then(|u| u.cost_usd) {
        Some(cost) => format!("${cost:.2}"),
        None => "-".into(),
    }
}

/// `12%` of the context window in use, or `-`.
pub fn context_text(s: &SlotInfo) -> String {
    match s.usage.as_ref().and_then(|u| u.context_used_percent) {
        Some(used) => format!("{used:.0}%"),
        None => "-".into(),
    }
}

/// `missiond/a1 +12 -3` (and `2↑ 1↓` when the branch is ahead or behind its base), or `-`.
pub fn worktree_text(s: &SlotInfo) -> String {
    let Some(w) = &s.worktree else {
        return "-".into();
    };
    let mut text = format!(
        "{} +{} -{}",
        w.branch, w.stats.insertions, w.stats.deletions
    );
    if w.stats.ahead > 0 {
        text.push_str(&format!(" {}↑", w.stats.ahead));
    }
    if w.stats.behind > 0 {
        text.push_str(&format!(" {}↓", w.stats.behind));
    }
    text
}

/// `running`, or `exited(3)` / `exited(SIGKILL)` so the cause is visible in the table.
pub fn status_text(s: &SlotInfo) -> String {
    match s.status {
        SlotStatus::Starting => "starting".into(),
        SlotStatus::Running => "running".into(),
        SlotStatus::Exited => format!(
            "exited({})",
            exit_text(s.exit_code, s.exit_signal.as_deref())
        ),
    }
}

/// `code 3`, `SIGKILL`, or `?` when the daemon does not know.
pub fn exit_text(code: Option<i32>, signal: Option<&str>) -> String {
    match (signal, code) {
        (Some(sig), _) => sig.to_string(),
        (None, Some(code)) => code.to_string(),
        (None, None) => "?".into(),
    }
}

/// One line about a slot, for the answers of `launch`, `kill`, `restart`.
pub fn slot_line(s: &SlotInfo) -> String {
    let pid = s.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
    format!(
        "{} {}{} [{}x{}] {}",
        s.id,
        status_text(s),
        pid,
        s.cols,
        s.rows,
        command_line(&s.command, &s.args)
    )
}

/// The state and, when confirming, the dialog with its numbered options.
pub fn state_text(state: &str, detail: &StateDetail) -> String {
    let mut out = state.to_string();
    if let Some(d) = &detail.dialog {
        let title = if d.title.is_empty() {
            String::new()
        } else {
            format!(" {}:", d.title)
        };
        out.push_str(&format!("\n {}{} {}", kind_text(d), title, d.question));
        if !d.body.is_empty() {
            for line in d.body.lines() {
                out.push_str(&format!("\n   {line}"));
            }
        }
        for o in &d.options {
            let mark = if o.selected { "❯" } else { " " };
            out.push_str(&format!("\n {mark} {}. {}", o.n, o.label));
        }
    }
    out
}

fn kind_text(d: &missiond_core::protocol::Dialog) -> String {
    serde_json::to_value(d.kind)
        .ok()
        .and_then(|v| v.as_str().map(|s| format!("[{s}]")))
        .unwrap_or_default()
}

/// `bash -lc 'echo hi'`: the command with arguments quoted where a shell would need it.
pub fn command_line(command: &str, args: &[String]) -> String {
    std::iter::once(command)
        .chain(args.iter().map(|a| a.as_str()))
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `12s`, `5m`, `3h`, `2d`: how long ago a millisecond timestamp was.
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["ID", "STATE"]);
        t.row(vec!["a-long-id".into(), "idle".into()]);
        t.row(vec!["b".into(), "thinking".into()]);
        assert_eq!(
            t.render(),
            "ID         STATE\na-long-id  idle\nb          thinking\n"
        );
    }

    #[test]
    fn commands_are_quoted_like_a_shell() {
        assert_eq!(
            command_line("bash", &["-c".into(), "echo it's".into()]),
            r"bash -c 'echo it'\''s'"
        );
        assert_eq!(command_line("sleep", &["10".into()]), "sleep 10");
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(ago(10_000, 0), "10s");
        assert_eq!(ago(7_200_000, 0), "2h");
    }
}
