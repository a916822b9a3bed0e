//! The registry of slots created at run time, so they outlive the daemon.
//!
//! `$XDG_STATE_HOME/missiond/slots.json` lists every slot made with `missiond launch` or
//! `POST /api/slots` (never the config file's, which the config defines): its spec as asked,
//! its size, whether its program should be running, the Claude Code session it talked in and
//! its worktree. It is rewritten whole on every create, change and removal, atomically
//! (temporary file, fsync, rename, fsync of the directory), so a crash leaves either the old
//! list or the new one. `screens/<id>.ansi` beside it keeps the last screen (and scrollback)
//! each slot showed, saved when the slot goes quiet and on shutdown; a restored slot gets it
//! in its scrollback.
//!
//! A file that cannot be read is moved aside (`slots.json.unreadable-<millis>`), said in the
//! log and on stderr, and the daemon starts without it: nothing is dropped silently.

use crate::protocol::SlotSpec;
use crate::worktree::Checkout;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The format written; a newer version is moved aside rather than half understood.
pub const REGISTRY_VERSION: u32 = 1;
const FILE_NAME: &str = "slots.json";
const SCREENS: &str = "screens";

/// One slot as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The spec the slot was created with.
    pub spec: SlotSpec,
    pub cols: u16,
    pub rows: u16,
    /// Whether the program should run: false once it exited or was killed (it stays exited).
    pub running: bool,
    /// The Claude Code conversation of a `claude-code` slot, for `--resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The slot's worktree as made, found again on restore (never made anew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<Checkout>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RegistryFile {
    version: u32,
    slots: Vec<Record>,
}

/// The registry file and the screens beside it.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    /// Records loaded but not (yet) live in the supervisor: being restored, or shadowed by a
    /// config slot of the same id. Written back with the live ones, so none is lost.
    held: Mutex<BTreeMap<String, Record>>,
    /// Serializes writers: each write is the whole list as of its turn.
    writing: Mutex<()>,
    /// Set on shutdown: the kills that follow are not the user's, and must not be recorded.
    frozen: AtomicBool,
}

/// What [`Registry::open`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<Record>,
    /// Things the user must hear about (an unreadable file moved aside).
    pub warnings: Vec<String>,
}

impl Registry {
    /// Opens the registry in `state_dir` and reads what it holds (nothing when it is absent).
    /// An unreadable file is moved aside and reported in `warnings`.
    pub fn open(state_dir: &Path) -> (Registry, Loaded) {
        let registry = Registry {
            dir: state_dir.to_path_buf(),
            held: Mutex::new(BTreeMap::new()),
            writing: Mutex::new(()),
            frozen: AtomicBool::new(false),
        };
        let loaded = registry.read();
        (registry, loaded)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    fn read(&self) -> Loaded {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::default(),
            Err(e) => return self.set_aside(&path, &format!("cannot be read ({e})")),
        };
        let file: RegistryFile = match serde_json::from_slice(&bytes) {
            Ok(file) => file,
            Err(e) => return self.set_aside(&path, &format!("is not a registry ({e})")),
        };
        if file.version != REGISTRY_VERSION {
            return self.set_aside(
                &path,
                &format!(
                    "has version {} and this missiond reads version {REGISTRY_VERSION}",
                    file.version
                ),
            );
        }
        Loaded {
            records: file.slots,
            warnings: Vec::new(),
        }
    }

    /// Moves an unreadable registry out of the way, keeping it for the user to look at.
    fn set_aside(&self, path: &Path, why: &str) -> Loaded {
        let aside = path.with_file_name(format!(
            "{FILE_NAME}.unreadable-{}",
            crate::supervisor::now_millis()
        ));
        let warning = match std::fs::rename(path, &aside) {
            Ok(()) => format!(
                "the slot registry {} {why}; moved it to {} and started without its slots",
                path.display(),
                aside.display()
            ),
            Err(e) => format!(
                "the slot registry {} {why} and could not be moved aside ({e}); started without its slots",
                path.display()
            ),
        };
        Loaded {
            records: Vec::new(),
            warnings: vec![warning],
        }
    }

    /// Keeps `record` in the file although no live slot has it (yet).
    pub fn hold(&self, record: Record) {
        lock(&self.held).insert(record.spec.id.clone(), record);
    }

    pub fn holds(&self, id: &str) -> bool {
        lock(&self.held).contains_key(id)
    }

    /// The slot is live now (or removed): its held record gives way to the live one.
    pub fn release(&self, id: &str) {
        lock(&self.held).remove(id);
    }

    /// No more writes: the daemon is stopping, and its kills are not the slots' fate.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// Writes the registry: `live()` (the supervisor's recorded slots, taken inside the write
    /// turn so that the last writer writes the latest list) and the held records.
    pub fn write(&self, live: impl FnOnce() -> Vec<Record>) {
        if self.is_frozen() {
            return;
        }
        let _turn = lock(&self.writing);
        let mut slots: BTreeMap<String, Record> = lock(&self.held).clone();
        for record in live() {
            slots.insert(record.spec.id.clone(), record);
        }
        let file = RegistryFile {
            version: REGISTRY_VERSION,
            slots: slots.into_values().collect(),
        };
        let result = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomic(&self.path(), &bytes));
        if let Err(e) = result {
            tracing::error!(
                "cannot write the slot registry {}: {e}; slots changed since may not be restored",
                self.path().display()
            );
        }
    }

    fn screen_path(&self, id: &str) -> PathBuf {
        self.dir.join(SCREENS).join(format!("{id}.ansi"))
    }

    /// Saves the last screen of slot `id` (lines as [`crate::screen::Screen::lines_ansi`] gives them).
    pub fn save_screen(&self, id: &str, lines: &[u8]) {
        if self.is_frozen() {
            return;
        }
        let path = self.screen_path(id);
        let result = std::fs::create_dir_all(self.dir.join(SCREENS))
            .and_then(|()| write_atomic(&path, lines));
        if let Err(e) = result {
            tracing::warn!(
                slot = id,
                "cannot save the screen to {}: {e}",
                path.display()
            );
        }
    }

    /// The last saved screen of slot `id`, if any.
    pub fn load_screen(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.screen_path(id)).ok()
    }

    /// Removes slot `id`'s saved screen (the slot was removed).
    pub fn forget_screen(&self, id: &str) {
        let _ = std::fs::remove_file(self.screen_path(id));
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, never a mix:
/// a temporary file beside it, fsync, rename over, fsync of the directory. Readable by the
/// owner only (mode 0600): slots' environments and screens may hold secrets.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("a file path without a directory"))?;
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            spec: SlotSpec::new(id, "sh"),
            cols: 80,
            rows: 24,
            running: true,
            session_id: None,
            worktree: None,
        }
    }

    #[test]
    fn what_is_written_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, loaded) = Registry::open(dir.path());
        assert!(loaded.records.is_empty() && loaded.warnings.is_empty());
        registry.hold(record("held"));
        registry.write(|| vec![record("a"), record("b")]);
        let (_, loaded) = Registry::open(dir.path());
        let ids: Vec<_> = loaded.records.iter().map(|r| r.spec.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "held"]);
        assert!(loaded.warnings.is_empty());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(registry.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "slots' environments may hold secrets");
    }

    #[test]
    fn a_frozen_registry_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, _) = Registry::open(dir.path());
        registry.write(|| vec![record("a")]);
        registry.freeze();
        registry.write(Vec::new);
        registry.save_screen("a", b"x");
        let (_, loaded) = Registry::open(dir.path());
        assert_eq!(loaded.records.len(), 1);
        assert!(registry.load_screen("a").is_none());
    }

    #[test]
    fn an_unreadable_file_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{ not json").unwrap();
        let (_, loaded) = Registry::open(dir.path());
        assert!(loaded.records.is_empty());
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("moved it to"));
        assert!(!dir.path().join(FILE_NAME).exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("slots.json.unreadable-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            std::fs::read(dir.path().join(&aside[0])).unwrap(),
            b"{ not json"
        );
    }

    #[test]
    fn a_newer_version_is_moved_aside_not_half_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            br#"{"version": 99, "slots": []}"#,
        )
        .unwrap();
        let (_, loaded) = Registry::open(dir.path());
        assert!(loaded.warnings[0].contains("version 99"));
    }
}
