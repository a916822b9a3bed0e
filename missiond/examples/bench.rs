//! End-to-end benchmarks of missiond (issue 7). Results and method: docs/PERFORMANCE.md.
//!
//! ```text
//! cargo build --release -p missiond            # the daemon under test (built here if missing)
//! cargo run --release -p missiond --example bench -- [--quick] [--only NAME]... [--runs N]
//! ```
//!
//! Starts the real release daemon (`target/release/missiond`, next to this example's
//! directory) on 127.0.0.1 with a temporary state, home and claude directory and its own
//! token, creates slots over REST and reads `/pty`, `/tasks` with tokio-tungstenite clients.
//! Every figure is the median of `--runs` runs (default 5) with min and max; ratios are taken
//! within one run. Sections (`--only`): `throughput` (raw PTY rate and 1/4/16 viewers),
//! `echo`, `slow`, `scale`, `tasks`, `inproc` (vt100 parse, frame encoding, classifier),
//! `record` (throughput with and without recording the run), `busy` (slots showing a busy
//! Claude Code: a recorded spinner replayed, and the real Claude Code when installed).
//!
//! The machine is shared: compare figures of one run with each other, not across days.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// One megabyte as rates are quoted here (and by ttyd's figures): 10^6 bytes.
const MB: f64 = 1e6;
/// Printed by the slot after the benchmark file; the viewers stop when they see it.
const MARK: &str = "MISSIOND_BENCH_END_7f3a";
/// Bounds every wait, so a broken daemon fails the run instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Parser)]
#[command(about = "End-to-end benchmarks of the missiond daemon (docs/PERFORMANCE.md)")]
struct Args {
    /// Shorter runs for development: 3 runs, 16 MiB file, 10 s idle, fewer keys and writes.
    #[arg(long)]
    quick: bool,
    /// Run only these sections: throughput, echo, slow, scale, tasks, inproc, record, busy
    /// (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Runs per figure (default 5, or 3 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Size of the generated file in MiB (default 64, or 16 with --quick).
    #[arg(long)]
    file_mib: Option<usize>,
    /// Size of the file of the slow-viewer section in MiB (default 64, or 16 with --quick).
    #[arg(long)]
    fan_mib: Option<usize>,
    /// Seconds of idle measured per scale step (default 30, or 10 with --quick).
    #[arg(long)]
    idle_secs: Option<u64>,
    /// Viewer counts of the throughput section (default 1,4,16; the first is the reference).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    viewers: Vec<usize>,
    /// Do not run `cargo build --release -p missiond` first.
    #[arg(long)]
    no_build: bool,
    /// Also write the result table (markdown) to this file.
    #[arg(long, value_name = "PATH")]
    markdown: Option<PathBuf>,
    /// Viewers of the throughput and slow-viewer sections read JSON `data` frames instead of
    /// binary frames of raw bytes (`?binary=1`, what the browser viewer and `missiond attach`
    /// use, and the default here).
    #[arg(long)]
    json: bool,
    /// Busy slot counts of the busy section, reached in this order (default 1,4,8, or 1,4
    /// with --quick).
    #[arg(long, value_delimiter = ',')]
    busy_slots: Vec<usize>,
    /// Make the busy section's recording instead of benchmarking: one real Claude Code
    /// (.e2e-tools) thinking in a slot for a while, its run's .cast trimmed and written here.
    #[arg(long, value_name = "PATH")]
    record_busy: Option<PathBuf>,
    /// The busy section's slot program: replay this .cast's output on stdout at its recorded
    /// times, looping its busy part (the bench runs itself with this).
    #[arg(long, value_name = "CAST", hide = true)]
    replay: Option<PathBuf>,
}

struct Settings {
    runs: usize,
    file_mib: usize,
    fan_mib: usize,
    idle_secs: u64,
    keys: usize,
    task_writes: usize,
    scale: Vec<usize>,
    viewers: Vec<usize>,
    /// What the viewers of sections 2 and 4 read, for the table's header.
    frames: &'static str,
    /// Busy slot counts of section 9, ascending.
    busy_slots: Vec<usize>,
    /// Measuring windows per busy slot count, and their length.
    busy_windows: usize,
    busy_window: Duration,
}

impl Args {
    fn settings(&self) -> Settings {
        let q = self.quick;
        Settings {
            runs: self.runs.unwrap_or(if q { 3 } else { 5 }).max(1),
            file_mib: self.file_mib.unwrap_or(if q { 16 } else { 64 }).max(1),
            fan_mib: self.fan_mib.unwrap_or(if q { 16 } else { 64 }).max(1),
            idle_secs: self.idle_secs.unwrap_or(if q { 10 } else { 30 }).max(5),
            keys: if q { 200 } else { 500 },
            task_writes: if q { 20 } else { 50 },
            scale: vec![50, 200],
            viewers: self.viewers.iter().copied().filter(|&n| n > 0).collect(),
            frames: if self.json {
                "JSON `data` frames"
            } else {
                "binary frames (`?binary=1`)"
            },
            busy_slots: {
                let mut counts: Vec<usize> = if self.busy_slots.is_empty() {
                    if q {
                        vec![1, 4]
                    } else {
                        vec![1, 4, 8]
                    }
                } else {
                    self.busy_slots.iter().copied().filter(|&n| n > 0).collect()
                };
                counts.sort_unstable();
                counts.dedup();
                counts
            },
            busy_windows: if q { 2 } else { 3 },
            busy_window: Duration::from_secs(if q { 2 } else { 5 }),
        }
    }

    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(cast) = &args.replay {
        return replay_cast(cast);
    }
    for name in &args.only {
        if ![
            "throughput",
            "echo",
            "slow",
            "scale",
            "tasks",
            "inproc",
            "record",
            "busy",
        ]
        .contains(&name.as_str())
        {
            bail!("unknown section {name:?}: use throughput, echo, slow, scale, tasks, inproc, record or busy");
        }
    }
    let s = args.settings();
    let exe = daemon_exe(args.no_build)?;
    if let Some(out) = &args.record_busy {
        return record_busy_cast(&exe, out).await;
    }
    let work = tempfile::tempdir()?;
    let mut table = Table::default();
    eprintln!(
        "daemon: {}  runs: {}  (load average now: {})",
        exe.display(),
        s.runs,
        loadavg()
    );

    if args.wants("inproc") {
        inproc(&s, &mut table)?;
    }
    let file = work.path().join("colour.txt");
    let fan_file = work.path().join("colour-fan.txt");
    for (path, mib, wanted) in [
        (
            &file,
            s.file_mib,
            args.wants("throughput") || args.wants("record"),
        ),
        (&fan_file, s.fan_mib, args.wants("slow")),
    ] {
        if wanted {
            let data = sample(mib * 1024 * 1024, b"\n");
            std::fs::write(path, &data)?;
            eprintln!(
                "generated {} ({} bytes, {} lines)",
                path.display(),
                data.len(),
                count_lines(&data)
            );
        }
    }
    if args.wants("throughput") || args.wants("echo") || args.wants("slow") {
        let mut daemon = Daemon::start(&exe, "")?;
        daemon.binary_viewers = !args.json;
        if args.wants("throughput") {
            throughput(&daemon, &file, &s, &mut table).await?;
        }
        if args.wants("echo") {
            echo(&daemon, &s, &mut table).await?;
        }
        if args.wants("slow") {
            slow(&daemon, &fan_file, &s, &mut table).await?;
        }
    }
    if args.wants("record") {
        record(&exe, &file, &s, &mut table, !args.json).await?;
    }
    if args.wants("scale") {
        scale(&exe, &s, &mut table).await?;
    }
    if args.wants("tasks") {
        tasks(&exe, &s, &mut table).await?;
    }
    if args.wants("busy") {
        busy(&exe, &s, &mut table).await?;
    }

    let md = table.markdown(&s);
    println!("\n{md}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Figures

/// Median, min and max of one figure's runs.
#[derive(Debug, Clone, Copy)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(values: &[f64]) -> Stat {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stat {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stat {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// Value at quantile `q` (0..=1) of samples, nearest rank.
fn quantile(samples: &[f64], q: f64) -> f64 {
    let mut v = samples.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

struct Row {
    section: &'static str,
    what: String,
    stat: Stat,
    unit: &'static str,
    note: String,
}

impl Table {
    fn add(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        values: &[f64],
        unit: &'static str,
        note: impl Into<String>,
    ) {
        let row = Row {
            section,
            what: what.into(),
            stat: Stat::of(values),
            unit,
            note: note.into(),
        };
        eprintln!(
            "  {:<52} {:>10} {:<6} (min {}, max {}, n={}) {}",
            row.what,
            fmt(row.stat.median),
            row.unit,
            fmt(row.stat.min),
            fmt(row.stat.max),
            values.len(),
            row.note
        );
        self.rows.push(row);
    }

    fn markdown(&self, s: &Settings) -> String {
        let mut out = format!(
            "Runs per figure: {} (median, min, max). Files: {} MiB (throughput), {} MiB (slow viewer). Viewers read {}. Load average at the end: {}.\n\n",
            s.runs,
            s.file_mib,
            s.fan_mib,
            s.frames,
            loadavg()
        );
        out.push_str("| # | measure | median | min | max | unit | notes |\n|---|---|---:|---:|---:|---|---|\n");
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.section,
                r.what,
                fmt(r.stat.median),
                fmt(r.stat.min),
                fmt(r.stat.max),
                r.unit,
                r.note
            ));
        }
        out
    }
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The benchmark data

#[path = "../../missiond-core/benches/common/sample.rs"]
mod sample_data;
use sample_data::sample;

fn count_lines(data: &[u8]) -> usize {
    data.iter().filter(|&&b| b == b'\n').count()
}

// ---------------------------------------------------------------------------------------------
// The daemon under test

/// `target/release/missiond`, next to this example's directory; built first unless `no_build`.
fn daemon_exe(no_build: bool) -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let examples = me
        .parent()
        .ok_or_else(|| anyhow!("no directory for {}", me.display()))?;
    let profile = examples
        .parent()
        .ok_or_else(|| anyhow!("no profile directory"))?;
    let exe = profile.join("missiond");
    if !no_build {
        let target = profile
            .parent()
            .ok_or_else(|| anyhow!("no target directory"))?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("building the daemon: cargo build --release -p missiond --bin missiond");
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "missiond",
                "--bin",
                "missiond",
                "--target-dir",
            ])
            .arg(target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build --release -p missiond failed");
        }
    }
    if !exe.is_file() {
        bail!(
            "{} is missing: run `cargo build --release -p missiond` first",
            exe.display()
        );
    }
    Ok(exe)
}

/// The tests' own harness (missiond/tests/support/daemon.rs): one way to start a daemon for the
/// tests and the bench. The bench uses its process part and the real Claude Code helpers.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

/// A running `missiond serve` (the tests' harness: its own temp directories, SIGTERM then
/// SIGKILL on drop), with an async client of the bench's own.
struct Daemon {
    process: support::daemon::Daemon,
    pid: u32,
    base: String,
    host: String,
    token: String,
    http: reqwest::Client,
    /// Slot processes started; dropped after `process`, so it ends any the daemon left behind.
    pids: LeftBehind,
    /// Viewers attach with `?binary=1` (unless `--json`).
    binary_viewers: bool,
}

/// Slot programs the daemon should have ended with itself; SIGKILL for those still alive.
#[derive(Default)]
struct LeftBehind(std::sync::Mutex<Vec<u32>>);

impl std::ops::Deref for LeftBehind {
    type Target = std::sync::Mutex<Vec<u32>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for LeftBehind {
    fn drop(&mut self) {
        if let Ok(pids) = self.0.lock() {
            for &pid in pids.iter().filter(|&&pid| is_alive(pid)) {
                // SAFETY: signalling a process this benchmark had the daemon start.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
    }
}

impl Daemon {
    /// Starts the daemon; `server_toml` goes into its `[server]` table.
    fn start(exe: &Path, server_toml: &str) -> Result<Daemon> {
        let process = support::daemon::Daemon::start_with(support::daemon::DaemonOptions {
            server_toml: format!("kill_grace_secs = 1\n{server_toml}"),
            bin: Some(exe.to_path_buf()),
            ..Default::default()
        });
        std::fs::create_dir_all(process.dir().join("claude/tasks/bench-list"))?;
        let base = process.url.trim_end_matches('/').to_string();
        let daemon = Daemon {
            pid: process.pid,
            host: base.trim_start_matches("http://").to_string(),
            base,
            token: process.token.clone(),
            http: reqwest::Client::builder().timeout(DEADLINE).build()?,
            pids: LeftBehind::default(),
            binary_viewers: false,
            process,
        };
        eprintln!("daemon pid {} at {}", daemon.pid, daemon.base);
        Ok(daemon)
    }

    fn claude_dir(&self) -> PathBuf {
        self.process.dir().join("claude")
    }

    fn ws_url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("ws://{}{path}{sep}token={}", self.host, self.token)
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/api{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// Creates a 120x40 slot and waits until its program runs; returns its pid.
    async fn create_slot(
        &self,
        id: &str,
        command: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<u32> {
        let env: serde_json::Map<String, serde_json::Value> = env
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let body = serde_json::json!({
            "id": id, "command": command, "args": args, "env": env,
            "cols": 120, "rows": 40, "scrollback": 2000,
        });
        self.start_slot(body).await
    }

    /// `POST /api/slots` with a whole spec, then waits until the program runs; returns its pid.
    async fn start_slot(&self, spec: serde_json::Value) -> Result<u32> {
        let id = spec["id"].as_str().unwrap_or_default().to_string();
        let mut info = self
            .api(reqwest::Method::POST, "/slots", Some(spec))
            .await?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            if info["status"] == "running" {
                if let Some(pid) = info["pid"].as_u64() {
                    if let Ok(mut pids) = self.pids.lock() {
                        pids.push(pid as u32);
                    }
                    return Ok(pid as u32);
                }
            }
            if info["status"] == "exited" || Instant::now() > deadline {
                bail!("slot {id} did not start: {info}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            info = self
                .api(reqwest::Method::GET, &format!("/slots/{id}"), None)
                .await?;
        }
    }

    async fn delete_slot(&self, id: &str) -> Result<()> {
        self.api(reqwest::Method::DELETE, &format!("/slots/{id}"), None)
            .await
            .map(|_| ())
    }

    async fn input(&self, id: &str, data: &str) -> Result<()> {
        let body = serde_json::json!({ "data": data });
        self.api(
            reqwest::Method::POST,
            &format!("/slots/{id}/input"),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmRSS:")
    }

    fn threads(&self) -> u64 {
        proc_status_kib(self.pid, "Threads:")
    }

    /// utime + stime of the daemon (all threads), in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid)
    }
}

fn is_alive(pid: u32) -> bool {
    missiond_core::procfs::stat(pid).is_some_and(|s| s.state != 'Z')
}

fn proc_status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    missiond_core::procfs::stat(pid).map_or(0, |s| s.cpu_ticks())
}

/// CPU time of the calling thread, in seconds.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Samples a process's RSS every 20 ms until dropped; `peak()` is the largest seen.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak = Arc::new(AtomicU64::new(proc_status_kib(pid, "VmRSS:")));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(proc_status_kib(pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        RssSampler { peak, stop }
    }

    fn peak_mib(&self) -> f64 {
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// /pty clients

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/pty/<id>` (TCP_NODELAY) and waits for the first `screen` frame: from then on the
/// viewer is subscribed and sees every later byte.
async fn attach(d: &Daemon, id: &str) -> Result<Ws> {
    let query = if d.binary_viewers { "?binary=1" } else { "" };
    let url = d.ws_url(&format!("/pty/{id}{query}"));
    let (mut ws, _) = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async_with_config(url, None, true),
    )
    .await
    .map_err(|_| anyhow!("connecting to /pty/{id} timed out"))??;
    loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().starts_with(r#"{"type":"screen""#) => {
                return Ok(ws)
            }
            Ok(Some(Ok(Message::Close(frame)))) => bail!("/pty/{id} closed: {frame:?}"),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => bail!("/pty/{id}: {e}"),
            Ok(None) => bail!("/pty/{id} ended before its screen"),
            Err(_) => bail!("/pty/{id}: no screen frame"),
        }
    }
}

/// Output bytes carried by a `{"type":"data","data":"..."}` frame, counted on the JSON text
/// without decoding it (the client must stay cheap): each escape stands for one byte.
fn data_len(frame: &str) -> Option<u64> {
    const HEAD: &str = r#"{"type":"data","data":""#;
    let body = frame.strip_prefix(HEAD)?.strip_suffix("\"}")?.as_bytes();
    let mut n = 0u64;
    let mut i = 0usize;
    while i < body.len() {
        match body[i..].iter().position(|&b| b == b'\\') {
            None => {
                n += (body.len() - i) as u64;
                break;
            }
            Some(p) => {
                n += p as u64 + 1;
                i += p + if body.get(i + p + 1) == Some(&b'u') {
                    6
                } else {
                    2
                };
            }
        }
    }
    Some(n)
}

/// What one viewer of a stream run saw.
#[derive(Debug)]
struct ViewerOutcome {
    /// When the end marker arrived.
    done: Instant,
    /// Output bytes received in `data` frames.
    bytes: u64,
    /// `screen` frames after the first: times it fell behind and was resynchronised.
    resyncs: u32,
}

/// Reads frames until the end marker shows up.
async fn read_until_mark(mut ws: Ws) -> Result<ViewerOutcome> {
    let mut bytes = 0u64;
    let mut resyncs = 0u32;
    // The end of the previous frame, in case the marker straddles two frames.
    let mut tail = String::new();
    loop {
        let msg = match tokio::time::timeout(DEADLINE, ws.next()).await {
            Ok(Some(Ok(msg))) => msg,
            Ok(Some(Err(e))) => bail!("viewer: {e}"),
            Ok(None) => bail!("viewer: connection ended before the end marker"),
            Err(_) => bail!("viewer: no frame for {DEADLINE:?}"),
        };
        let binary;
        let hay = match &msg {
            // `?binary=1` output: the bytes themselves; the marker is the last output.
            Message::Binary(b) => {
                bytes += b.len() as u64;
                binary = String::from_utf8_lossy(&b[b.len().saturating_sub(MARK.len() + 64)..]);
                &*binary
            }
            Message::Text(text) => {
                let text = text.as_str();
                if let Some(n) = data_len(text) {
                    bytes += n;
                    let from =
                        floor_char_boundary(text, text.len().saturating_sub(MARK.len() + 64));
                    &text[from..]
                } else if text.starts_with(r#"{"type":"screen""#) {
                    resyncs += 1;
                    text
                } else {
                    continue;
                }
            }
            _ => continue,
        };
        tail.push_str(hay);
        if tail.contains(MARK) {
            let _ = ws.close(None).await;
            return Ok(ViewerOutcome {
                done: Instant::now(),
                bytes,
                resyncs,
            });
        }
        let keep = floor_char_boundary(&tail, tail.len().saturating_sub(MARK.len()));
        tail.drain(..keep);
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One stream run's result.
struct StreamRun {
    /// MB/s of each fast viewer: output bytes received / (its end - trigger).
    per_viewer: Vec<f64>,
    /// All fast viewers' bytes / (last end - trigger).
    total: f64,
    /// Smallest share of the stream any fast viewer received (1.0 = every byte).
    min_complete: f64,
    resyncs: u32,
    peak_rss_mib: f64,
    /// Daemon CPU over the run, in % of one core.
    daemon_cpu: f64,
    /// This benchmark's own CPU over the run, in % of one core.
    client_cpu: f64,
    /// MB delivered to all fast viewers per CPU-second the daemon used: its efficiency,
    /// which a busy machine disturbs far less than the rates.
    mb_per_cpu_s: f64,
}

/// `cat FILE` in a fresh slot, watched by `fast` reading viewers and `stuck` viewers that
/// never read. The slot waits for a line of input before `cat`, so every viewer is attached
/// first; time runs from that input to the end marker at each viewer.
async fn stream_run(
    d: &Daemon,
    id: &str,
    file: &Path,
    expect: u64,
    fast: usize,
    stuck: usize,
) -> Result<StreamRun> {
    let script = format!("read x; cat '{}'; echo {MARK}; read y", file.display());
    d.create_slot(id, "sh", &["-c", &script], &[]).await?;
    let mut stuck_ws = Vec::new();
    for _ in 0..stuck {
        stuck_ws.push(attach(d, id).await?);
    }
    let mut viewers = Vec::new();
    for _ in 0..fast {
        viewers.push(attach(d, id).await?);
    }
    let rss = RssSampler::start(d.pid);
    let (cpu0, me0) = (d.cpu_ticks(), cpu_ticks(std::process::id()));
    let t0 = Instant::now();
    d.input(id, "\r").await?;
    let tasks: Vec<_> = viewers
        .into_iter()
        .map(|ws| tokio::spawn(read_until_mark(ws)))
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.map_err(|e| anyhow!("viewer task: {e}"))??);
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, me1) = (d.cpu_ticks(), cpu_ticks(std::process::id()));
    drop(stuck_ws);
    d.delete_slot(id).await?;
    let last = outcomes.iter().map(|o| o.done).max().unwrap_or(t0);
    let total_bytes: u64 = outcomes.iter().map(|o| o.bytes).sum();
    let per_viewer = outcomes
        .iter()
        .map(|o| o.bytes as f64 / MB / (o.done - t0).as_secs_f64())
        .collect();
    let min_complete = outcomes
        .iter()
        .map(|o| o.bytes as f64 / expect as f64)
        .fold(f64::INFINITY, f64::min);
    Ok(StreamRun {
        per_viewer,
        total: total_bytes as f64 / MB / (last - t0).as_secs_f64(),
        min_complete,
        resyncs: outcomes.iter().map(|o| o.resyncs).sum(),
        peak_rss_mib: rss.peak_mib(),
        daemon_cpu: (cpu1 - cpu0) as f64 / clk_tck() / secs * 100.0,
        client_cpu: (me1 - me0) as f64 / clk_tck() / secs * 100.0,
        mb_per_cpu_s: total_bytes as f64 / MB / ((cpu1 - cpu0) as f64 / clk_tck()),
    })
}

/// `cat FILE` in a PTY opened here, read by the master side as fast as possible.
/// Returns (MB/s, bytes, mean bytes per read).
fn raw_pty(file: &Path) -> Result<(f64, u64, f64)> {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| anyhow!("openpty: {e}"))?;
    let mut cmd = CommandBuilder::new("cat");
    cmd.arg(file);
    let mut reader = pair
        .master
        .try_clone_reader()
        .map_err(|e| anyhow!("reader: {e}"))?;
    let t0 = Instant::now();
    let mut child = pair
        .slave
        .spawn_command(cmd)
        .map_err(|e| anyhow!("spawn cat: {e}"))?;
    drop(pair.slave);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut total, mut reads) = (0u64, 0u64);
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                reads += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break, // EIO: the slave side is closed
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let _ = child.wait();
    Ok((
        total as f64 / MB / secs,
        total,
        total as f64 / reads.max(1) as f64,
    ))
}

// ---------------------------------------------------------------------------------------------
// Sections

async fn throughput(d: &Daemon, file: &Path, s: &Settings, table: &mut Table) -> Result<()> {
    eprintln!("== 1+2 throughput: raw PTY, then 1, 4, 16 viewers, per run");
    let counts = s.viewers.clone();
    let mut raw = Vec::new();
    let mut read_size = Vec::new();
    let mut per_viewer: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut total: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut ratio_raw: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut ratio_one: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut complete: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut resyncs = vec![0u32; counts.len()];
    let mut dcpu: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut ccpu: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut eff: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    for run in 0..s.runs {
        let f = file.to_path_buf();
        let (rate, bytes, per_read) = tokio::task::spawn_blocking(move || raw_pty(&f)).await??;
        raw.push(rate);
        read_size.push(per_read / 1024.0);
        let mut one = f64::NAN;
        let mut line = format!("  run {run}: raw {rate:.1} MB/s");
        for (i, &n) in counts.iter().enumerate() {
            let r = stream_run(d, &format!("tp-{run}-{n}"), file, bytes, n, 0).await?;
            let pv = Stat::of(&r.per_viewer).median;
            if i == 0 {
                one = pv;
            }
            per_viewer[i].push(pv);
            total[i].push(r.total);
            ratio_raw[i].push(pv / rate);
            ratio_one[i].push(pv / one);
            complete[i].push(r.min_complete * 100.0);
            resyncs[i] += r.resyncs;
            dcpu[i].push(r.daemon_cpu);
            ccpu[i].push(r.client_cpu);
            eff[i].push(r.mb_per_cpu_s);
            line.push_str(&format!(
                " | {n}v {pv:.1}/viewer {:.1} total, {:.0}% complete, cpu d{:.0}% c{:.0}%",
                r.total,
                r.min_complete * 100.0,
                r.daemon_cpu,
                r.client_cpu
            ));
        }
        eprintln!("{line}");
    }
    table.add(
        "1",
        "raw PTY read rate, `cat` 120x40",
        &raw,
        "MB/s",
        "portable-pty master read, 64 KiB buffer",
    );
    table.add("1", "raw PTY mean bytes per read", &read_size, "KiB", "");
    for (i, &n) in counts.iter().enumerate() {
        table.add(
            "2",
            format!("{n} viewer(s): MB/s per viewer"),
            &per_viewer[i],
            "MB/s",
            format!(
                "daemon CPU {}%, client CPU {}% of one core",
                fmt(Stat::of(&dcpu[i]).median),
                fmt(Stat::of(&ccpu[i]).median)
            ),
        );
        if i > 0 {
            table.add(
                "2",
                format!("{n} viewers: MB/s total"),
                &total[i],
                "MB/s",
                "",
            );
            table.add(
                "2",
                format!("{n} viewers: per viewer / {} viewer(s)", counts[0]),
                &ratio_one[i],
                "ratio",
                "same run",
            );
        }
        table.add(
            "2",
            format!("{n} viewer(s): per viewer / raw PTY"),
            &ratio_raw[i],
            "ratio",
            "same run",
        );
        table.add(
            "2",
            format!("{n} viewer(s): MB delivered per daemon CPU-second"),
            &eff[i],
            "MB/s",
            "all viewers' bytes / daemon utime+stime",
        );
        table.add(
            "2",
            format!("{n} viewer(s): least complete viewer"),
            &complete[i],
            "% bytes",
            format!("{} resyncs in all runs (lag -> fresh screen)", resyncs[i]),
        );
    }
    Ok(())
}

/// Section 8: the same stream to one viewer from a daemon that records the run (the default)
/// and from one with `[record] enabled = false`, alternating which goes first.
async fn record(
    exe: &Path,
    file: &Path,
    s: &Settings,
    table: &mut Table,
    binary: bool,
) -> Result<()> {
    eprintln!("== 8 recording: 1 viewer, recorded vs not, per run");
    let mut recorded = Daemon::start(exe, "")?;
    recorded.binary_viewers = binary;
    let mut plain = Daemon::start(exe, "\n[record]\nenabled = false")?;
    plain.binary_viewers = binary;
    let bytes = std::fs::metadata(file)?.len();
    let (mut on, mut off, mut ratio, mut cpu_on, mut cpu_off) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut eff_ratio = Vec::new();
    // One unmeasured pass each: a daemon's first stream grows its heap.
    stream_run(&recorded, "rec-warm", file, bytes, 1, 0).await?;
    stream_run(&plain, "rec-warm", file, bytes, 1, 0).await?;
    for run in 0..s.runs {
        let id = format!("rec-{run}");
        let (a, b) = if run % 2 == 0 {
            let a = stream_run(&recorded, &id, file, bytes, 1, 0).await?;
            (a, stream_run(&plain, &id, file, bytes, 1, 0).await?)
        } else {
            let b = stream_run(&plain, &id, file, bytes, 1, 0).await?;
            (stream_run(&recorded, &id, file, bytes, 1, 0).await?, b)
        };
        let (ra, rb) = (
            Stat::of(&a.per_viewer).median,
            Stat::of(&b.per_viewer).median,
        );
        eprintln!(
            "  run {run}: recorded {ra:.1} MB/s (daemon cpu {:.0}%), not recorded {rb:.1} MB/s (daemon cpu {:.0}%), ratio {:.3}",
            a.daemon_cpu,
            b.daemon_cpu,
            ra / rb
        );
        on.push(ra);
        off.push(rb);
        ratio.push(ra / rb);
        cpu_on.push(a.daemon_cpu);
        cpu_off.push(b.daemon_cpu);
        eff_ratio.push(a.mb_per_cpu_s / b.mb_per_cpu_s);
    }
    let recordings = recorded.process.dir().join("state/missiond/recordings");
    // Output the recorder had to drop (it fell more than 64 MiB behind): said in the notes.
    let dropped: usize = (0..s.runs)
        .filter_map(|run| std::fs::read(recordings.join(format!("rec-{run}/1.cast"))).ok())
        .map(|cast| {
            String::from_utf8_lossy(&cast)
                .matches("rec:dropped")
                .count()
        })
        .sum();
    let cast_bytes: u64 = std::fs::read_dir(recordings.join("rec-0"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    table.add(
        "8",
        "1 viewer, run recorded: MB/s per viewer",
        &on,
        "MB/s",
        format!("daemon CPU {}% of one core", fmt(Stat::of(&cpu_on).median)),
    );
    table.add(
        "8",
        "1 viewer, not recorded: MB/s per viewer",
        &off,
        "MB/s",
        format!("daemon CPU {}% of one core", fmt(Stat::of(&cpu_off).median)),
    );
    table.add(
        "8",
        "recorded / not recorded",
        &ratio,
        "ratio",
        format!(
            "same run; one run's .cast is {:.1} MB for {:.1} MB of output; {dropped} rec:dropped markers",
            cast_bytes as f64 / MB,
            bytes as f64 / MB
        ),
    );
    table.add(
        "8",
        "MB delivered per daemon CPU-second, recorded / not recorded",
        &eff_ratio,
        "ratio",
        "same run; what recording costs in CPU, robust to a busy machine",
    );
    Ok(())
}

async fn echo(d: &Daemon, s: &Settings, table: &mut Table) -> Result<()> {
    eprintln!("== 3 keystroke echo through /pty into `stty raw -echo; exec cat`");
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut max = Vec::new();
    for run in 0..s.runs {
        let id = format!("echo-{run}");
        let pid = d
            .create_slot(&id, "sh", &["-c", "stty raw -echo; exec cat"], &[])
            .await?;
        // `exec cat` keeps the pid: once it is cat, the terminal is raw and silent.
        let deadline = Instant::now() + DEADLINE;
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim() != "cat")
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                bail!("slot {id} never became cat");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut ws = attach(d, &id).await?;
        let mut samples = Vec::new();
        let warmup = 20;
        for i in 0..s.keys + warmup {
            let key = (b'a' + (i % 26) as u8) as char;
            let frame = format!(r#"{{"type":"input","data":"{key}"}}"#);
            let t0 = Instant::now();
            ws.send(Message::Text(frame.into())).await?;
            loop {
                let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .map_err(|_| anyhow!("no echo for {key:?}"))?
                    .ok_or_else(|| anyhow!("connection ended"))??;
                let echoed = match &msg {
                    Message::Text(t) => data_len(t.as_str()).is_some() && t.as_str().contains(key),
                    Message::Binary(b) => b.contains(&(key as u8)),
                    _ => false,
                };
                if echoed {
                    break;
                }
            }
            if i >= warmup {
                samples.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let _ = ws.close(None).await;
        d.delete_slot(&id).await?;
        let (a, b, c) = (
            quantile(&samples, 0.5),
            quantile(&samples, 0.99),
            quantile(&samples, 1.0),
        );
        eprintln!(
            "  run {run}: p50 {a:.3} ms, p99 {b:.3} ms, max {c:.3} ms over {} keys",
            samples.len()
        );
        p50.push(a);
        p99.push(b);
        max.push(c);
    }
    let note = format!("{} keys per run, one at a time", s.keys);
    table.add("3", "echo latency p50", &p50, "ms", note.clone());
    table.add("3", "echo latency p99", &p99, "ms", note.clone());
    table.add("3", "echo latency max", &max, "ms", note);
    Ok(())
}

async fn slow(d: &Daemon, file: &Path, s: &Settings, table: &mut Table) -> Result<()> {
    eprintln!("== 4 fan-out: 8 fast viewers alone, and with 1 viewer that never reads");
    let f = file.to_path_buf();
    let (_, bytes, _) = tokio::task::spawn_blocking(move || raw_pty(&f)).await??;
    let (mut alone, mut with, mut ratio, mut rss_alone, mut rss_with, mut complete) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    // One unmeasured pass first: the first stream of a daemon pays for growing its heap, and
    // it made whichever side ran first in a pair look slower.
    stream_run(d, "fan-warm-up", file, bytes, 8, 1).await?;
    for run in 0..s.runs {
        // Alternate the order so that drift in the machine's load does not favour one side.
        let (a, w) = if run % 2 == 0 {
            let a = stream_run(d, &format!("fan-a-{run}"), file, bytes, 8, 0).await?;
            let w = stream_run(d, &format!("fan-w-{run}"), file, bytes, 8, 1).await?;
            (a, w)
        } else {
            let w = stream_run(d, &format!("fan-w-{run}"), file, bytes, 8, 1).await?;
            let a = stream_run(d, &format!("fan-a-{run}"), file, bytes, 8, 0).await?;
            (a, w)
        };
        let (pa, pw) = (
            Stat::of(&a.per_viewer).median,
            Stat::of(&w.per_viewer).median,
        );
        eprintln!(
            "  run {run}: alone {pa:.1} MB/s/viewer (peak RSS {:.1} MiB), with stuck {pw:.1} (peak RSS {:.1} MiB), ratio {:.3}",
            a.peak_rss_mib,
            w.peak_rss_mib,
            pw / pa
        );
        alone.push(pa);
        with.push(pw);
        ratio.push(pw / pa);
        rss_alone.push(a.peak_rss_mib);
        rss_with.push(w.peak_rss_mib);
        complete.push(w.min_complete * 100.0);
    }
    table.add(
        "4",
        "8 fast viewers alone: MB/s per viewer",
        &alone,
        "MB/s",
        "",
    );
    table.add(
        "4",
        "8 fast + 1 stuck: MB/s per fast viewer",
        &with,
        "MB/s",
        "",
    );
    table.add(
        "4",
        "with stuck / alone",
        &ratio,
        "ratio",
        "same run; target >= 0.90",
    );
    table.add("4", "daemon peak RSS, 8 alone", &rss_alone, "MiB", "");
    table.add("4", "daemon peak RSS, 8 + 1 stuck", &rss_with, "MiB", "");
    table.add(
        "4",
        "with stuck: least complete fast viewer",
        &complete,
        "% bytes",
        "",
    );
    table.add(
        "4",
        "daemon RSS after the runs",
        &[d.rss_kib() as f64 / 1024.0],
        "MiB",
        "one sample",
    );
    Ok(())
}

async fn scale(exe: &Path, s: &Settings, table: &mut Table) -> Result<()> {
    for &n in &s.scale {
        eprintln!("== 5 scale: {n} idle bash slots, {} s idle", s.idle_secs);
        let d = Daemon::start(exe, "")?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss0 = d.rss_kib();
        let threads0 = d.threads();
        let t0 = Instant::now();
        let mut create = Vec::new();
        for i in 0..n {
            let t = Instant::now();
            d.create_slot(
                &format!("idle-{i}"),
                "bash",
                &["--norc", "--noprofile", "-i"],
                &[("PS1", "bench$ ")],
            )
            .await?;
            create.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let created = t0.elapsed().as_secs_f64();
        // Ready: every shell has drawn its prompt.
        for i in 0..n {
            let deadline = Instant::now() + DEADLINE;
            loop {
                let screen = d
                    .api(
                        reqwest::Method::GET,
                        &format!("/slots/idle-{i}/screen"),
                        None,
                    )
                    .await?;
                if screen["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("bench$"))
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("slot idle-{i} drew no prompt: {screen}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let ready = t0.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let windows = s.runs.max(5);
        let window = Duration::from_secs_f64(s.idle_secs as f64 / windows as f64);
        let (mut cpu, mut per_slot) = (Vec::new(), Vec::new());
        for _ in 0..windows {
            let c0 = d.cpu_ticks();
            let w0 = Instant::now();
            tokio::time::sleep(window).await;
            let c1 = d.cpu_ticks();
            cpu.push((c1 - c0) as f64 / clk_tck() / w0.elapsed().as_secs_f64() * 100.0);
            per_slot.push((d.rss_kib().saturating_sub(rss0)) as f64 / 1024.0 / n as f64);
        }
        let total_cpu = cpu.iter().sum::<f64>() / cpu.len() as f64;
        eprintln!(
            "  {n} slots: created in {created:.2} s, all prompts in {ready:.2} s; RSS {:.1} -> {:.1} MiB; threads {threads0} -> {}; idle CPU {total_cpu:.2}%",
            rss0 as f64 / 1024.0,
            d.rss_kib() as f64 / 1024.0,
            d.threads()
        );
        table.add(
            "5",
            format!("{n} slots: daemon RSS per idle slot"),
            &per_slot,
            "MiB",
            format!("(VmRSS - VmRSS before) / {n}, 120x40, scrollback 2000"),
        );
        table.add(
            "5",
            format!("{n} slots: daemon CPU idle"),
            &cpu,
            "% core",
            format!(
                "{windows} windows of {:.0} s; mean {:.2}%",
                window.as_secs_f64(),
                total_cpu
            ),
        );
        table.add(
            "5",
            format!("{n} slots: POST /api/slots until running"),
            &create,
            "ms",
            "per slot, sequential",
        );
        table.add(
            "5",
            format!("{n} slots: launch all (created / prompts drawn)"),
            &[created],
            "s",
            format!("prompts drawn after {ready:.2} s; one launch"),
        );
        if n == s.scale[0] {
            filled_scrollback(exe, s, table).await?;
        }
        // End them all at once (interactive bash ignores SIGTERM: each waits the 1 s grace).
        let ids: Vec<String> = (0..n).map(|i| format!("idle-{i}")).collect();
        let deletes = ids.iter().map(|id| d.delete_slot(id));
        for r in futures_util::future::join_all(deletes).await {
            r?;
        }
    }
    Ok(())
}

/// RSS per slot once its scrollback is full: 20 slots each print 2500 lines of 100 characters
/// and wait. Idle shells (above) have empty scrollbacks; this is the worst case of an idle slot.
async fn filled_scrollback(exe: &Path, s: &Settings, table: &mut Table) -> Result<()> {
    let n = 20;
    eprintln!("== 5 scale: {n} slots with their 2000-line scrollback filled");
    let d = Daemon::start(exe, "")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = d.rss_kib();
    let line = format!("line %06g {}", "x".repeat(88));
    let script = format!("seq -f '{line}' 2500; echo FILLED; exec sleep 100000");
    for i in 0..n {
        d.create_slot(&format!("full-{i}"), "sh", &["-c", &script], &[])
            .await?;
    }
    for i in 0..n {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = d
                .api(
                    reqwest::Method::GET,
                    &format!("/slots/full-{i}/screen"),
                    None,
                )
                .await?;
            if screen["text"]
                .as_str()
                .is_some_and(|t| t.contains("FILLED"))
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("slot full-{i} did not finish printing");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let per_slot_now = |d: &Daemon| d.rss_kib().saturating_sub(rss0) as f64 / 1024.0 / n as f64;
    let just_printed = [per_slot_now(&d)];
    // A slot compacts its scrollback two to four seconds after its output went quiet.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut per_slot = Vec::new();
    for _ in 0..s.runs {
        tokio::time::sleep(Duration::from_millis(200)).await;
        per_slot.push(per_slot_now(&d));
    }
    table.add(
        "5",
        format!("{n} slots, scrollback full, just printed: daemon RSS per slot"),
        &just_printed,
        "MiB",
        "2500 lines of 100 chars printed, 120x40, scrollback 2000; one sample",
    );
    table.add(
        "5",
        format!("{n} slots, scrollback full, quiet 2 s: daemon RSS per slot"),
        &per_slot,
        "MiB",
        "the same slots once their scrollback is compacted (quiet for 1 s)",
    );
    let ids: Vec<String> = (0..n).map(|i| format!("full-{i}")).collect();
    for r in futures_util::future::join_all(ids.iter().map(|id| d.delete_slot(id))).await {
        r?;
    }
    Ok(())
}

async fn tasks(exe: &Path, s: &Settings, table: &mut Table) -> Result<()> {
    eprintln!("== 7 task watcher: task file write -> cc_tasks_changed on /tasks");
    let d = Daemon::start(exe, "")?;
    let list = d.claude_dir().join("tasks").join("bench-list");
    let url = d.ws_url("/tasks");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    next_text(&mut ws, Duration::from_secs(30)).await?; // the overview
    let (mut p50, mut p99, mut max) = (Vec::new(), Vec::new(), Vec::new());
    let mut seq = 0u64;
    for run in 0..s.runs {
        let mut samples = Vec::new();
        for i in 0..s.task_writes + 1 {
            seq += 1;
            let n = (i % 8) + 1;
            let status = ["pending", "in_progress", "completed"][(seq % 3) as usize];
            let task = serde_json::json!({
                "id": n.to_string(), "subject": format!("bench task {n}"),
                "description": format!("write {seq}"), "activeForm": format!("Benchmarking {n}"),
                "status": status, "blocks": [], "blockedBy": [],
            });
            let t0 = Instant::now();
            std::fs::write(list.join(format!("{n}.json")), serde_json::to_vec(&task)?)?;
            loop {
                let text = next_text(&mut ws, Duration::from_secs(10)).await?;
                if text.contains(r#""type":"cc_tasks_changed""#) {
                    break;
                }
            }
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if i > 0 {
                samples.push(ms); // the first write of a run warms up
            }
            // Let the debounce window close and swallow follow-up events of this write.
            let settle = Instant::now() + Duration::from_millis(120);
            while let Ok(Ok(_)) = tokio::time::timeout_at(
                tokio::time::Instant::from_std(settle),
                next_text(&mut ws, Duration::from_secs(1)),
            )
            .await
            {}
        }
        let (a, b, c) = (
            quantile(&samples, 0.5),
            quantile(&samples, 0.99),
            quantile(&samples, 1.0),
        );
        eprintln!(
            "  run {run}: p50 {a:.1} ms, p99 {b:.1} ms, max {c:.1} ms over {} writes",
            samples.len()
        );
        p50.push(a);
        p99.push(b);
        max.push(c);
    }
    let note = format!("{} writes per run, debounce included", s.task_writes);
    table.add("7", "task event latency p50", &p50, "ms", note.clone());
    table.add("7", "task event latency p99", &p99, "ms", note.clone());
    table.add("7", "task event latency max", &max, "ms", note);
    Ok(())
}

async fn next_text(ws: &mut Ws, wait: Duration) -> Result<String> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.as_str().to_string()),
            Ok(Some(Ok(Message::Close(f)))) => bail!("closed: {f:?}"),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("connection ended"),
            Err(_) => bail!("no frame within {wait:?}"),
        }
    }
}

/// Section 6 and the hot path's parts, in this process: vt100 parse rate of the slot's
/// emulator, `/pty` frame encoding rate, classifier time per screen.
fn inproc(s: &Settings, table: &mut Table) -> Result<()> {
    use missiond_core::protocol::{Profile, PtyServerMsg};
    use missiond_core::screen::Screen;
    use missiond_core::semantic::{Classifier, RuleBook};
    eprintln!("== 6 in-process: vt100 parse, frame encoding, classifier");
    let data = sample(16 * 1024 * 1024, b"\r\n");
    let mb = data.len() as f64 / MB;
    let (mut parse, mut parse_cpu, mut encode, mut encode_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..s.runs {
        let (t, c) = (Instant::now(), thread_cpu());
        let mut screen = Screen::new(120, 40, 2000);
        for chunk in data.chunks(16 * 1024) {
            std::hint::black_box(screen.process(chunk));
        }
        parse.push(mb / t.elapsed().as_secs_f64());
        parse_cpu.push(mb / (thread_cpu() - c));
        let (t, c) = (Instant::now(), thread_cpu());
        for chunk in data.chunks(64 * 1024) {
            let msg = PtyServerMsg::Data {
                data: String::from_utf8_lossy(chunk).into_owned(),
            };
            std::hint::black_box(serde_json::to_string(&msg)?);
        }
        encode.push(mb / t.elapsed().as_secs_f64());
        encode_cpu.push(mb / (thread_cpu() - c));
    }
    table.add(
        "6",
        "vt100 parse (slot Screen 120x40, sb 2000), wall",
        &parse,
        "MB/s",
        "16 MiB sample, 16 KiB reads",
    );
    table.add(
        "6",
        "vt100 parse, per CPU-second",
        &parse_cpu,
        "MB/s",
        "thread CPU time: robust to a busy machine",
    );
    table.add(
        "6",
        "data frame encode (lossy UTF-8 + JSON), wall",
        &encode,
        "MB/s",
        "per viewer, 64 KiB frames",
    );
    table.add(
        "6",
        "data frame encode, per CPU-second",
        &encode_cpu,
        "MB/s",
        "thread CPU time",
    );

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../missiond-core/tests/fixtures");
    let dir = if dir.join("claude-code-2.1.330").is_dir() {
        dir.join("claude-code-2.1.330")
    } else {
        dir
    };
    let mut screens = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("fixtures in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    entries.sort();
    for path in &entries {
        let bytes = std::fs::read(path)?;
        let mut screen = Screen::new(120, 40, 2000);
        for chunk in bytes.chunks(256) {
            screen.process(chunk);
            screens.push((screen.vt().clone(), screen.title().to_string()));
        }
    }
    if screens.is_empty() {
        bail!("no fixture recordings in {}", dir.display());
    }
    let rules = RuleBook::embedded().rules(Profile::ClaudeCode);
    let (mut per_call, mut per_call_cpu) = (Vec::new(), Vec::new());
    for _ in 0..s.runs {
        let (t, c) = (Instant::now(), thread_cpu());
        let mut calls = 0u64;
        while t.elapsed() < Duration::from_millis(300) {
            let mut classifier = Classifier::new(rules.clone());
            for (screen, title) in &screens {
                std::hint::black_box(classifier.on_output(screen, title, Instant::now()));
                calls += 1;
            }
        }
        per_call.push(t.elapsed().as_secs_f64() * 1e6 / calls as f64);
        per_call_cpu.push((thread_cpu() - c) * 1e6 / calls as f64);
    }
    table.add(
        "6",
        "classifier on_output, claude-code rules",
        &per_call,
        "µs/screen",
        format!(
            "wall; {} screens of {} recordings",
            screens.len(),
            entries.len()
        ),
    );
    table.add(
        "6",
        "classifier on_output, CPU time",
        &per_call_cpu,
        "µs/screen",
        "thread CPU time",
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Section 9: busy Claude Code slots (issue 18, item 8)

use support::{claude_env, stand_in};

/// The recording the replayed slots play: Claude Code thinking, made with `--record-busy`.
const BUSY_CAST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/data/claude-busy.cast"
);
/// The release the real busy slots run and the recording was made with: the newest of the
/// test matrix (docs/TESTING-WITH-CLAUDE.md).
const BUSY_RELEASE: &str = "2.1.332";
/// Seconds of busy output kept in the recording; the replay loops over them.
const BUSY_RECORD_SECS: f64 = 24.0;
/// The prompt of every busy slot. The stand-in holds the answer for as long as the bench runs.
const BUSY_PROMPT: &str = "Plan how to split the session store into smaller modules.";
/// Markers of the trimmed recording: the busy part starts here / the replay starts over here.
const MARK_BUSY: &str = "bench:busy";
const MARK_LOOP: &str = "bench:loop";

/// Section 9: what slots showing a busy Claude Code cost the daemon, against what the agents
/// themselves cost. Real Claude Code slots run first when the release is installed (their CPU
/// per busy slot is the yardstick), then slots replaying the recorded spinner at its real rate.
async fn busy(exe: &Path, s: &Settings, table: &mut Table) -> Result<()> {
    let started = Instant::now();
    let mut claude_per_slot = Vec::new();
    if installed_claude(BUSY_RELEASE).is_some() {
        claude_per_slot = busy_real(exe, s, table).await?;
    } else {
        eprintln!(
            "== 9 busy: Claude Code {BUSY_RELEASE} is not installed (scripts/install-e2e-tools.sh): \
             only the replayed slots run"
        );
    }
    busy_replayed(exe, s, table, &claude_per_slot).await?;
    eprintln!(
        "== 9 busy: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// N real Claude Code slots, each thinking about a prompt the stand-in never answers, one viewer
/// each, then none at the largest N. Returns the Claude Code processes' median CPU per busy slot (% of a core) per N.
async fn busy_real(exe: &Path, s: &Settings, table: &mut Table) -> Result<Vec<(usize, f64)>> {
    let stand_in = stand_in::StandIn::start([]);
    // Never opened: the answers arrive after the bench is gone.
    let gate = stand_in::Gate::new();
    let mut d = Daemon::start(exe, "")?;
    d.binary_viewers = true;
    let env = claude_env::ClaudeEnvBuilder::new(stand_in.base_url())
        .release(BUSY_RELEASE)
        .claude_dir(d.claude_dir())
        .build();
    let spec = claude_spec(&env);
    let (mut ids, mut pids, mut viewers) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_slot = Vec::new();
    for &n in &s.busy_slots {
        eprintln!("== 9 busy: {n} Claude Code {BUSY_RELEASE} slots thinking, one viewer each");
        let new: Vec<String> = (ids.len()..n).map(|i| format!("claude-{i}")).collect();
        for _ in &new {
            stand_in.push(stand_in::Turn::text("(never sent)").held_by(&gate));
        }
        let starts = new.iter().map(|id| {
            let mut spec = spec.clone();
            spec["id"] = id.as_str().into();
            d.start_slot(spec)
        });
        for pid in futures_util::future::join_all(starts).await {
            pids.push(pid?);
        }
        for id in &new {
            wait_state(&d, id, "idle").await?;
            viewers.push(open_viewer(&d, id).await?);
            let body = serde_json::json!({ "text": BUSY_PROMPT });
            d.api(
                reqwest::Method::POST,
                &format!("/slots/{id}/prompt"),
                Some(body),
            )
            .await?;
        }
        for id in &new {
            wait_state(&d, id, "thinking").await?;
        }
        ids.extend(new);
        // The prompt's one-off work (hooks, the title request) stays out of the windows.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let windows = measure_busy(&d, &pids, &viewers, s).await;
        let label = format!("{n} Claude Code slot(s) thinking, 1 viewer each");
        per_slot.push((n, report_busy_real(table, &label, n, &windows, s)));
    }
    if let Some(&n) = s.busy_slots.last() {
        // What most slots are most of the time: working with nobody watching.
        eprintln!("== 9 busy: {n} Claude Code {BUSY_RELEASE} slots thinking, no viewer");
        viewers.clear();
        let windows = measure_busy(&d, &pids, &viewers, s).await;
        let label = format!("{n} Claude Code slot(s) thinking, no viewer");
        report_busy_real(table, &label, n, &windows, s);
    }
    let deletes = ids.iter().map(|id| d.delete_slot(id));
    for r in futures_util::future::join_all(deletes).await {
        r?;
    }
    Ok(per_slot)
}

/// [`report_busy`] for real Claude Code slots, with their processes' CPU and the ratio of the
/// daemon's to theirs. Returns the processes' median CPU per slot (% of a core).
fn report_busy_real(
    table: &mut Table,
    label: &str,
    n: usize,
    windows: &[BusyWindow],
    s: &Settings,
) -> f64 {
    report_busy(table, label, n, windows, s, None);
    let programs: Vec<f64> = windows.iter().map(|w| w.programs_pct).collect();
    table.add(
        "9",
        format!("{label}: Claude Code processes' CPU"),
        &programs,
        "% core",
        format!(
            "sum of their process trees; {:.1}% per slot",
            Stat::of(&programs).median / n as f64
        ),
    );
    let ratio: Vec<f64> = windows
        .iter()
        .map(|w| w.daemon_pct / w.programs_pct * 100.0)
        .collect();
    table.add(
        "9",
        format!("{label}: daemon CPU / Claude Code CPU"),
        &ratio,
        "%",
        "target < 1 %",
    );
    Stat::of(&programs).median / n as f64
}

/// N slots replaying the recorded spinner (one viewer each, then none at the largest N). The
/// replayer stands for nothing real, so its CPU is only reported; the daemon's is set against
/// the real Claude Code's CPU per busy slot when that was measured.
async fn busy_replayed(
    exe: &Path,
    s: &Settings,
    table: &mut Table,
    claude_per_slot: &[(usize, f64)],
) -> Result<()> {
    let cast = Path::new(BUSY_CAST);
    if !cast.is_file() {
        bail!("{} is missing: make it with --record-busy", cast.display());
    }
    let me = std::env::current_exe()?;
    let mut d = Daemon::start(exe, "")?;
    d.binary_viewers = true;
    let spec = serde_json::json!({
        "command": me.display().to_string(),
        "args": ["--replay", cast.display().to_string()],
        // The classifier reads these screens with the Claude Code rules, as for a real one.
        "profile": "claude-code",
        "cols": 120, "rows": 40, "scrollback": 2000,
    });
    let (mut ids, mut pids, mut viewers) = (Vec::new(), Vec::new(), Vec::new());
    let yardstick = |n: usize| {
        claude_per_slot
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, pct)| *pct)
    };
    for &n in &s.busy_slots {
        eprintln!("== 9 busy: {n} slots replaying Claude Code's spinner, one viewer each");
        let new: Vec<String> = (ids.len()..n).map(|i| format!("replay-{i}")).collect();
        for id in &new {
            let mut spec = spec.clone();
            spec["id"] = id.as_str().into();
            pids.push(d.start_slot(spec).await?);
            viewers.push(open_viewer(&d, id).await?);
        }
        for id in &new {
            wait_state(&d, id, "thinking").await?;
        }
        ids.extend(new);
        let windows = measure_busy(&d, &pids, &viewers, s).await;
        let label = format!("{n} replayed busy slot(s), 1 viewer each");
        report_busy(table, &label, n, &windows, s, yardstick(n));
    }
    if let Some(&n) = s.busy_slots.last() {
        eprintln!("== 9 busy: {n} slots replaying Claude Code's spinner, one hidden viewer each");
        viewers.clear();
        for id in &ids {
            viewers.push(open_viewer_in(&d, id, true).await?);
        }
        let windows = measure_busy(&d, &pids, &viewers, s).await;
        let label = format!("{n} replayed busy slot(s), 1 hidden viewer each");
        report_busy(table, &label, n, &windows, s, yardstick(n));
        eprintln!("== 9 busy: {n} slots replaying Claude Code's spinner, no viewer");
        viewers.clear();
        let windows = measure_busy(&d, &pids, &viewers, s).await;
        let label = format!("{n} replayed busy slot(s), no viewer");
        report_busy(table, &label, n, &windows, s, yardstick(n));
    }
    let deletes = ids.iter().map(|id| d.delete_slot(id));
    for r in futures_util::future::join_all(deletes).await {
        r?;
    }
    Ok(())
}

/// Rows common to both kinds of busy slots: the daemon's CPU, per busy slot, what the slot
/// programs cost, the output rate, and the daemon's CPU against `claude_pct_per_slot` (the real
/// Claude Code's CPU per busy slot) when given.
fn report_busy(
    table: &mut Table,
    label: &str,
    n: usize,
    windows: &[BusyWindow],
    s: &Settings,
    claude_pct_per_slot: Option<f64>,
) {
    let daemon: Vec<f64> = windows.iter().map(|w| w.daemon_pct).collect();
    let per_slot: Vec<f64> = daemon.iter().map(|pct| pct / n as f64).collect();
    let programs = Stat::of(&windows.iter().map(|w| w.programs_pct).collect::<Vec<_>>());
    table.add(
        "9",
        format!("{label}: daemon CPU"),
        &daemon,
        "% core",
        format!(
            "{} windows of {:.0} s; slot programs {:.1}% core",
            windows.len(),
            s.busy_window.as_secs_f64(),
            programs.median
        ),
    );
    table.add(
        "9",
        format!("{label}: daemon CPU per busy slot"),
        &per_slot,
        "% core",
        "",
    );
    let out: Vec<f64> = windows
        .iter()
        .filter(|w| w.viewers > 0)
        .map(|w| w.out_bytes_per_s / n as f64 / 1000.0)
        .collect();
    if !out.is_empty() {
        table.add(
            "9",
            format!("{label}: output per slot"),
            &out,
            "kB/s",
            "bytes the viewers received",
        );
    }
    if let Some(claude) = claude_pct_per_slot {
        let ratio: Vec<f64> = per_slot.iter().map(|pct| pct / claude * 100.0).collect();
        table.add(
            "9",
            format!("{label}: daemon CPU per slot / real Claude Code's"),
            &ratio,
            "%",
            format!("Claude Code {claude:.1}% core per busy slot (above); target < 1 %"),
        );
    }
}

/// One measuring window of the busy section.
struct BusyWindow {
    /// The daemon's CPU, % of one core.
    daemon_pct: f64,
    /// The slot programs' CPU with their children, % of one core.
    programs_pct: f64,
    /// Output bytes all viewers received per second.
    out_bytes_per_s: f64,
    viewers: usize,
}

async fn measure_busy(
    d: &Daemon,
    programs: &[u32],
    viewers: &[Viewer],
    s: &Settings,
) -> Vec<BusyWindow> {
    let received = || -> u64 {
        viewers
            .iter()
            .map(|v| v.bytes.load(Ordering::Relaxed))
            .sum()
    };
    let mut windows = Vec::new();
    for _ in 0..s.busy_windows {
        let (daemon0, programs0, bytes0) = (
            ThreadsCpu::sample(d.pid),
            tree_cpu_ticks(programs),
            received(),
        );
        let t0 = Instant::now();
        tokio::time::sleep(s.busy_window).await;
        let (daemon1, programs1, bytes1) = (
            ThreadsCpu::sample(d.pid),
            tree_cpu_ticks(programs),
            received(),
        );
        let secs = t0.elapsed().as_secs_f64();
        windows.push(BusyWindow {
            daemon_pct: daemon0.seconds_until(&daemon1) / secs * 100.0,
            programs_pct: programs1.saturating_sub(programs0) as f64 / clk_tck() / secs * 100.0,
            out_bytes_per_s: bytes1.saturating_sub(bytes0) as f64 / secs,
            viewers: viewers.len(),
        });
    }
    windows
}

/// CPU time of a process from its threads' `/proc/<pid>/task/<tid>/schedstat` (nanoseconds),
/// and from its clock ticks. A daemon that spends a few milliseconds a second moves its tick
/// count by less than one tick per window, so the nanoseconds are the measure.
struct ThreadsCpu {
    ns_by_thread: std::collections::HashMap<u32, u64>,
    ticks: u64,
}

impl ThreadsCpu {
    fn sample(pid: u32) -> ThreadsCpu {
        let mut ns_by_thread = std::collections::HashMap::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for entry in dir.flatten() {
                let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                let ns = std::fs::read_to_string(entry.path().join("schedstat"))
                    .ok()
                    .and_then(|t| t.split_whitespace().next()?.parse().ok());
                if let Some(ns) = ns {
                    ns_by_thread.insert(tid, ns);
                }
            }
        }
        ThreadsCpu {
            ns_by_thread,
            ticks: cpu_ticks(pid),
        }
    }

    /// CPU seconds from `self` to `later`: the threads' nanoseconds, or the clock ticks if a
    /// thread ended in between (its time left the sum).
    fn seconds_until(&self, later: &ThreadsCpu) -> f64 {
        let kept = self
            .ns_by_thread
            .keys()
            .all(|tid| later.ns_by_thread.contains_key(tid));
        if kept && !self.ns_by_thread.is_empty() {
            let ns: u64 = later
                .ns_by_thread
                .iter()
                .map(|(tid, ns)| {
                    ns.saturating_sub(self.ns_by_thread.get(tid).copied().unwrap_or(0))
                })
                .sum();
            ns as f64 / 1e9
        } else {
            later.ticks.saturating_sub(self.ticks) as f64 / clk_tck()
        }
    }
}

/// CPU ticks of the processes `roots` and all their descendants: utime + stime of each, plus
/// cutime + cstime (children that ended and were reaped), so short-lived children count too.
fn tree_cpu_ticks(roots: &[u32]) -> u64 {
    // (pid, ppid, ticks) of every process.
    let mut procs: Vec<(u32, u32, u64)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(close) = text.rfind(')') else {
                continue;
            };
            // After the command's ")": state (field 3), ppid (4), ..., utime (14), stime,
            // cutime, cstime (17).
            let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
            let num = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            procs.push((pid, num(1) as u32, num(11) + num(12) + num(13) + num(14)));
        }
    }
    let mut tree: std::collections::HashSet<u32> = roots.iter().copied().collect();
    loop {
        let before = tree.len();
        for &(pid, ppid, _) in &procs {
            if tree.contains(&ppid) {
                tree.insert(pid);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    procs
        .iter()
        .filter(|(pid, _, _)| tree.contains(pid))
        .map(|(_, _, ticks)| ticks)
        .sum()
}

/// A `/pty` viewer that reads everything and counts the output bytes, as a browser tab does.
/// Dropping it closes the connection.
struct Viewer {
    bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn open_viewer(d: &Daemon, id: &str) -> Result<Viewer> {
    open_viewer_in(d, id, false).await
}

/// [`open_viewer`], in a tab nobody looks at when `hidden` (`visibility`, docs/API.md).
async fn open_viewer_in(d: &Daemon, id: &str, hidden: bool) -> Result<Viewer> {
    let mut ws = attach(d, id).await?;
    if hidden {
        let msg = serde_json::json!({"type": "visibility", "hidden": true}).to_string();
        ws.send(Message::Text(msg.into())).await?;
    }
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = bytes.clone();
    let task = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let n = match &msg {
                Message::Binary(b) => b.len() as u64,
                Message::Text(t) => data_len(t.as_str()).unwrap_or(0),
                _ => 0,
            };
            counter.fetch_add(n, Ordering::Relaxed);
        }
    });
    Ok(Viewer { bytes, task })
}

/// Waits (`GET /api/slots/<id>/wait`) until the daemon reads the slot's screen as `state`.
async fn wait_state(d: &Daemon, id: &str, state: &str) -> Result<()> {
    let path = format!("/slots/{id}/wait?state={state}&timeoutMs=90000");
    let reply = d
        .api(reqwest::Method::GET, &path, None)
        .await
        .with_context(|| format!("slot {id} never became {state}"))?;
    // A wait that times out may answer with the state the slot is in instead.
    if reply["state"] != state {
        bail!("slot {id} never became {state}: it is {}", reply["state"]);
    }
    Ok(())
}

/// The slot spec of a real Claude Code (without its id).
fn claude_spec(env: &claude_env::ClaudeEnv) -> serde_json::Value {
    let (command, args, env_vars, cwd) = env.launch();
    serde_json::json!({
        "command": command, "args": args, "cwd": cwd, "env": env_vars,
        "profile": "claude-code",
        "cols": 120, "rows": 40, "scrollback": 2000,
    })
}

/// Where the test helpers find `release` (`claude_env::claude_bin_for`), if it is installed.
fn installed_claude(release: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("MISSIOND_CLAUDE_RELEASES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()?
            .join(".e2e-tools"),
    };
    let bin = if release == claude_env::CLAUDE_CODE_VERSION {
        dir.join("node_modules/.bin/claude")
    } else {
        dir.join(format!("claude-{release}/node_modules/.bin/claude"))
    };
    bin.is_file().then_some(bin)
}

/// One event of an asciicast v2 file.
struct CastEvent {
    /// Seconds since the start.
    t: f64,
    /// "o" output, "m" marker, "r" resize.
    code: String,
    data: String,
}

fn parse_cast(text: &str) -> Result<Vec<CastEvent>> {
    let mut lines = text.lines();
    lines.next().ok_or_else(|| anyhow!("empty recording"))?;
    let mut events = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let (t, code, data): (f64, String, String) =
            serde_json::from_str(line).with_context(|| format!("bad event {line:?}"))?;
        events.push(CastEvent { t, code, data });
    }
    Ok(events)
}

fn marker_time(events: &[CastEvent], label: &str) -> Result<f64> {
    events
        .iter()
        .find(|e| e.code == "m" && e.data == label)
        .map(|e| e.t)
        .ok_or_else(|| anyhow!("the recording has no {label:?} marker"))
}

/// `--replay CAST`: writes the output before the `bench:busy` marker at once (the screen the
/// spinner draws over), then the busy part at its recorded times, starting over at
/// `bench:loop`, until the slot is deleted (the write fails or SIGHUP ends the process).
fn replay_cast(cast: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(cast).with_context(|| format!("reading {}", cast.display()))?;
    let events = parse_cast(&text)?;
    let (busy_at, loop_at) = (
        marker_time(&events, MARK_BUSY)?,
        marker_time(&events, MARK_LOOP)?,
    );
    let output = events.iter().filter(|e| e.code == "o");
    let mut out = std::io::stdout().lock();
    for e in output.clone().filter(|e| e.t < busy_at) {
        out.write_all(e.data.as_bytes())?;
    }
    out.flush()?;
    let lap: Vec<(Duration, &str)> = output
        .filter(|e| e.t >= busy_at && e.t < loop_at)
        .map(|e| (Duration::from_secs_f64(e.t - busy_at), e.data.as_str()))
        .collect();
    let period = Duration::from_secs_f64(loop_at - busy_at);
    let start = Instant::now();
    for n in 0u32.. {
        let lap_start = start + period * n;
        for (at, data) in &lap {
            let due = lap_start + *at;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            out.write_all(data.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// `--record-busy PATH`: one real Claude Code in a slot of a fresh daemon thinks about a prompt
/// the stand-in never answers; after `BUSY_RECORD_SECS` the slot is deleted and its run's
/// recording (docs/RECORDINGS.md) is trimmed by `trim_busy_cast` and written to `out`.
async fn record_busy_cast(exe: &Path, out: &Path) -> Result<()> {
    if installed_claude(BUSY_RELEASE).is_none() {
        bail!("Claude Code {BUSY_RELEASE} is not installed: run scripts/install-e2e-tools.sh");
    }
    let gate = stand_in::Gate::new();
    let stand_in = stand_in::StandIn::start([stand_in::Turn::text("(never sent)").held_by(&gate)]);
    let d = Daemon::start(exe, "")?;
    let env = claude_env::ClaudeEnvBuilder::new(stand_in.base_url())
        .release(BUSY_RELEASE)
        .claude_dir(d.claude_dir())
        .build();
    let mut spec = claude_spec(&env);
    spec["id"] = "busy".into();
    d.start_slot(spec).await?;
    wait_state(&d, "busy", "idle").await?;
    let body = serde_json::json!({ "text": BUSY_PROMPT });
    d.api(reqwest::Method::POST, "/slots/busy/prompt", Some(body))
        .await?;
    wait_state(&d, "busy", "thinking").await?;
    eprintln!("Claude Code {BUSY_RELEASE} is thinking; recording {BUSY_RECORD_SECS} s");
    tokio::time::sleep(Duration::from_secs_f64(BUSY_RECORD_SECS + 1.0)).await;
    d.api(reqwest::Method::POST, "/slots/busy/kill", None)
        .await?;
    // The run's recording ends with its exit marker once the writer has flushed it.
    let cast = d
        .process
        .dir()
        .join("state/missiond/recordings/busy/1.cast");
    let deadline = Instant::now() + DEADLINE;
    let text = loop {
        let text = std::fs::read_to_string(&cast).unwrap_or_default();
        let ended = parse_cast(&text).is_ok_and(|events| {
            events
                .iter()
                .any(|e| e.code == "m" && e.data.starts_with("exit:"))
        });
        if ended {
            break text;
        }
        if Instant::now() > deadline {
            bail!(
                "{} has no exit marker; it ends with {:?}",
                cast.display(),
                &text[floor_char_boundary(&text, text.len().saturating_sub(300))..]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let title =
        format!("Claude Code {BUSY_RELEASE} thinking, 120x40 (missiond bench --record-busy)");
    let trimmed = trim_busy_cast(&text, BUSY_RECORD_SECS, &title)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, &trimmed).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} ({} bytes; the run's recording had {} bytes)",
        out.display(),
        trimmed.len(),
        text.len()
    );
    Ok(())
}

/// Keeps what the replayer needs from a run's recording: the output until the daemon saw the
/// slot start thinking (the screen the spinner draws over), a `bench:busy` marker there, `secs`
/// of busy output, and a `bench:loop` marker where the replay starts over. Other markers go.
fn trim_busy_cast(text: &str, secs: f64, title: &str) -> Result<String> {
    let events = parse_cast(text)?;
    let busy_at = events
        .iter()
        .find(|e| e.code == "m" && e.data == "state:thinking")
        .map(|e| e.t)
        .ok_or_else(|| anyhow!("the run never went to state:thinking"))?;
    let loop_at = busy_at + secs;
    let last_output = events
        .iter()
        .filter(|e| e.code == "o")
        .map(|e| e.t)
        .fold(0.0, f64::max);
    if last_output < loop_at - 1.0 {
        bail!("the output ends {last_output:.1} s in, before the {secs} s of busy output wanted");
    }
    let header = serde_json::json!({
        "version": 2, "width": 120, "height": 40, "title": title,
        "env": {"TERM": "xterm-256color"},
    });
    let line = |t: f64, code: &str, data: &str| {
        format!(
            "{}\n",
            serde_json::json!([(t * 1e6).round() / 1e6, code, data])
        )
    };
    let mut out = format!("{header}\n");
    let output = events.iter().filter(|e| e.code == "o");
    for e in output.clone().filter(|e| e.t < busy_at) {
        out.push_str(&line(e.t, "o", &e.data));
    }
    out.push_str(&line(busy_at, "m", MARK_BUSY));
    for e in output.filter(|e| e.t >= busy_at && e.t < loop_at) {
        out.push_str(&line(e.t, "o", &e.data));
    }
    out.push_str(&line(loop_at, "m", MARK_LOOP));
    Ok(out)
}
