//! Recordings: every run of a slot kept as an asciicast v2 file, with markers for states,
//! dialogs, answers, prompts and tasks (docs/RECORDINGS.md).
//!
//! ```text
//! <state dir>/recordings/<slot>/<n>.cast     n = 1, 2, ... per slot, never reused while kept
//! ```
//! The header says the size, command, slot and start; the rest is written by the run's
//! [`Recorder`] off the slot's threads. The disk is bounded by `[record]`: runs older than
//! `max_age_days`, then the oldest runs of a slot over `max_slot_bytes` (never its newest), then
//! the oldest runs of all over `max_total_bytes` are removed; a run being written is never
//! removed. A run that reaches `max_slot_bytes` by itself stops recording output and says so
//! with a `rec:limit` marker, so it stays about that size.

pub mod cast;
mod writer;

pub use writer::Recorder;

use crate::protocol::recording::{RecordLimits, RecordingUsage, RunSummary, SlotUsage};
use crate::supervisor::run::lock;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// `[record]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// Record slots that do not say `record = false`.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// A slot's runs together; the oldest go first.
    #[serde(default = "default_max_slot_bytes")]
    pub max_slot_bytes: u64,
    /// Every slot's runs together; the oldest go first.
    #[serde(default = "default_max_total_bytes")]
    pub max_total_bytes: u64,
    /// Runs last written longer ago than this are removed; 0 keeps them whatever their age.
    #[serde(default = "default_max_age_days")]
    pub max_age_days: f64,
}

fn default_enabled() -> bool {
    true
}
fn default_max_slot_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_max_total_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn default_max_age_days() -> f64 {
    30.0
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            enabled: default_enabled(),
            max_slot_bytes: default_max_slot_bytes(),
            max_total_bytes: default_max_total_bytes(),
            max_age_days: default_max_age_days(),
        }
    }
}

impl RecordConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.max_age_days.is_finite() || self.max_age_days < 0.0 {
            return Err("record.max_age_days must be a number of days >= 0".into());
        }
        Ok(())
    }

    pub fn limits(&self) -> RecordLimits {
        RecordLimits {
            enabled: self.enabled,
            max_slot_bytes: self.max_slot_bytes,
            max_total_bytes: self.max_total_bytes,
            max_age_days: self.max_age_days,
        }
    }
}

/// The recordings directory and the runs being written in it.
pub struct Recordings {
    dir: PathBuf,
    config: RecordConfig,
    /// `(slot, run)` of every recording being written: never pruned.
    active: Mutex<HashSet<(String, u64)>>,
    /// One prune at a time (writer threads and run starts all ask for one).
    pruning: Mutex<()>,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("dir", &self.dir)
            .finish()
    }
}

/// One `.cast` file on disk.
#[derive(Debug, Clone)]
struct RunFile {
    slot: String,
    run: u64,
    path: PathBuf,
    bytes: u64,
    modified: SystemTime,
}

impl Recordings {
    /// `<state dir>/recordings`, created (mode 0700) if missing.
    pub fn open(dir: &Path, config: RecordConfig) -> std::io::Result<Arc<Recordings>> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let store = Arc::new(Recordings {
            dir: dir.to_path_buf(),
            config,
            active: Mutex::new(HashSet::new()),
            pruning: Mutex::new(()),
        });
        store.prune();
        Ok(store)
    }

    /// Where a daemon keeps its recordings.
    pub fn default_dir(state_dir: &Path) -> PathBuf {
        state_dir.join("recordings")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &RecordConfig {
        &self.config
    }

    /// Starts recording a new run of `slot`: the next number, a new file with its header, and
    /// the writer thread.
    pub fn begin(
        self: &Arc<Self>,
        slot: &str,
        cols: u16,
        rows: u16,
        command: &str,
    ) -> std::io::Result<Recorder> {
        crate::config::validate_slot_id(slot).map_err(std::io::Error::other)?;
        let slot_dir = self.dir.join(slot);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&slot_dir)?;
        let started_at = crate::supervisor::now_millis();
        let mut run = self
            .slot_files(slot)
            .iter()
            .map(|f| f.run)
            .max()
            .unwrap_or(0);
        let (file, path) = loop {
            run += 1;
            let path = slot_dir.join(format!("{run}.cast"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => break (file, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        let header = cast::Header {
            version: 2,
            width: cols,
            height: rows,
            timestamp: started_at / 1000,
            command: Some(command.to_string()),
            title: Some(format!("{slot} run {run}")),
            env: Some(BTreeMap::from([(
                "TERM".to_string(),
                "xterm-256color".to_string(),
            )])),
            missiond: Some(cast::Origin {
                slot: slot.to_string(),
                run,
                started_at,
            }),
        };
        let line = writer::header_line(&header);
        let mut file = file;
        file.write_all(&line)?;
        lock(&self.active).insert((slot.to_string(), run));
        self.prune();
        Recorder::start(
            self.clone(),
            slot.to_string(),
            run,
            path,
            file,
            line.len() as u64,
        )
        .inspect_err(|_| {
            lock(&self.active).remove(&(slot.to_string(), run));
        })
    }

    /// A writer is done with its file.
    fn finished(&self, slot: &str, run: u64) {
        lock(&self.active).remove(&(slot.to_string(), run));
        self.prune();
    }

    /// Waits (up to `timeout`) until every recording being written is closed: on shutdown,
    /// after the slots are stopped, so their last second and exit marker reach the disk.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while !lock(&self.active).is_empty() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// The file of run `run` of `slot`, if it is kept.
    pub fn path(&self, slot: &str, run: u64) -> Option<PathBuf> {
        crate::config::validate_slot_id(slot).ok()?;
        let path = self.dir.join(slot).join(format!("{run}.cast"));
        path.is_file().then_some(path)
    }

    /// The kept runs of `slot`, oldest first.
    pub fn runs(&self, slot: &str) -> Vec<RunSummary> {
        if crate::config::validate_slot_id(slot).is_err() {
            return Vec::new();
        }
        let active = lock(&self.active).clone();
        self.slot_files(slot)
            .into_iter()
            .filter_map(|f| {
                let header = read_header(&f.path)?;
                let origin = header.missiond.clone();
                let started_at = origin
                    .as_ref()
                    .map(|o| o.started_at)
                    .unwrap_or(header.timestamp * 1000);
                Some(RunSummary {
                    slot: f.slot.clone(),
                    run: f.run,
                    started_at,
                    duration: last_event_time(&f.path).unwrap_or(0.0),
                    bytes: f.bytes,
                    cols: header.width,
                    rows: header.height,
                    command: header.command.unwrap_or_default(),
                    recording: active.contains(&(f.slot.clone(), f.run)),
                })
            })
            .collect()
    }

    /// Disk use per slot and in total, with the limits: for `rec ls`, `GET /api/recordings`
    /// and `missiond doctor`.
    pub fn usage(&self) -> RecordingUsage {
        let mut slots: BTreeMap<String, SlotUsage> = BTreeMap::new();
        for f in self.all_files() {
            let entry = slots.entry(f.slot.clone()).or_insert_with(|| SlotUsage {
                slot: f.slot.clone(),
                runs: 0,
                bytes: 0,
            });
            entry.runs += 1;
            entry.bytes += f.bytes;
        }
        RecordingUsage {
            dir: self.dir.display().to_string(),
            total_bytes: slots.values().map(|s| s.bytes).sum(),
            runs: slots.values().map(|s| s.runs).sum(),
            limits: self.config.limits(),
            slots: slots.into_values().collect(),
        }
    }

    /// Removes runs past the limits, oldest first; never a run being written.
    pub fn prune(&self) {
        let _one_at_a_time = lock(&self.pruning);
        let active = lock(&self.active).clone();
        let is_active = |f: &RunFile| active.contains(&(f.slot.clone(), f.run));
        let mut files = self.all_files();
        // Oldest first: by last write, then by run number.
        files.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.run.cmp(&b.run)));
        let mut removed: HashSet<PathBuf> = HashSet::new();
        let remove =
            |f: &RunFile, why: &str, removed: &mut HashSet<PathBuf>| match std::fs::remove_file(
                &f.path,
            ) {
                Ok(()) => {
                    tracing::info!(slot = %f.slot, run = f.run, "recording removed: {why}");
                    removed.insert(f.path.clone());
                }
                Err(e) => tracing::warn!(path = %f.path.display(), "recording not removed: {e}"),
            };
        if self.config.max_age_days > 0.0 {
            let max_age = Duration::from_secs_f64(self.config.max_age_days * 86_400.0);
            let now = SystemTime::now();
            for f in &files {
                let age = now.duration_since(f.modified).unwrap_or_default();
                if age > max_age && !is_active(f) {
                    remove(f, "older than record.max_age_days", &mut removed);
                }
            }
        }
        files.retain(|f| !removed.contains(&f.path));
        let mut per_slot: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &files {
            *per_slot.entry(&f.slot).or_default() += f.bytes;
        }
        // A slot's newest run stays: it was cut at the limit (`rec:limit`) if it reached it.
        let mut newest: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &files {
            let n = newest.entry(&f.slot).or_default();
            *n = (*n).max(f.run);
        }
        for f in &files {
            let used = per_slot.get(f.slot.as_str()).copied().unwrap_or(0);
            let is_newest = newest.get(f.slot.as_str()) == Some(&f.run);
            if used > self.config.max_slot_bytes && !is_active(f) && !is_newest {
                remove(
                    f,
                    "the slot's recordings exceed record.max_slot_bytes",
                    &mut removed,
                );
                per_slot.insert(&f.slot, used - f.bytes);
            }
        }
        let mut total: u64 = files
            .iter()
            .filter(|f| !removed.contains(&f.path))
            .map(|f| f.bytes)
            .sum();
        for f in &files {
            if total <= self.config.max_total_bytes {
                break;
            }
            if !removed.contains(&f.path) && !is_active(f) {
                remove(
                    f,
                    "all recordings exceed record.max_total_bytes",
                    &mut removed,
                );
                total -= f.bytes;
            }
        }
    }

    fn all_files(&self) -> Vec<RunFile> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .flat_map(|slot| self.slot_files(&slot))
            .collect()
    }

    /// The `.cast` files of one slot, by run number.
    fn slot_files(&self, slot: &str) -> Vec<RunFile> {
        let Ok(entries) = std::fs::read_dir(self.dir.join(slot)) else {
            return Vec::new();
        };
        let mut files: Vec<RunFile> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let run: u64 = name.strip_suffix(".cast")?.parse().ok()?;
                let meta = e.metadata().ok()?;
                meta.is_file().then(|| RunFile {
                    slot: slot.to_string(),
                    run,
                    path: e.path(),
                    bytes: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                })
            })
            .collect();
        files.sort_by_key(|f| f.run);
        files
    }
}

fn read_header(path: &Path) -> Option<cast::Header> {
    let file = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    BufReader::new(file).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// The time of the last complete event line, read from the end of the file.
fn last_event_time(path: &Path) -> Option<f64> {
    use std::io::{Read, Seek, SeekFrom};
    /// Longer than any event line (a 16 KiB read, escaped).
    const TAIL: u64 = 256 * 1024;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut tail = Vec::new();
    file.take(TAIL).read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    text.lines().rev().find_map(|line| {
        let line = line.strip_prefix('[')?;
        line.split_once(',')?.0.trim().parse().ok()
    })
}

/// The marker of a dialog: `dialog:<title>|<n>. <label>|...`.
pub fn dialog_label(dialog: &crate::protocol::Dialog) -> String {
    let mut label = format!("dialog:{}", dialog.title);
    for option in &dialog.options {
        label.push_str(&format!("|{}. {}", option.n, option.label));
    }
    label
}

/// The marker of an answer: `answer:<n> <label> by <client>` (`answer:esc by ...` when the
/// dialog was cancelled with Escape).
pub fn answer_label(entry: &crate::protocol::audit::AuditEntry) -> String {
    let what = match &entry.option {
        Some(option) => format!("{} {}", option.n, option.label),
        None => "esc".to_string(),
    };
    format!("answer:{what} by {}", entry.actor.client.as_str())
}

/// The marker of a prompt: `prompt:<text>` (at most 200 characters).
pub fn prompt_label(text: &str) -> String {
    let text: String = text.chars().take(200).collect();
    format!("prompt:{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(slot: u64, total: u64) -> RecordConfig {
        RecordConfig {
            enabled: true,
            max_slot_bytes: slot,
            max_total_bytes: total,
            max_age_days: 0.0,
        }
    }

    fn write_run(dir: &Path, slot: &str, run: u64, bytes: usize) {
        let d = dir.join(slot);
        std::fs::create_dir_all(&d).unwrap();
        let mut text =
            format!("{{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":{run}}}\n")
                .into_bytes();
        text.resize(bytes, b' ');
        std::fs::write(d.join(format!("{run}.cast")), text).unwrap();
        // Distinct modification times, oldest = lowest run.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + run * 10);
        let f = std::fs::File::options()
            .write(true)
            .open(d.join(format!("{run}.cast")))
            .unwrap();
        f.set_modified(t).unwrap();
    }

    #[test]
    fn oldest_runs_go_first_per_slot_and_in_total() {
        let tmp = tempfile::tempdir().unwrap();
        for run in 1..=4 {
            write_run(tmp.path(), "a", run, 1000);
        }
        write_run(tmp.path(), "b", 5, 1000);
        // Slot limit 2500: a keeps its two newest runs; total 2500: then a's run 3 goes too.
        let store = Recordings::open(tmp.path(), config(2500, 2500)).unwrap();
        let kept: Vec<u64> = store.runs("a").iter().map(|r| r.run).collect();
        assert_eq!(kept, vec![4]);
        assert_eq!(store.runs("b").len(), 1);
        let usage = store.usage();
        assert_eq!(usage.total_bytes, 2000);
        assert_eq!(usage.runs, 2);
    }

    #[test]
    fn a_slots_newest_run_stays_even_over_the_slot_limit() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path(), "a", 1, 1000);
        write_run(tmp.path(), "a", 2, 3000);
        let store = Recordings::open(tmp.path(), config(2500, u64::MAX)).unwrap();
        let kept: Vec<u64> = store.runs("a").iter().map(|r| r.run).collect();
        assert_eq!(kept, vec![2]);
    }

    #[test]
    fn old_runs_are_removed_by_age() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path(), "a", 1, 100);
        let mut cfg = config(u64::MAX, u64::MAX);
        cfg.max_age_days = 1.0;
        let store = Recordings::open(tmp.path(), cfg).unwrap();
        assert!(store.runs("a").is_empty());
    }

    #[test]
    fn a_recording_has_header_output_resize_markers_and_is_flushed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Recordings::open(tmp.path(), RecordConfig::default()).unwrap();
        let rec = store.begin("s1", 80, 24, "sh -c x").unwrap();
        assert_eq!(rec.run(), 1);
        rec.output(&bytes::Bytes::from_static(b"hello \x1b[1mworld\x1b[0m\r\n"));
        rec.resize(100, 30);
        rec.marker("state:idle\nsecond line");
        // Flushed within a second without finishing.
        let path = store.path("s1", 1).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let cast = loop {
            let cast = cast::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
            if cast.events.len() == 3 || std::time::Instant::now() > deadline {
                break cast;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(cast.header.width, 80);
        assert_eq!(cast.header.missiond.as_ref().unwrap().slot, "s1");
        assert!(
            matches!(&cast.events[0], cast::Event::Output(_, s) if s == "hello \x1b[1mworld\x1b[0m\r\n")
        );
        assert!(matches!(cast.events[1], cast::Event::Resize(_, 100, 30)));
        assert!(
            matches!(&cast.events[2], cast::Event::Marker(_, s) if s == "state:idle second line")
        );
        assert!(store.runs("s1")[0].recording);
        assert_eq!(store.runs("s1")[0].duration, cast.events[2].time());
        rec.finish();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.runs("s1")[0].recording && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!store.runs("s1")[0].recording);
        assert_eq!(store.begin("s1", 80, 24, "sh").unwrap().run(), 2);
        assert!(store.path("../x", 1).is_none());
    }

    /// A writer that cannot keep up (here: its file is a pipe nobody reads yet) makes the
    /// recorder drop output past [`writer::MAX_PENDING`] without blocking the caller, and the
    /// recording then says how many bytes are missing: what is written plus what is said to
    /// be dropped is every byte handed over.
    #[test]
    fn output_the_writer_cannot_take_is_dropped_and_said() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Recordings::open(tmp.path(), config(u64::MAX, u64::MAX)).unwrap();
        let (mut pipe_out, pipe_in) = std::io::pipe().unwrap();
        let file = std::fs::File::from(std::os::fd::OwnedFd::from(pipe_in));
        let rec = Recorder::start(store, "s1".into(), 1, tmp.path().join("pipe"), file, 0).unwrap();
        const CHUNK: usize = 1024 * 1024;
        let chunk = bytes::Bytes::from(vec![b'a'; CHUNK]);
        let chunks = writer::MAX_PENDING as usize / CHUNK + 16;
        for _ in 0..chunks {
            rec.output(&chunk); // never blocks, although the writer is stuck
        }
        rec.marker("state:idle");
        rec.finish();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe_out, &mut text).unwrap();
        let mut written = 0;
        let mut dropped = Vec::new();
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            match event[1].as_str().unwrap() {
                "o" => written += event[2].as_str().unwrap().len(),
                "m" => dropped.extend(
                    event[2]
                        .as_str()
                        .unwrap()
                        .strip_prefix("rec:dropped ")
                        .and_then(|s| s.strip_suffix(" bytes"))
                        .map(|n| n.parse::<usize>().unwrap()),
                ),
                other => panic!("unexpected event {other}"),
            }
        }
        assert_eq!(dropped.len(), 1, "one rec:dropped marker");
        assert!(dropped[0] >= 15 * CHUNK, "dropped {}", dropped[0]);
        assert_eq!(written + dropped[0], chunks * CHUNK);
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last[2], "state:idle", "the marker after the gap is kept");
    }
}
