//! `missiond rec`: list, replay and export the recordings of slots' runs (docs/RECORDINGS.md).

use clap::{Args, Subcommand};
use reqwest::Method;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use crate::client::{encode, Client, Failure};
use crate::output::{ago, now_ms, print_json, Table};
use crate::ConnArgs;
use missiond_core::protocol::recording::{RecordingUsage, RunSummary};
use missiond_core::recording::cast::{self, Event};

#[derive(Debug, Subcommand)]
pub enum RecVerb {
    /// Recorded runs of one slot; without ID, the disk use of every slot and the limits.
    Ls(LsArgs),
    /// Replay a run in this terminal (idle gaps shortened).
    Play(PlayArgs),
    /// Print a run's asciicast v2 file (for asciinema, or to keep).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Slot id (its runs are listed even after the slot was removed).
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlayArgs {
    /// Slot id.
    pub id: String,
    /// The run to play (default: the latest).
    #[arg(long, value_name = "N")]
    pub run: Option<u64>,
    /// Playback speed: 2 is twice as fast.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub speed: f64,
    /// Start at the first marker whose label starts with this (e.g. `dialog`, `answer`,
    /// `state:confirming`); what came before is drawn at once.
    #[arg(long, value_name = "MARKER")]
    pub from: Option<String>,
    /// Longest pause between two events, in seconds of the recording.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub max_idle: f64,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Slot id.
    pub id: String,
    /// The run to export (default: the latest).
    #[arg(long, value_name = "N")]
    pub run: Option<u64>,
}

pub async fn run(client: &Client, conn: &ConnArgs, verb: RecVerb) -> Result<ExitCode, Failure> {
    match verb {
        RecVerb::Ls(a) => ls(client, conn, a).await,
        RecVerb::Play(a) => play(client, a).await,
        RecVerb::Export(a) => {
            let text = fetch(client, &a.id, a.run).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| Failure::new(format!("cannot write the recording: {e}")))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn ls(client: &Client, conn: &ConnArgs, args: LsArgs) -> Result<ExitCode, Failure> {
    let Some(id) = args.id else {
        let usage: RecordingUsage = client.get("/api/recordings").await?;
        if conn.json {
            print_json(&usage);
            return Ok(ExitCode::SUCCESS);
        }
        let mut table = Table::new(&["SLOT", "RUNS", "SIZE"]);
        for s in &usage.slots {
            table.row(vec![s.slot.clone(), s.runs.to_string(), size(s.bytes)]);
        }
        print!("{}", table.render());
        let l = &usage.limits;
        println!(
            "total {} in {} runs ({}); limits: {} per slot, {} in total, {}; recording {}",
            size(usage.total_bytes),
            usage.runs,
            usage.dir,
            size(l.max_slot_bytes),
            size(l.max_total_bytes),
            if l.max_age_days > 0.0 {
                format!("{} days", l.max_age_days)
            } else {
                "no age limit".to_string()
            },
            if l.enabled { "on" } else { "off" }
        );
        return Ok(ExitCode::SUCCESS);
    };
    let runs = runs(client, &id).await?;
    if conn.json {
        print_json(&runs);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("slot '{id}' has no recorded runs");
        return Ok(ExitCode::SUCCESS);
    }
    let now = now_ms();
    let mut table = Table::new(&["RUN", "STARTED", "LENGTH", "SIZE", "SCREEN", "COMMAND"]);
    for r in &runs {
        let mut run = r.run.to_string();
        if r.recording {
            run.push_str(" (rec)");
        }
        table.row(vec![
            run,
            format!("{} ago", ago(now, r.started_at)),
            format!("{:.0}s", r.duration),
            size(r.bytes),
            format!("{}x{}", r.cols, r.rows),
            r.command.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

async fn runs(client: &Client, id: &str) -> Result<Vec<RunSummary>, Failure> {
    client.get(&format!("/api/slots/{}/runs", encode(id))).await
}

/// The text of run `run` (or the latest) of slot `id`.
async fn fetch(client: &Client, id: &str, run: Option<u64>) -> Result<String, Failure> {
    let run = match run {
        Some(n) => n,
        None => runs(client, id)
            .await?
            .last()
            .map(|r| r.run)
            .ok_or_else(|| Failure::new(format!("slot '{id}' has no recorded runs")))?,
    };
    client
        .call_text(
            Method::GET,
            &format!("/api/slots/{}/runs/{run}.cast", encode(id)),
            None::<&()>,
        )
        .await
}

async fn play(client: &Client, args: PlayArgs) -> Result<ExitCode, Failure> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(Failure::new("--speed must be a number > 0, e.g. 2"));
    }
    let text = fetch(client, &args.id, args.run).await?;
    let cast = cast::parse(&text).map_err(Failure::new)?;
    let steps = schedule(
        &cast.events,
        args.speed,
        args.max_idle,
        args.from.as_deref(),
    )
    .map_err(Failure::new)?;
    let mut out = std::io::stdout().lock();
    for (wait, data) in steps {
        if !wait.is_zero() {
            let _ = out.flush();
            std::thread::sleep(wait);
        }
        if out.write_all(data.as_bytes()).is_err() {
            break;
        }
    }
    let _ = out.write_all(b"\x1b[0m\r\n");
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// What `play` writes and how long it waits before each piece: output only (markers and
/// resizes are not drawn), pauses capped at `max_idle` and divided by `speed`, everything
/// before the `from` marker at once.
pub fn schedule(
    events: &[Event],
    speed: f64,
    max_idle: f64,
    from: Option<&str>,
) -> Result<Vec<(Duration, String)>, String> {
    let start = match from {
        Some(prefix) => events
            .iter()
            .position(|e| matches!(e, Event::Marker(_, label) if label.starts_with(prefix)))
            .ok_or_else(|| format!("no marker starts with '{prefix}' in this run"))?,
        None => 0,
    };
    let mut steps = Vec::new();
    let mut last: Option<f64> = None;
    for (i, event) in events.iter().enumerate() {
        let t = event.time();
        if i >= start {
            if let Some(prev) = last {
                let gap = (t - prev).clamp(0.0, max_idle.max(0.0)) / speed;
                if gap > 0.0 {
                    if let Some(step) = steps
                        .last_mut()
                        .filter(|(_, d): &&mut (Duration, String)| d.is_empty())
                    {
                        step.0 += Duration::from_secs_f64(gap);
                    } else {
                        steps.push((Duration::from_secs_f64(gap), String::new()));
                    }
                }
            }
            last = Some(t);
        }
        if let Event::Output(_, data) = event {
            steps.push((Duration::ZERO, data.clone()));
        }
    }
    Ok(steps)
}

/// `812 B`, `3.4 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(steps: &[(Duration, String)]) -> (f64, String) {
        let wait = steps.iter().map(|(d, _)| d.as_secs_f64()).sum();
        let text = steps.iter().map(|(_, s)| s.as_str()).collect();
        (wait, text)
    }

    #[test]
    fn idle_gaps_are_capped_and_speed_divides_them() {
        let events = vec![
            Event::Output(0.0, "a".into()),
            Event::Output(100.0, "b".into()),
            Event::Marker(100.5, "state:idle".into()),
            Event::Output(101.0, "c".into()),
        ];
        let (wait, text) = total(&schedule(&events, 1.0, 2.0, None).unwrap());
        assert_eq!(text, "abc");
        assert!((wait - 3.0).abs() < 1e-6, "{wait}");
        let (wait, _) = total(&schedule(&events, 2.0, 2.0, None).unwrap());
        assert!((wait - 1.5).abs() < 1e-6, "{wait}");
    }

    #[test]
    fn from_a_marker_draws_what_came_before_at_once() {
        let events = vec![
            Event::Output(0.0, "a".into()),
            Event::Output(1.0, "b".into()),
            Event::Marker(5.0, "dialog:Bash command|1. Yes".into()),
            Event::Output(6.0, "c".into()),
        ];
        let steps = schedule(&events, 1.0, 10.0, Some("dialog")).unwrap();
        let (wait, text) = total(&steps);
        assert_eq!(text, "abc");
        assert!((wait - 1.0).abs() < 1e-6, "{wait}");
        assert!(schedule(&events, 1.0, 10.0, Some("answer")).is_err());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
    }
}
