//! Where things live under the claude dir, and how each file is read.
//!
//! Reading is guarded by a [`Stamp`] (size, mtime, ctime, inode) so an unchanged file is never
//! read twice; a file that cannot be parsed is reported as [`Load::Invalid`], never as missing.

use crate::protocol::tasks::{Task, TaskStatus};
use serde::Deserialize;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A file the model reads, named by what it is rather than by its path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FileRef {
    /// `tasks/<list>/<name>.json`
    ListFile { list: String, name: String },
    /// `todos/<stem>.json`
    Todo { stem: String },
    /// `sessions/<pid>.json`
    Session { pid: u32 },
}

impl FileRef {
    pub(crate) fn path(&self, root: &Path) -> PathBuf {
        match self {
            FileRef::ListFile { list, name } => root.join("tasks").join(list).join(name),
            FileRef::Todo { stem } => root.join("todos").join(format!("{stem}.json")),
            FileRef::Session { pid } => root.join("sessions").join(format!("{pid}.json")),
        }
    }
}

/// What a changed path means to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// The claude dir itself or one of its ancestors: everything may have changed.
    Root,
    TasksDir,
    ListDir(String),
    File(FileRef),
    TodosDir,
    SessionsDir,
    /// Anything else (`.lock`, `.highwatermark`, temp files, other folders of the claude dir).
    Ignored,
}

fn json_name(name: &str) -> bool {
    name.len() > ".json".len() && name.ends_with(".json") && !name.starts_with('.')
}

/// Classifies `path` relative to the claude dir `root`.
pub(crate) fn classify(root: &Path, path: &Path) -> Place {
    if root.starts_with(path) {
        return Place::Root;
    }
    let Ok(rel) = path.strip_prefix(root) else {
        return Place::Ignored;
    };
    let parts: Vec<&str> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    if parts.len() != rel.components().count() {
        return Place::Ignored;
    }
    match parts.as_slice() {
        ["tasks"] => Place::TasksDir,
        ["tasks", list] => Place::ListDir((*list).to_string()),
        ["tasks", list, name] if json_name(name) => Place::File(FileRef::ListFile {
            list: (*list).to_string(),
            name: (*name).to_string(),
        }),
        ["todos"] => Place::TodosDir,
        ["todos", name] if json_name(name) => Place::File(FileRef::Todo {
            stem: name.strip_suffix(".json").unwrap_or(name).to_string(),
        }),
        ["sessions"] => Place::SessionsDir,
        ["sessions", name] => match session_pid(name) {
            Some(pid) => Place::File(FileRef::Session { pid }),
            None => Place::Ignored,
        },
        _ => Place::Ignored,
    }
}

/// `1234.json` -> 1234.
pub(crate) fn session_pid(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `<session>-agent-<agent>` -> (session, agent unless it is the session itself).
pub(crate) fn split_todo_stem(stem: &str) -> (String, Option<String>) {
    match stem.split_once("-agent-") {
        Some((session, agent)) if agent != session => {
            (session.to_string(), Some(agent.to_string()))
        }
        Some((session, _)) => (session.to_string(), None),
        None => (stem.to_string(), None),
    }
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub len: u64,
    pub mtime: SystemTime,
    pub ctime: (i64, i64),
    pub ino: u64,
    /// When we read it. A stamp is only trusted once the file's mtime is clearly older than the
    /// read: with coarse filesystem clocks, two same-size writes in one tick look identical.
    pub read_at: SystemTime,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata, read_at: SystemTime) -> Stamp {
        Stamp {
            len: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            read_at,
        }
    }

    /// Same size, times and inode: the same write (whenever it was read).
    pub(crate) fn same_write(&self, other: &Stamp) -> bool {
        self.len == other.len
            && self.mtime == other.mtime
            && self.ctime == other.ctime
            && self.ino == other.ino
    }

    fn same_file_version(&self, other: &Stamp) -> bool {
        const SETTLED: Duration = Duration::from_millis(50);
        let settled = self
            .read_at
            .duration_since(self.mtime)
            .map(|d| d >= SETTLED)
            .unwrap_or(false);
        settled && self.same_write(other)
    }
}

/// The result of looking at one file.
#[derive(Debug)]
pub(crate) enum Load<T> {
    Missing,
    /// Same stamp as last time: not read.
    Unchanged,
    Valid(Stamp, T),
    Invalid(Stamp, String),
}

/// Largest task, todos or session file read; a larger one is skipped (and logged once, as
/// any invalid file is). Claude Code writes a few KiB; a huge or sparse file must not bloat
/// the daemon nor be served whole to every viewer.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Longest text field served from a task file; longer ones are cut, with an ellipsis.
pub const MAX_FIELD_BYTES: usize = 16 * 1024;

/// Stats `path` and, unless `previous` says it is unchanged (or `force`), reads and parses it.
/// A path that leads out of the claude dir `root` (through a symlinked file or folder) is not
/// read: the files are served to every token, the read-only one included.
pub(crate) fn load<T>(
    root: &Path,
    path: &Path,
    previous: Option<&Stamp>,
    force: bool,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Load<T> {
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Load::Missing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Load::Missing,
        Err(e) => return Load::Invalid(Stamp::of_missing(), format!("cannot stat: {e}")),
    };
    let now = SystemTime::now();
    let stamp = Stamp::of(&meta, now);
    if !force {
        if let Some(prev) = previous {
            if prev.same_file_version(&stamp) {
                return Load::Unchanged;
            }
        }
    }
    let real = match inside(root, path) {
        Ok(real) => real,
        Err(e) => return Load::Invalid(stamp, e),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Load::Invalid(stamp, too_large(meta.len()));
    }
    let bytes = match read_at_most(&real, MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Load::Missing,
        Err(e) => return Load::Invalid(stamp, format!("cannot read: {e}")),
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Load::Invalid(stamp, too_large(bytes.len() as u64));
    }
    // The stamp was taken before the read: if the file changed in between, the stamp is older
    // than the content, so the next event re-reads it (never the other way round).
    match parse(&bytes) {
        Ok(v) => Load::Valid(stamp, v),
        Err(e) => Load::Invalid(stamp, e),
    }
}

fn too_large(len: u64) -> String {
    format!("{len} bytes, more than the {MAX_FILE_BYTES} a task file may have: not read")
}

/// The real path of `path`, if it lies inside the real path of `root`.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let real_root =
        std::fs::canonicalize(root).map_err(|e| format!("cannot resolve the claude dir: {e}"))?;
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve: {e}"))?;
    if real.starts_with(&real_root) {
        Ok(real)
    } else {
        Err(format!(
            "a symlink to {}, outside the claude dir: not read",
            real.display()
        ))
    }
}

/// Up to `limit + 1` bytes of `path`: one more than allowed tells the file grew too large.
fn read_at_most(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `text` cut to at most [`MAX_FIELD_BYTES`] (on a character boundary), marked with `…`.
fn capped(mut text: String) -> String {
    if text.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Every text field of `task` within [`MAX_FIELD_BYTES`].
fn capped_task(task: Task) -> Task {
    Task {
        id: capped(task.id),
        subject: capped(task.subject),
        description: capped(task.description),
        active_form: task.active_form.map(capped),
        status: task.status,
        blocks: task.blocks.into_iter().map(capped).collect(),
        blocked_by: task.blocked_by.into_iter().map(capped).collect(),
        owner: task.owner.map(capped),
    }
}

impl Stamp {
    fn of_missing() -> Stamp {
        Stamp {
            len: u64::MAX,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: (0, 0),
            ino: 0,
            read_at: SystemTime::UNIX_EPOCH,
        }
    }
}

/// One task file of a current list.
pub(crate) fn parse_task(bytes: &[u8]) -> Result<Task, String> {
    serde_json::from_slice::<Task>(bytes)
        .map(capped_task)
        .map_err(|e| e.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTodo {
    content: String,
    status: TaskStatus,
    #[serde(default)]
    active_form: Option<String>,
}

/// A legacy todos file: an array of `{content, status, activeForm}`, ids by position from 1.
pub(crate) fn parse_todos(bytes: &[u8]) -> Result<Vec<Task>, String> {
    let raw: Vec<RawTodo> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(raw
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            capped_task(Task {
                id: (i + 1).to_string(),
                subject: t.content,
                description: String::new(),
                active_form: t.active_form,
                status: t.status,
                blocks: Vec::new(),
                blocked_by: Vec::new(),
                owner: None,
            })
        })
        .collect())
}

/// The fields of `sessions/<pid>.json` the hub uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionFile {
    pub session_id: String,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

pub(crate) fn parse_session(bytes: &[u8]) -> Result<SessionFile, String> {
    let file: SessionFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(SessionFile {
        name: file.name.map(capped),
        ..file
    })
}

/// File names of `dir` (empty when it does not exist).
pub(crate) fn list_dir(dir: &Path, want_dirs: bool) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir != want_dirs {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            out.push(name.to_string());
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        let root = Path::new("/h/.claude");
        assert_eq!(classify(root, Path::new("/h")), Place::Root);
        assert_eq!(classify(root, root), Place::Root);
        assert_eq!(
            classify(root, Path::new("/h/.claude/tasks")),
            Place::TasksDir
        );
        assert_eq!(
            classify(root, Path::new("/h/.claude/tasks/abc")),
            Place::ListDir("abc".into())
        );
        assert_eq!(
            classify(root, Path::new("/h/.claude/tasks/abc/3.json")),
            Place::File(FileRef::ListFile {
                list: "abc".into(),
                name: "3.json".into()
            })
        );
        assert_eq!(
            classify(root, Path::new("/h/.claude/tasks/abc/.lock")),
            Place::Ignored
        );
        assert_eq!(
            classify(root, Path::new("/h/.claude/tasks/abc/.highwatermark")),
            Place::Ignored
        );
        assert_eq!(
            classify(root, Path::new("/h/.claude/todos/s-agent-s.json")),
            Place::File(FileRef::Todo {
                stem: "s-agent-s".into()
            })
        );
        assert_eq!(
            classify(root, Path::new("/h/.claude/sessions/42.json")),
            Place::File(FileRef::Session { pid: 42 })
        );
        assert_eq!(
            classify(root, Path::new("/h/.claude/sessions/x.json")),
            Place::Ignored
        );
        assert_eq!(
            classify(root, Path::new("/h/.claude/projects/a/b.jsonl")),
            Place::Ignored
        );
        assert_eq!(classify(root, Path::new("/other")), Place::Ignored);
    }

    #[test]
    fn long_fields_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_FIELD_BYTES);
        let cut = capped(long);
        assert!(cut.len() <= MAX_FIELD_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(capped("short".into()), "short");
    }

    #[test]
    fn todo_stems() {
        assert_eq!(split_todo_stem("s1-agent-s1"), ("s1".into(), None));
        assert_eq!(
            split_todo_stem("s1-agent-a2"),
            ("s1".into(), Some("a2".into()))
        );
        assert_eq!(split_todo_stem("plain"), ("plain".into(), None));
    }

    #[test]
    fn todos_map_to_tasks() {
        let t = parse_todos(br#"[{"content":"A","status":"completed","activeForm":"Doing A"},{"content":"B","status":"pending"}]"#);
        let t = t.unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].id, "1");
        assert_eq!(t[0].subject, "A");
        assert_eq!(t[1].status, TaskStatus::Pending);
        assert!(parse_todos(b"[{\"content\":").is_err());
    }
}
