//! The audit trail: every action that reaches a program or changes a slot, one JSON line each
//! in `<state dir>/audit.jsonl`.
//!
//! An entry is written (one `write` of one whole line, `O_APPEND`) before the action goes to
//! the program, so a reader of the file never sees an action the record does not have, and a
//! half-written last line is only ever the line being written (readers skip it). When the file
//! would grow past `max_bytes` it is renamed `audit.jsonl.1` (the older ones shift up to
//! `audit.jsonl.<keep_files>`, the oldest is deleted, and the daemon's log says so).

use crate::protocol::audit::AuditEntry;
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const FILE_NAME: &str = "audit.jsonl";

/// `[audit]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Size at which `audit.jsonl` is rotated.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`audit.jsonl.1` .. `audit.jsonl.N`).
    #[serde(default = "default_keep_files")]
    pub keep_files: u32,
}

fn default_max_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_keep_files() -> u32 {
    5
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            max_bytes: default_max_bytes(),
            keep_files: default_keep_files(),
        }
    }
}

/// Which entries a reader wants.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub slot: Option<String>,
    /// Entries at or after this time (ms since the epoch).
    pub since: Option<u64>,
    /// At most this many, the newest.
    pub limit: usize,
}

/// The open audit file.
pub struct AuditLog {
    path: PathBuf,
    config: AuditConfig,
    file: Mutex<Open>,
}

struct Open {
    file: File,
    size: u64,
}

impl AuditLog {
    /// Opens (creating, mode 0600) `<dir>/audit.jsonl` for appending.
    pub fn open(dir: &Path, config: AuditConfig) -> std::io::Result<AuditLog> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let open = open_append(&path)?;
        Ok(AuditLog {
            path,
            config,
            file: Mutex::new(open),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry; only when this returns `Ok` may the action go ahead.
    pub fn append(&self, entry: &AuditEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut open = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("audit log lock poisoned"))?;
        if open.size > 0 && open.size + line.len() as u64 > self.config.max_bytes {
            self.rotate()?;
            *open = open_append(&self.path)?;
        }
        open.file.write_all(&line)?;
        open.size += line.len() as u64;
        Ok(())
    }

    /// `audit.jsonl` -> `.1` -> `.2` ... ; the file past `keep_files` is deleted.
    fn rotate(&self) -> std::io::Result<()> {
        let keep = self.config.keep_files;
        if keep == 0 {
            tracing::info!("audit: {} is full; starting it afresh", self.path.display());
            return std::fs::remove_file(&self.path);
        }
        let oldest = rotated(&self.path, keep);
        if oldest.exists() {
            tracing::info!("audit: deleting {} (keep_files = {keep})", oldest.display());
        }
        for n in (1..keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))
    }

    /// The entries `filter` asks for, oldest first, from the current file and as many rotated
    /// ones as needed.
    pub fn read(&self, filter: &AuditFilter) -> std::io::Result<Vec<AuditEntry>> {
        read_entries(&self.path, self.config.keep_files, filter)
    }
}

/// Reads `path` and its rotated files (newest first until enough is found).
pub fn read_entries(
    path: &Path,
    keep_files: u32,
    filter: &AuditFilter,
) -> std::io::Result<Vec<AuditEntry>> {
    let limit = filter.limit.max(1);
    let mut newest_first: Vec<AuditEntry> = Vec::new();
    for n in 0..=keep_files {
        let file = if n == 0 {
            path.to_path_buf()
        } else {
            rotated(path, n)
        };
        let entries = match read_file(&file) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let reached_since = match (filter.since, entries.first()) {
            (Some(since), Some(first)) => first.time < since,
            _ => false,
        };
        newest_first.extend(entries.into_iter().rev().filter(|e| {
            filter.since.is_none_or(|s| e.time >= s)
                && filter.slot.as_deref().is_none_or(|s| e.slot == s)
        }));
        if newest_first.len() >= limit || reached_since {
            break;
        }
    }
    newest_first.truncate(limit);
    newest_first.reverse();
    Ok(newest_first)
}

/// Every complete line of one file; a line that does not parse is skipped (and logged).
fn read_file(path: &Path) -> std::io::Result<Vec<AuditEntry>> {
    let reader = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    for line in reader.split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AuditEntry>(&line) {
            Ok(entry) => out.push(entry),
            // The line being written right now has no newline yet and may not parse.
            Err(e) => tracing::debug!("audit: skipping a line of {}: {e}", path.display()),
        }
    }
    Ok(out)
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> std::io::Result<Open> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok(Open { file, size })
}

/// The text of an input worth keeping in the record: one line of printable characters.
pub fn printable_line(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    (!text.is_empty() && text.chars().all(|c| !c.is_control())).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::audit::{Actor, AuditAction};

    fn entry(time: u64, slot: &str) -> AuditEntry {
        AuditEntry::new(time, slot, AuditAction::Kill, Actor::config())
    }

    #[test]
    fn rotates_by_size_and_reads_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            max_bytes: 400,
            keep_files: 2,
        };
        let log = AuditLog::open(dir.path(), config).unwrap();
        for t in 0..40 {
            log.append(&entry(t, if t % 2 == 0 { "a" } else { "b" }))
                .unwrap();
        }
        assert!(dir.path().join("audit.jsonl.1").exists());
        assert!(dir.path().join("audit.jsonl.2").exists());
        assert!(!dir.path().join("audit.jsonl.3").exists());
        for f in ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"] {
            let len = std::fs::metadata(dir.path().join(f)).unwrap().len();
            assert!(len <= 400, "{f} is {len} bytes");
        }
        let all = log
            .read(&AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .unwrap();
        // The newest survive, in order; the oldest were dropped with the third rotated file.
        assert_eq!(all.last().unwrap().time, 39);
        assert!(all.first().unwrap().time > 0);
        assert!(all.windows(2).all(|w| w[0].time < w[1].time));
        let b = log
            .read(&AuditFilter {
                slot: Some("b".into()),
                since: Some(30),
                limit: 2,
            })
            .unwrap();
        assert_eq!(b.iter().map(|e| e.time).collect::<Vec<_>>(), vec![37, 39]);
    }

    #[test]
    fn a_half_written_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), AuditConfig::default()).unwrap();
        log.append(&entry(1, "a")).unwrap();
        let mut f = OpenOptions::new().append(true).open(log.path()).unwrap();
        f.write_all(br#"{"time":2,"slot":"a","act"#).unwrap();
        let all = log
            .read(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn printable_lines_only() {
        assert_eq!(printable_line(b"rm -rf x").as_deref(), Some("rm -rf x"));
        assert_eq!(printable_line("héllo".as_bytes()).as_deref(), Some("héllo"));
        assert_eq!(printable_line(b"ls\r"), None);
        assert_eq!(printable_line(b"\x1b[A"), None);
        assert_eq!(printable_line(b""), None);
        assert_eq!(printable_line(&[0xff]), None);
    }
}
