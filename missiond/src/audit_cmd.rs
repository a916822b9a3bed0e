//! `missiond audit`: who did what to which slot, from the daemon's audit trail; and
//! `missiond notify test`: a sample notification to every `[[notify]]` receiver.

use clap::{Args, Subcommand};
use serde_json::Value;
use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use crate::client::{encode, Client, Failure};
use crate::output::{print_json, Table};
use crate::ConnArgs;
use missiond_core::protocol::audit::{AuditEntry, NotifyTestResult, TokenKind};

/// How often `--follow` asks for new entries.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this slot.
    #[arg(long, value_name = "ID")]
    pub slot: Option<String>,
    /// Keep running and print new entries as they are written.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many of the newest entries to show first.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
}

pub async fn audit(client: &Client, conn: &ConnArgs, args: AuditArgs) -> Result<ExitCode, Failure> {
    let mut path = format!("/api/audit?limit={}", args.limit.max(1));
    if let Some(slot) = &args.slot {
        path.push_str(&format!("&slot={}", encode(slot)));
    }
    let entries: Vec<Value> = client.get(&path).await?;
    if !args.follow {
        if conn.json {
            print_json(&entries);
        } else {
            print!("{}", table(&entries, true));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Follow: one line per entry (JSON lines with --json); poll from the last time seen,
    // skipping what was already printed at that very millisecond.
    let mut since = 0;
    let mut seen_at_since: HashSet<String> = HashSet::new();
    let mut batch = entries;
    let mut first = true;
    loop {
        let mut fresh = Vec::new();
        for entry in batch {
            let time = entry["time"].as_u64().unwrap_or(0);
            let key = entry.to_string();
            if time < since || (time == since && seen_at_since.contains(&key)) {
                continue;
            }
            if time > since {
                since = time;
                seen_at_since.clear();
            }
            seen_at_since.insert(key);
            fresh.push(entry);
        }
        if conn.json {
            for entry in &fresh {
                println!("{entry}");
            }
        } else if !fresh.is_empty() || first {
            print!("{}", table(&fresh, first));
        }
        first = false;
        tokio::time::sleep(FOLLOW_EVERY).await;
        let mut path = format!("/api/audit?limit=10000&since={since}");
        if let Some(slot) = &args.slot {
            path.push_str(&format!("&slot={}", encode(slot)));
        }
        batch = client.get(&path).await?;
    }
}

fn table(entries: &[Value], header: bool) -> String {
    let mut table = Table::new(&["TIME (UTC)", "SLOT", "ACTION", "WHO", "WHAT"]);
    for raw in entries {
        let Ok(entry) = serde_json::from_value::<AuditEntry>(raw.clone()) else {
            continue;
        };
        table.row(vec![
            utc_time(entry.time),
            entry.slot.clone(),
            entry.action.as_str().to_string(),
            who(&entry),
            what(&entry, raw),
        ]);
    }
    let text = table.render();
    if header {
        text
    } else {
        text.lines().skip(1).map(|l| format!("{l}\n")).collect()
    }
}

fn who(entry: &AuditEntry) -> String {
    let a = &entry.actor;
    let mut who = a.client.as_str().to_string();
    if let Some(remote) = &a.remote {
        who.push_str(&format!(" {remote}"));
    }
    if a.token == TokenKind::ReadOnly {
        who.push_str(" (read-only token)");
    }
    who
}

fn what(entry: &AuditEntry, raw: &Value) -> String {
    if let Some(dialog) = &entry.dialog {
        let about = [dialog.title.as_str(), dialog.body.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.replace('\n', " "))
            .collect::<Vec<_>>()
            .join(": ");
        let chosen = match &entry.option {
            Some(option) => {
                let meaning = raw["option"]["meaning"]
                    .as_str()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                format!("{}. {}{meaning}", option.n, option.label)
            }
            // A "no" given by Escape: the dialog had no No option.
            None => "Escape (no)".to_string(),
        };
        return format!("{chosen} to \"{about}\"");
    }
    if let Some(command) = &entry.command {
        return command.join(" ");
    }
    if let (Some(c), Some(r)) = (entry.cols, entry.rows) {
        return format!("{c}x{r}");
    }
    match (&entry.text, entry.bytes) {
        (Some(text), _) => format!("{text:?}"),
        (None, Some(n)) => format!("{n} bytes"),
        _ => String::new(),
    }
}

/// `2026-12-02 14:05:03` from milliseconds since the epoch (proleptic Gregorian, UTC).
fn utc_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(Debug, Subcommand)]
pub enum NotifyVerb {
    /// Send a sample `confirming` event to every [[notify]] receiver and say what each answered.
    Test(NotifyTestArgs),
}

#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    /// The slot id the sample event names.
    #[arg(long, default_value = "example", value_name = "ID")]
    pub slot: String,
}

pub async fn notify(
    client: &Client,
    conn: &ConnArgs,
    verb: NotifyVerb,
) -> Result<ExitCode, Failure> {
    let NotifyVerb::Test(args) = verb;
    let body = serde_json::json!({ "slot": args.slot });
    let results: Vec<NotifyTestResult> = client.post("/api/notify/test", Some(&body)).await?;
    if conn.json {
        print_json(&results);
    } else if results.is_empty() {
        println!("no [[notify]] receivers in the daemon's config: nothing was sent");
    } else {
        for r in &results {
            match &r.error {
                None => println!("ok      {}", r.target),
                Some(e) => println!("FAILED  {}: {e}", r.target),
            }
        }
    }
    Ok(if results.iter().all(|r| r.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc_time(1_796_216_703_000), "2026-12-02 13:05:03");
    }
}
