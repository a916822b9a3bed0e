//! The in-memory picture of every task list and session, and the diff that turns file changes
//! into [`TaskEvent`]s.
//!
//! The watcher tells the model *what may have changed* (a [`Dirty`] set); the model re-reads
//! exactly those files (skipping ones whose [`Stamp`] is unchanged), compares each touched list
//! with its state before, and returns the events in a fixed order per list:
//! `cc_session_active`, `cc_tasks_changed`, `cc_task_started`/`cc_task_completed` (in task order),
//! `cc_session_inactive`.

use super::diff;
use super::files::{self, FileRef, Load, SessionFile, Stamp};
use super::procs;
use super::transcripts::Projects;
use super::{SessionStatus, SlotResolver};
use crate::protocol::tasks::{
    ListSource, SessionActivity, SessionTasks, Task, TaskEvent, TasksOverview,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Delays before re-reading a file that did not parse; after the last one it is reported.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
];

/// How often the liveness of linked session processes is checked while one of them is active.
/// A Claude Code process removes its session file on a clean exit (an event); this catches crashes.
const PID_CHECK: Duration = Duration::from_secs(5);

/// The project name when no session file gives a cwd.
const UNKNOWN_PROJECT: &str = "unknown";

/// A list is keyed by its source and its id (a folder name, or a todos file stem).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ListKey {
    Tasks(String),
    Todos(String),
}

#[derive(Debug, Default)]
struct Invalid {
    attempts: usize,
    warned: bool,
}

#[derive(Debug)]
struct FileEntry {
    stamp: Stamp,
    /// The last good content: an invalid read keeps it.
    tasks: Vec<Task>,
    invalid: Option<Invalid>,
}

#[derive(Debug)]
struct TaskList {
    session_id: String,
    agent_id: Option<String>,
    source: ListSource,
    /// Keyed by file name (a todos list has one entry, keyed "").
    files: BTreeMap<String, FileEntry>,
    tasks: Vec<Task>,
    last_change: SystemTime,
    /// What clients were last told: `None` while the list is not shown.
    reported_active: Option<bool>,
    /// The cwd from the session's transcript, for when no session file names it.
    cwd_hint: Option<String>,
}

impl TaskList {
    fn new(key: &ListKey) -> TaskList {
        let (session_id, agent_id, source) = match key {
            ListKey::Tasks(id) => (id.clone(), None, ListSource::Tasks),
            ListKey::Todos(stem) => {
                let (s, a) = files::split_todo_stem(stem);
                (s, a, ListSource::Todos)
            }
        };
        TaskList {
            session_id,
            agent_id,
            source,
            files: BTreeMap::new(),
            tasks: Vec::new(),
            last_change: SystemTime::UNIX_EPOCH,
            reported_active: None,
            cwd_hint: None,
        }
    }

    /// Task-list folders are always shown; a legacy todos file only once it holds a todo
    /// (Claude Code leaves an empty `[]` file behind for every session).
    fn visible(&self) -> bool {
        self.source == ListSource::Tasks || !self.tasks.is_empty()
    }

    fn touch(&mut self, t: SystemTime) {
        if t > self.last_change {
            self.last_change = t;
        }
    }

    fn rebuild(&mut self) {
        self.tasks = diff::merge(self.source, self.files.values().map(|f| f.tasks.as_slice()));
    }
}

#[derive(Debug)]
struct SessionEntry {
    stamp: Stamp,
    file: Option<SessionFile>,
    invalid: Option<Invalid>,
}

/// What may have changed since the last batch.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    pub full: bool,
    pub tasks_root: bool,
    pub todos_root: bool,
    pub sessions_root: bool,
    pub lists: BTreeSet<String>,
    /// File -> read even if its stamp is unchanged (a retry).
    pub files: BTreeMap<FileRef, bool>,
}

impl Dirty {
    pub(crate) fn full() -> Dirty {
        Dirty {
            full: true,
            ..Dirty::default()
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.full
            && !self.tasks_root
            && !self.todos_root
            && !self.sessions_root
            && self.lists.is_empty()
            && self.files.is_empty()
    }

    pub(crate) fn add(&mut self, place: files::Place) {
        use files::Place;
        match place {
            Place::Root => self.full = true,
            Place::TasksDir => self.tasks_root = true,
            Place::TodosDir => self.todos_root = true,
            Place::SessionsDir => self.sessions_root = true,
            Place::ListDir(l) => {
                self.lists.insert(l);
            }
            Place::File(f) => {
                self.files.entry(f).or_insert(false);
            }
            Place::Ignored => {}
        }
    }
}

/// Everything one batch produced.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub events: Vec<TaskEvent>,
    pub statuses: Vec<SessionStatus>,
}

/// Who owns a list, as far as the session files tell.
struct Link {
    session_id: String,
    pid: Option<u32>,
    cwd: Option<String>,
}

pub(crate) struct Model {
    root: PathBuf,
    active_window: Duration,
    slots: Arc<dyn SlotResolver>,
    lists: BTreeMap<ListKey, TaskList>,
    sessions: BTreeMap<u32, SessionEntry>,
    retries: BTreeMap<FileRef, Instant>,
}

/// Lists touched in a batch, with their tasks and visibility before it.
type Before = BTreeMap<ListKey, (Vec<Task>, bool)>;

impl Model {
    pub(crate) fn new(
        root: PathBuf,
        active_window: Duration,
        slots: Arc<dyn SlotResolver>,
    ) -> Model {
        Model {
            root,
            active_window,
            slots,
            lists: BTreeMap::new(),
            sessions: BTreeMap::new(),
            retries: BTreeMap::new(),
        }
    }

    // ---- reading -------------------------------------------------------------------------

    fn snapshot(&self, key: &ListKey, before: &mut Before) {
        if !before.contains_key(key) {
            let old = match self.lists.get(key) {
                Some(l) => (l.tasks.clone(), l.visible()),
                None => (Vec::new(), false),
            };
            before.insert(key.clone(), old);
        }
    }

    /// Applies a batch. With `emit` false (the initial scan) the events are dropped.
    pub(crate) fn apply(&mut self, mut dirty: Dirty, emit: bool) -> Outcome {
        let mut out = Outcome::default();
        let mut before = Before::new();
        if dirty.full {
            dirty.tasks_root = true;
            dirty.todos_root = true;
            dirty.sessions_root = true;
        }

        // Sessions first: they name the project and the slot of the lists below.
        if dirty.sessions_root {
            let dir = self.root.join("sessions");
            let present: BTreeSet<u32> = files::list_dir(&dir, false)
                .iter()
                .filter_map(|n| files::session_pid(n))
                .collect();
            let gone: Vec<u32> = self
                .sessions
                .keys()
                .filter(|p| !present.contains(p))
                .copied()
                .collect();
            for pid in gone {
                self.remove_session(pid);
            }
            for pid in present {
                dirty.files.entry(FileRef::Session { pid }).or_insert(false);
            }
        }
        let session_files: Vec<(u32, bool)> = dirty
            .files
            .iter()
            .filter_map(|(f, force)| match f {
                FileRef::Session { pid } => Some((*pid, *force)),
                _ => None,
            })
            .collect();
        for (pid, force) in session_files {
            self.load_session(pid, force, &mut out);
        }

        if dirty.tasks_root {
            let dir = self.root.join("tasks");
            let present: BTreeSet<String> = files::list_dir(&dir, true).into_iter().collect();
            let gone: Vec<ListKey> = self
                .lists
                .keys()
                .filter(|k| matches!(k, ListKey::Tasks(id) if !present.contains(id)))
                .cloned()
                .collect();
            for key in gone {
                self.snapshot(&key, &mut before);
                self.remove_list(&key);
            }
            dirty.lists.extend(present);
        }
        for list in std::mem::take(&mut dirty.lists) {
            self.reconcile_list(&list, &mut before);
        }

        if dirty.todos_root {
            let dir = self.root.join("todos");
            let present: BTreeSet<String> = files::list_dir(&dir, false)
                .into_iter()
                .filter(|n| !n.starts_with('.'))
                .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
                .collect();
            let gone: Vec<ListKey> = self
                .lists
                .keys()
                .filter(|k| matches!(k, ListKey::Todos(stem) if !present.contains(stem)))
                .cloned()
                .collect();
            for key in gone {
                self.snapshot(&key, &mut before);
                self.remove_list(&key);
            }
            for stem in present {
                dirty.files.entry(FileRef::Todo { stem }).or_insert(false);
            }
        }

        for (file, force) in std::mem::take(&mut dirty.files) {
            match file {
                FileRef::ListFile { list, name } => {
                    let key = ListKey::Tasks(list.clone());
                    if self.lists.contains_key(&key) {
                        self.load_list_file(&list, &name, force, &mut before);
                    } else {
                        self.reconcile_list(&list, &mut before);
                    }
                }
                FileRef::Todo { stem } => self.load_todo(&stem, force, &mut before),
                FileRef::Session { .. } => {}
            }
        }

        let mut changes = BTreeMap::new();
        let mut projects = Projects::new(&self.root);
        for (key, (old_tasks, old_visible)) in before {
            if let Some(list) = self.lists.get_mut(&key) {
                list.rebuild();
            }
            self.find_cwd_hint(&key, &mut projects);
            if emit {
                let evs = self.diff_events(&key, &old_tasks, old_visible);
                if !evs.is_empty() {
                    changes.insert(key, evs);
                }
            }
        }
        let activity = self.refresh_activity();
        if emit {
            out.events = diff::order_events(changes, activity);
        }
        out
    }

    /// Reads a list folder: every `*.json` file, dropping files (and the list) that are gone.
    fn reconcile_list(&mut self, list: &str, before: &mut Before) {
        let key = ListKey::Tasks(list.to_string());
        let dir = self.root.join("tasks").join(list);
        let dir_meta = match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => m,
            _ => {
                if self.lists.contains_key(&key) {
                    self.snapshot(&key, before);
                    self.remove_list(&key);
                }
                return;
            }
        };
        self.snapshot(&key, before);
        let names: BTreeSet<String> = files::list_dir(&dir, false)
            .into_iter()
            .filter(|n| n.ends_with(".json") && !n.starts_with('.') && n.len() > 5)
            .collect();
        let entry = self
            .lists
            .entry(key.clone())
            .or_insert_with(|| TaskList::new(&key));
        if let Ok(m) = dir_meta.modified() {
            entry.touch(m);
        }
        let gone: Vec<String> = entry
            .files
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        if !gone.is_empty() {
            entry.touch(SystemTime::now());
        }
        for name in gone {
            entry.files.remove(&name);
            self.retries.remove(&FileRef::ListFile {
                list: list.to_string(),
                name,
            });
        }
        for name in names {
            self.load_list_file(list, &name, false, before);
        }
    }

    fn load_list_file(&mut self, list: &str, name: &str, force: bool, before: &mut Before) {
        let key = ListKey::Tasks(list.to_string());
        let fref = FileRef::ListFile {
            list: list.to_string(),
            name: name.to_string(),
        };
        let path = fref.path(&self.root);
        let prev = self
            .lists
            .get(&key)
            .and_then(|l| l.files.get(name))
            .map(|f| f.stamp);
        let load = files::load(&self.root, &path, prev.as_ref(), force, |b| {
            files::parse_task(b).map(|t| vec![t])
        });
        if matches!(load, Load::Unchanged) {
            return;
        }
        self.snapshot(&key, before);
        if matches!(load, Load::Missing) {
            self.retries.remove(&fref);
            if let Some(l) = self.lists.get_mut(&key) {
                if l.files.remove(name).is_some() {
                    l.touch(SystemTime::now());
                }
            }
            // A file event can arrive after its folder is gone: then the list goes too.
            if !self.root.join("tasks").join(list).is_dir() {
                self.remove_list(&key);
            }
            return;
        }
        let list_entry = self
            .lists
            .entry(key.clone())
            .or_insert_with(|| TaskList::new(&key));
        apply_load(list_entry, name, load, &fref, &path, &mut self.retries);
    }

    fn load_todo(&mut self, stem: &str, force: bool, before: &mut Before) {
        let key = ListKey::Todos(stem.to_string());
        let fref = FileRef::Todo {
            stem: stem.to_string(),
        };
        let path = fref.path(&self.root);
        let prev = self
            .lists
            .get(&key)
            .and_then(|l| l.files.get(""))
            .map(|f| f.stamp);
        let load = files::load(&self.root, &path, prev.as_ref(), force, files::parse_todos);
        if matches!(load, Load::Unchanged) {
            return;
        }
        self.snapshot(&key, before);
        if matches!(load, Load::Missing) {
            self.retries.remove(&fref);
            self.remove_list(&key);
            return;
        }
        let list_entry = self
            .lists
            .entry(key.clone())
            .or_insert_with(|| TaskList::new(&key));
        apply_load(list_entry, "", load, &fref, &path, &mut self.retries);
    }

    /// Looks up the transcript's cwd for a shown list that no session file describes.
    fn find_cwd_hint(&mut self, key: &ListKey, projects: &mut Projects) {
        let Some(list) = self.lists.get(key) else {
            return;
        };
        if list.cwd_hint.is_some() || !list.visible() {
            return;
        }
        if self.link(&list.session_id).cwd.is_some() {
            return;
        }
        let hint = projects.cwd_of(&list.session_id);
        if let Some(list) = self.lists.get_mut(key) {
            list.cwd_hint = hint;
        }
    }

    fn remove_list(&mut self, key: &ListKey) {
        if let Some(list) = self.lists.remove(key) {
            for name in list.files.keys() {
                let fref = match key {
                    ListKey::Tasks(id) => FileRef::ListFile {
                        list: id.clone(),
                        name: name.clone(),
                    },
                    ListKey::Todos(stem) => FileRef::Todo { stem: stem.clone() },
                };
                self.retries.remove(&fref);
            }
        }
    }

    fn load_session(&mut self, pid: u32, force: bool, out: &mut Outcome) {
        let fref = FileRef::Session { pid };
        let path = fref.path(&self.root);
        let prev = self.sessions.get(&pid).map(|s| s.stamp);
        match files::load(
            &self.root,
            &path,
            prev.as_ref(),
            force,
            files::parse_session,
        ) {
            Load::Unchanged => {}
            Load::Missing => self.remove_session(pid),
            Load::Valid(stamp, file) => {
                self.retries.remove(&fref);
                let old = self.sessions.get(&pid).and_then(|s| s.file.as_ref());
                let old_status = old.and_then(|f| f.status.clone());
                // A new conversation in the same process (`/clear`) is news too: it is the
                // one a restored slot resumes.
                let new_session = old.is_some_and(|f| f.session_id != file.session_id);
                if file.status != old_status || new_session {
                    if let Some(busy) = status_busy(file.status.as_deref()) {
                        out.statuses.push(SessionStatus {
                            pid,
                            session_id: file.session_id.clone(),
                            busy,
                        });
                    }
                }
                self.sessions.insert(
                    pid,
                    SessionEntry {
                        stamp,
                        file: Some(file),
                        invalid: None,
                    },
                );
            }
            Load::Invalid(stamp, err) => {
                let entry = self.sessions.entry(pid).or_insert(SessionEntry {
                    stamp,
                    file: None,
                    invalid: None,
                });
                let new_write = !entry.stamp.same_write(&stamp);
                entry.stamp = stamp;
                note_invalid(
                    &mut entry.invalid,
                    new_write,
                    &fref,
                    &path,
                    &err,
                    &mut self.retries,
                );
            }
        }
    }

    fn remove_session(&mut self, pid: u32) {
        self.sessions.remove(&pid);
        self.retries.remove(&FileRef::Session { pid });
    }

    // ---- diff and events -----------------------------------------------------------------

    fn diff_events(&self, key: &ListKey, old: &[Task], old_visible: bool) -> Vec<TaskEvent> {
        let (list, new_visible) = match self.lists.get(key) {
            Some(l) => (Some(l), l.visible()),
            None => (None, false),
        };
        let empty: Vec<Task> = Vec::new();
        let new = list.map(|l| &l.tasks).unwrap_or(&empty);
        let (session_id, agent_id, source) = match list {
            Some(l) => (l.session_id.clone(), l.agent_id.clone(), l.source),
            None => {
                let l = TaskList::new(key);
                (l.session_id, l.agent_id, l.source)
            }
        };
        let changes = diff::diff(source, old, new);
        if !diff::reportable(&changes, old_visible, new_visible) {
            return Vec::new();
        }
        let mut link = self.link(&session_id);
        if link.cwd.is_none() {
            link.cwd = list.and_then(|l| l.cwd_hint.clone());
        }
        let owner = diff::Owner {
            slot_id: self.slot_of(&link),
            project_name: project_name(&link),
            session_id,
            source,
            agent_id,
        };
        diff::events(owner, changes, new.clone())
    }

    /// Recomputes every shown list's `active`; returns the flips as (key, event).
    fn refresh_activity(&mut self) -> Vec<(ListKey, TaskEvent)> {
        let now = SystemTime::now();
        let alive: HashMap<u32, bool> = self
            .sessions
            .keys()
            .map(|&pid| (pid, procs::pid_alive(pid)))
            .collect();
        let mut flips = Vec::new();
        let keys: Vec<ListKey> = self.lists.keys().cloned().collect();
        for key in keys {
            let Some(list) = self.lists.get(&key) else {
                continue;
            };
            if !list.visible() {
                if let Some(l) = self.lists.get_mut(&key) {
                    l.reported_active = None;
                }
                continue;
            }
            let active = self.compute_active(list, &alive, now);
            let prev = list.reported_active;
            if prev != Some(active) && (active || prev == Some(true)) {
                let act = self.activity(list);
                let ev = if active {
                    TaskEvent::CcSessionActive(act)
                } else {
                    TaskEvent::CcSessionInactive(act)
                };
                flips.push((key.clone(), ev));
            }
            if let Some(l) = self.lists.get_mut(&key) {
                l.reported_active = Some(active);
            }
        }
        flips
    }

    fn compute_active(&self, list: &TaskList, alive: &HashMap<u32, bool>, now: SystemTime) -> bool {
        let mut linked = false;
        for (pid, s) in &self.sessions {
            if s.file
                .as_ref()
                .is_some_and(|f| f.session_id == list.session_id)
            {
                linked = true;
                if alive.get(pid).copied().unwrap_or(false) {
                    return true;
                }
            }
        }
        if linked {
            return false;
        }
        match now.duration_since(list.last_change) {
            Ok(age) => age < self.active_window,
            Err(_) => true, // changed "in the future": clock skew, count as recent
        }
    }

    // ---- views ---------------------------------------------------------------------------

    fn link(&self, session_id: &str) -> Link {
        let mut best: Option<(u32, &SessionFile, bool)> = None;
        for (pid, s) in &self.sessions {
            let Some(f) = s.file.as_ref() else { continue };
            if f.session_id != session_id {
                continue;
            }
            let alive = procs::pid_alive(*pid);
            if best.as_ref().is_none_or(|b| alive && !b.2) {
                best = Some((*pid, f, alive));
            }
        }
        match best {
            Some((pid, f, _)) => Link {
                session_id: session_id.to_string(),
                pid: Some(pid),
                cwd: f.cwd.clone(),
            },
            None => Link {
                session_id: session_id.to_string(),
                pid: None,
                cwd: None,
            },
        }
    }

    /// The slot that runs the session: by its id when a slot knows it (missiond gave it
    /// `--session-id`, or its hooks named it), else through the session file's process.
    fn slot_of(&self, link: &Link) -> Option<String> {
        self.slots.slot_for_session(&link.session_id).or_else(|| {
            link.pid
                .and_then(|pid| procs::slot_for(self.slots.as_ref(), pid))
        })
    }

    /// [`Model::link`], with the transcript's cwd when no session file gives one.
    fn link_list(&self, list: &TaskList) -> Link {
        let mut link = self.link(&list.session_id);
        if link.cwd.is_none() {
            link.cwd = list.cwd_hint.clone();
        }
        link
    }

    fn activity(&self, list: &TaskList) -> SessionActivity {
        let link = self.link_list(list);
        SessionActivity {
            session_id: list.session_id.clone(),
            slot_id: self.slot_of(&link),
            project_name: project_name(&link),
            cwd: link.cwd,
            source: list.source,
            agent_id: list.agent_id.clone(),
        }
    }

    fn session_tasks(&self, list: &TaskList) -> SessionTasks {
        let link = self.link_list(list);
        SessionTasks {
            session_id: list.session_id.clone(),
            slot_id: self.slot_of(&link),
            project_name: project_name(&link),
            cwd: link.cwd,
            active: list.reported_active.unwrap_or(false),
            source: list.source,
            agent_id: list.agent_id.clone(),
            tasks: list.tasks.clone(),
        }
    }

    pub(crate) fn overview(&self) -> TasksOverview {
        let mut ov = TasksOverview::default();
        for list in self.lists.values().filter(|l| l.visible()) {
            let st = self.session_tasks(list);
            ov.total_sessions += 1;
            if st.active {
                ov.active_sessions += 1;
            }
            diff::count(&mut ov.tasks_by_status, &st.tasks);
            ov.sessions.push(st);
        }
        ov
    }

    pub(crate) fn slot_lists(&self, slot_id: &str) -> Vec<SessionTasks> {
        self.lists
            .values()
            .filter(|l| l.visible())
            .map(|l| self.session_tasks(l))
            .filter(|st| st.slot_id.as_deref() == Some(slot_id))
            .collect()
    }

    pub(crate) fn session_status(&self, pid: u32) -> Option<SessionStatus> {
        let f = self.sessions.get(&pid)?.file.as_ref()?;
        Some(SessionStatus {
            pid,
            session_id: f.session_id.clone(),
            busy: status_busy(f.status.as_deref())?,
        })
    }

    // ---- timers --------------------------------------------------------------------------

    /// When the model next needs a [`Model::tick`]: a due retry, an active list that will expire,
    /// or a linked live process to check. `None` when nothing is pending (an idle hub sleeps).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let now_i = Instant::now();
        let now_s = SystemTime::now();
        let mut next: Option<Instant> = self.retries.values().min().copied();
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        let linked: BTreeSet<&str> = self
            .sessions
            .values()
            .filter_map(|s| s.file.as_ref().map(|f| f.session_id.as_str()))
            .collect();
        for list in self.lists.values() {
            if list.reported_active != Some(true) {
                continue;
            }
            if linked.contains(list.session_id.as_str()) {
                consider(now_i.checked_add(PID_CHECK).unwrap_or(now_i));
            } else {
                let Some(expiry) = list.last_change.checked_add(self.active_window) else {
                    continue; // a window too long to end
                };
                let left = expiry.duration_since(now_s).unwrap_or(Duration::ZERO);
                if let Some(at) = now_i.checked_add(left.saturating_add(Duration::from_millis(10)))
                {
                    consider(at);
                }
            }
        }
        next
    }

    /// Due retries as a batch (forced re-reads); the caller applies it.
    pub(crate) fn due_retries(&mut self, now: Instant) -> Dirty {
        let due: Vec<FileRef> = self
            .retries
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(f, _)| f.clone())
            .collect();
        let mut dirty = Dirty::default();
        for f in due {
            self.retries.remove(&f);
            dirty.files.insert(f, true);
        }
        dirty
    }

    /// Forgets every stamp so the next full batch re-reads everything (after a watcher error).
    pub(crate) fn forget_stamps(&mut self) {
        for list in self.lists.values_mut() {
            for f in list.files.values_mut() {
                f.stamp.len = u64::MAX;
            }
        }
        for s in self.sessions.values_mut() {
            s.stamp.len = u64::MAX;
        }
    }
}

/// Records a load into a list's file entry: a valid read replaces the tasks, an invalid one keeps
/// them and schedules a retry (or warns once, when the retries are used up).
fn apply_load(
    list: &mut TaskList,
    name: &str,
    load: Load<Vec<Task>>,
    fref: &FileRef,
    path: &std::path::Path,
    retries: &mut BTreeMap<FileRef, Instant>,
) {
    match load {
        Load::Valid(stamp, tasks) => {
            retries.remove(fref);
            list.touch(stamp.mtime);
            list.files.insert(
                name.to_string(),
                FileEntry {
                    stamp,
                    tasks,
                    invalid: None,
                },
            );
        }
        Load::Invalid(stamp, err) => {
            list.touch(stamp.mtime);
            let entry = list.files.entry(name.to_string()).or_insert(FileEntry {
                stamp,
                tasks: Vec::new(),
                invalid: None,
            });
            let new_write = !entry.stamp.same_write(&stamp);
            entry.stamp = stamp;
            note_invalid(&mut entry.invalid, new_write, fref, path, &err, retries);
        }
        Load::Missing | Load::Unchanged => {}
    }
}

fn note_invalid(
    invalid: &mut Option<Invalid>,
    new_write: bool,
    fref: &FileRef,
    path: &std::path::Path,
    err: &str,
    retries: &mut BTreeMap<FileRef, Instant>,
) {
    let inv = invalid.get_or_insert_with(Invalid::default);
    if new_write && inv.attempts >= RETRY_DELAYS.len() {
        // A new write that is still invalid: give it its retries again (warned stays set).
        inv.attempts = 0;
    }
    if let Some(delay) = RETRY_DELAYS.get(inv.attempts) {
        inv.attempts += 1;
        let now = Instant::now();
        retries.insert(fref.clone(), now.checked_add(*delay).unwrap_or(now));
    } else {
        retries.remove(fref);
        if !inv.warned {
            inv.warned = true;
            tracing::warn!(
                path = %path.display(),
                error = %err,
                "task file stays invalid after retries; keeping its last good content"
            );
        }
    }
}

fn status_busy(status: Option<&str>) -> Option<bool> {
    match status {
        Some("busy") => Some(true),
        Some("idle") => Some(false),
        _ => None,
    }
}

fn project_name(link: &Link) -> String {
    link.cwd
        .as_deref()
        .and_then(|c| std::path::Path::new(c).file_name())
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .unwrap_or_else(|| UNKNOWN_PROJECT.to_string())
}
