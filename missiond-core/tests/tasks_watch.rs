//! The task hub against real files in a temporary claude dir: every test asserts the exact
//! sequence of events a `/tasks` client would see.
//!
//! "No other event in between" is proven with a marker list: after the change under test, the
//! test rewrites the marker's task and expects the marker's change to be the very next event.

use missiond_core::protocol::tasks::{ListSource, TaskEvent};
use missiond_core::tasks::{NoSlots, SlotResolver, TaskHub, TaskHubOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

// ---- helpers -------------------------------------------------------------------------------

fn task_json(id: &str, subject: &str, status: &str) -> String {
    format!(
        r#"{{"id":"{id}","subject":"{subject}","description":"about {subject}","activeForm":"Doing {subject}","status":"{status}","blocks":[],"blockedBy":[]}}"#
    )
}

fn write_task(root: &Path, list: &str, id: &str, subject: &str, status: &str) {
    let dir = root.join("tasks").join(list);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{id}.json")),
        task_json(id, subject, status),
    )
    .unwrap();
}

/// A claude dir with a marker list, and a hub started on it.
struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    hub: TaskHub,
    rx: Receiver<TaskEvent>,
    marker: usize,
}

impl Env {
    fn start() -> Env {
        Env::start_with(Arc::new(NoSlots), TaskHubOptions::default())
    }

    fn start_with(slots: Arc<dyn SlotResolver>, options: TaskHubOptions) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join(".claude");
        write_task(&root, "marker", "1", "marker 0", "pending");
        let hub = TaskHub::start_with(root.clone(), slots, options).unwrap();
        let rx = hub.subscribe();
        Env {
            _tmp: tmp,
            root,
            hub,
            rx,
            marker: 0,
        }
    }

    async fn next(&mut self) -> TaskEvent {
        next(&mut self.rx).await
    }

    /// The next `n` events, each summarised by [`brief`].
    async fn briefs(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(brief(&self.next().await));
        }
        out
    }

    /// Asserts that no event is pending before the marker's change.
    async fn assert_quiet(&mut self) {
        self.marker += 1;
        let subject = format!("marker {}", self.marker);
        write_task(&self.root, "marker", "1", &subject, "pending");
        let ev = self.next().await;
        match &ev {
            TaskEvent::CcTasksChanged(c) if c.session_id == "marker" => {
                assert_eq!(c.tasks[0].subject, subject, "stale marker event");
            }
            other => panic!("expected only the marker's change, got {}", brief(other)),
        }
    }
}

async fn next(rx: &mut Receiver<TaskEvent>) -> TaskEvent {
    match timeout(WAIT, rx.recv()).await {
        Ok(Ok(ev)) => ev,
        Ok(Err(e)) => panic!("event stream broke: {e}"),
        Err(_) => panic!("no event within {WAIT:?}"),
    }
}

fn ids(tasks: &[missiond_core::protocol::tasks::Task]) -> String {
    tasks
        .iter()
        .map(|t| format!("{}:{}", t.id, t.status.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// One line per event: type, list, and the parts of the payload the tests care about.
fn brief(ev: &TaskEvent) -> String {
    match ev {
        TaskEvent::CcTasksOverview(o) => format!("overview {}", o.total_sessions),
        TaskEvent::CcTasksChanged(c) => {
            let changed: Vec<String> = c
                .status_changed
                .iter()
                .map(|s| {
                    format!(
                        "{}:{}->{}",
                        s.task.id,
                        s.previous_status.as_str(),
                        s.task.status.as_str()
                    )
                })
                .collect();
            format!(
                "changed {} +[{}] -[{}] ~[{}] u[{}] = [{}]",
                c.session_id,
                ids(&c.added),
                ids(&c.removed),
                changed.join(","),
                ids(&c.updated),
                ids(&c.tasks)
            )
        }
        TaskEvent::CcTaskStarted(t) => format!("started {} {}", t.session_id, t.task.id),
        TaskEvent::CcTaskCompleted(t) => format!("completed {} {}", t.session_id, t.task.id),
        TaskEvent::CcSessionActive(s) => format!("active {}", s.session_id),
        TaskEvent::CcSessionInactive(s) => format!("inactive {}", s.session_id),
    }
}

/// Polls `cond` until it holds (for facts that have no event, such as a log line).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Builds a folder tree in `staging` and moves it to `dest` in one rename, so the watcher sees
/// it appear whole (as `mv` or an atomic writer would make it).
fn move_into_place(staging: &Path, dest: &Path) {
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::rename(staging, dest).unwrap();
}

// ---- a tiny tracing subscriber that keeps warnings, to check "reported once" ---------------

struct Capture(Mutex<Vec<String>>);

struct Fields(String);
impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl tracing::Subscriber for &'static Capture {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut f = Fields(String::new());
        e.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn warnings_mentioning(needle: &str) -> usize {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    let cap = CAPTURE.get_or_init(|| {
        let cap: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        let _ = tracing::subscriber::set_global_default(cap);
        cap
    });
    cap.0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

// ---- tests ---------------------------------------------------------------------------------

#[tokio::test]
async fn initial_scan_is_in_the_overview() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("claude");
    write_task(&root, "s1", "1", "Design the API", "completed");
    write_task(&root, "s1", "2", "Write the parser", "in_progress");
    write_task(&root, "s1", "10", "Ship", "pending");
    std::fs::write(root.join("tasks/s1/.lock"), "").unwrap();
    std::fs::write(root.join("tasks/s1/.highwatermark"), "10").unwrap();
    let hub = TaskHub::start(root.clone(), Arc::new(NoSlots)).unwrap();
    let ov = hub.overview();
    assert_eq!(ov.total_sessions, 1);
    assert_eq!(
        ov.active_sessions, 1,
        "files written just now count as active"
    );
    assert_eq!(
        (
            ov.tasks_by_status.pending,
            ov.tasks_by_status.in_progress,
            ov.tasks_by_status.completed
        ),
        (1, 1, 1)
    );
    let s = &ov.sessions[0];
    assert_eq!(s.session_id, "s1");
    assert_eq!(s.project_name, "unknown");
    assert_eq!(s.slot_id, None);
    assert_eq!(s.source, ListSource::Tasks);
    assert_eq!(
        ids(&s.tasks),
        "1:completed,2:in_progress,10:pending",
        "numeric id order"
    );
    assert_eq!(s.tasks[0].subject, "Design the API");
    assert_eq!(
        s.tasks[0].active_form.as_deref(),
        Some("Doing Design the API")
    );

    let json = serde_json::to_value(TaskEvent::CcTasksOverview(ov)).unwrap();
    assert_eq!(json["type"], "cc_tasks_overview");
    assert_eq!(json["payload"]["totalSessions"], 1);
    assert_eq!(json["payload"]["tasksByStatus"]["inProgress"], 1);
    assert_eq!(json["payload"]["sessions"][0]["sessionId"], "s1");
    assert_eq!(
        json["payload"]["sessions"][0]["tasks"][1]["status"],
        "in_progress"
    );
}

#[tokio::test]
async fn whole_file_writes_give_exact_events() {
    let mut env = Env::start();
    let root = env.root.clone();

    write_task(&root, "s1", "1", "A", "pending");
    assert_eq!(
        env.briefs(2).await,
        [
            "active s1",
            "changed s1 +[1:pending] -[] ~[] u[] = [1:pending]"
        ]
    );

    write_task(&root, "s1", "2", "B", "in_progress");
    assert_eq!(
        env.briefs(2).await,
        [
            "changed s1 +[2:in_progress] -[] ~[] u[] = [1:pending,2:in_progress]",
            "started s1 2"
        ]
    );

    write_task(&root, "s1", "1", "A", "in_progress");
    assert_eq!(
        env.briefs(2).await,
        [
            "changed s1 +[] -[] ~[1:pending->in_progress] u[] = [1:in_progress,2:in_progress]",
            "started s1 1"
        ]
    );

    write_task(&root, "s1", "1", "A", "completed");
    let ev = env.next().await;
    assert_eq!(
        brief(&ev),
        "changed s1 +[] -[] ~[1:in_progress->completed] u[] = [1:completed,2:in_progress]"
    );
    let json = serde_json::to_value(&ev).unwrap();
    assert_eq!(json["type"], "cc_tasks_changed");
    assert_eq!(
        json["payload"]["statusChanged"][0]["previousStatus"],
        "in_progress"
    );
    assert_eq!(
        json["payload"]["statusChanged"][0]["task"]["status"],
        "completed"
    );
    assert_eq!(json["payload"]["projectName"], "unknown");
    assert!(json["payload"].get("slotId").is_none());
    let ev = env.next().await;
    assert_eq!(brief(&ev), "completed s1 1");
    assert_eq!(
        serde_json::to_value(&ev).unwrap()["payload"]["task"]["subject"],
        "A"
    );

    // A change of subject only is an update, not a status change.
    write_task(&root, "s1", "2", "B renamed", "in_progress");
    assert_eq!(
        env.briefs(1).await,
        ["changed s1 +[] -[] ~[] u[2:in_progress] = [1:completed,2:in_progress]"]
    );

    // The same bytes again: no event.
    write_task(&root, "s1", "2", "B renamed", "in_progress");
    env.assert_quiet().await;

    let ov = env.hub.overview();
    let s1 = ov.sessions.iter().find(|s| s.session_id == "s1").unwrap();
    assert_eq!(ids(&s1.tasks), "1:completed,2:in_progress");
    assert_eq!(s1.tasks[1].subject, "B renamed");
}

#[tokio::test]
async fn invalid_write_is_retried_reported_once_and_never_a_removal() {
    warnings_mentioning("install the capturing subscriber first");
    let mut env = Env::start();
    let root = env.root.clone();
    write_task(&root, "s1", "1", "A", "pending");
    assert_eq!(env.briefs(2).await.len(), 2);

    // A half-written file: the task stays as it was.
    let path = root.join("tasks/s1/1.json");
    std::fs::write(&path, r#"{"id":"1","subject":"A","sta"#).unwrap();
    let needle = path.display().to_string();
    eventually("the warning about the invalid file", || {
        warnings_mentioning(&needle) == 1
    })
    .await;
    let ov = env.hub.overview();
    let s1 = ov.sessions.iter().find(|s| s.session_id == "s1").unwrap();
    assert_eq!(
        ids(&s1.tasks),
        "1:pending",
        "an invalid file keeps its last good task"
    );
    env.assert_quiet().await;

    // A second bad write in the same episode is not reported again.
    std::fs::write(&path, "{").unwrap();
    env.assert_quiet().await;

    // Fixed: the first event for s1 is the status change (no removal happened in between).
    write_task(&root, "s1", "1", "A", "in_progress");
    assert_eq!(
        env.briefs(2).await,
        [
            "changed s1 +[] -[] ~[1:pending->in_progress] u[] = [1:in_progress]",
            "started s1 1"
        ]
    );
    // The valid read cancelled any retry left from the second bad write.
    assert_eq!(warnings_mentioning(&needle), 1, "reported exactly once");

    // A brand-new file that is invalid adds nothing until it is fixed.
    let path2 = root.join("tasks/s1/2.json");
    std::fs::write(&path2, "").unwrap();
    env.assert_quiet().await;
    write_task(&root, "s1", "2", "B", "pending");
    assert_eq!(
        env.briefs(1).await,
        ["changed s1 +[2:pending] -[] ~[] u[] = [1:in_progress,2:pending]"]
    );
}

#[tokio::test]
async fn deleting_a_task_file_removes_the_task() {
    let mut env = Env::start();
    let root = env.root.clone();
    write_task(&root, "s1", "1", "A", "pending");
    assert_eq!(env.briefs(2).await.len(), 2);
    write_task(&root, "s1", "2", "B", "pending");
    assert_eq!(env.briefs(1).await.len(), 1);

    std::fs::remove_file(root.join("tasks/s1/2.json")).unwrap();
    assert_eq!(
        env.briefs(1).await,
        ["changed s1 +[] -[2:pending] ~[] u[] = [1:pending]"]
    );
    env.assert_quiet().await;
}

#[tokio::test]
async fn deleting_a_list_folder_is_one_change() {
    // A longer batching window keeps an `rm -rf` in one batch even on a loaded machine.
    let options = TaskHubOptions {
        debounce: Duration::from_millis(150),
        ..TaskHubOptions::default()
    };
    let mut env = Env::start_with(Arc::new(NoSlots), options);
    let root = env.root.clone();
    let staging = env.root.parent().unwrap().join("staging");
    for (id, st) in [("1", "completed"), ("2", "in_progress"), ("3", "pending")] {
        write_task(&staging, "s1", id, &format!("T{id}"), st);
    }
    std::fs::write(staging.join("tasks/s1/.lock"), "").unwrap();
    move_into_place(&staging.join("tasks/s1"), &root.join("tasks/s1"));
    assert_eq!(
        env.briefs(4).await,
        [
            "active s1",
            "changed s1 +[1:completed,2:in_progress,3:pending] -[] ~[] u[] = [1:completed,2:in_progress,3:pending]",
            "completed s1 1",
            "started s1 2",
        ]
    );

    std::fs::remove_dir_all(root.join("tasks/s1")).unwrap();
    let ev = env.next().await;
    assert_eq!(
        brief(&ev),
        "changed s1 +[] -[1:completed,2:in_progress,3:pending] ~[] u[] = []"
    );
    env.assert_quiet().await;
    assert!(env
        .hub
        .overview()
        .sessions
        .iter()
        .all(|s| s.session_id != "s1"));
}

#[tokio::test]
async fn lock_and_highwatermark_files_are_ignored() {
    let mut env = Env::start();
    let dir = env.root.join("tasks/marker");
    std::fs::write(dir.join(".lock"), "x").unwrap();
    std::fs::write(dir.join(".highwatermark"), "7").unwrap();
    std::fs::write(dir.join("1.json.tmp.123"), "{").unwrap();
    env.assert_quiet().await;
}

#[tokio::test]
async fn claude_dir_created_after_start() {
    let tmp = tempfile::tempdir().unwrap();
    // Two missing levels: the watcher starts on the temp dir itself.
    let root = tmp.path().join("home/user/.claude");
    let hub = TaskHub::start(root.clone(), Arc::new(NoSlots)).unwrap();
    let mut rx = hub.subscribe();
    assert_eq!(hub.overview().total_sessions, 0);

    std::fs::create_dir_all(tmp.path().join("home/user")).unwrap();
    let staging = tmp.path().join("staging");
    write_task(&staging, "s1", "1", "A", "in_progress");
    move_into_place(&staging, &root);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(brief(&next(&mut rx).await));
    }
    assert_eq!(
        got,
        [
            "active s1",
            "changed s1 +[1:in_progress] -[] ~[] u[] = [1:in_progress]",
            "started s1 1"
        ]
    );

    // Now the claude dir itself is watched: a new list folder and a new file are seen.
    write_task(&root, "s1", "2", "B", "pending");
    assert_eq!(
        brief(&next(&mut rx).await),
        "changed s1 +[2:pending] -[] ~[] u[] = [1:in_progress,2:pending]"
    );
    let staging2 = tmp.path().join("staging2");
    write_task(&staging2, "s2", "1", "C", "pending");
    move_into_place(&staging2.join("tasks/s2"), &root.join("tasks/s2"));
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(brief(&next(&mut rx).await));
    }
    assert_eq!(
        got,
        [
            "active s2",
            "changed s2 +[1:pending] -[] ~[] u[] = [1:pending]"
        ]
    );
    // A folder moved in is followed too.
    write_task(&root, "s2", "1", "C", "completed");
    assert_eq!(
        brief(&next(&mut rx).await),
        "changed s2 +[] -[] ~[1:pending->completed] u[] = [1:completed]"
    );
    assert_eq!(brief(&next(&mut rx).await), "completed s2 1");
    assert_eq!(hub.overview().total_sessions, 2);
}

#[tokio::test]
async fn tasks_folder_created_after_start() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(".claude");
    std::fs::create_dir_all(&root).unwrap();
    let hub = TaskHub::start(root.clone(), Arc::new(NoSlots)).unwrap();
    let mut rx = hub.subscribe();
    let staging = tmp.path().join("staging");
    write_task(&staging, "s9", "1", "A", "pending");
    move_into_place(&staging.join("tasks"), &root.join("tasks"));
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(brief(&next(&mut rx).await));
    }
    assert_eq!(
        got,
        [
            "active s9",
            "changed s9 +[1:pending] -[] ~[] u[] = [1:pending]"
        ]
    );
    // And files inside it are followed from then on.
    write_task(&root, "s9", "1", "A", "in_progress");
    assert_eq!(
        brief(&next(&mut rx).await),
        "changed s9 +[] -[] ~[1:pending->in_progress] u[] = [1:in_progress]"
    );
    assert_eq!(brief(&next(&mut rx).await), "started s9 1");
}

#[tokio::test]
async fn legacy_todos() {
    let mut env = Env::start();
    let todos = env.root.join("todos");
    std::fs::create_dir_all(&todos).unwrap();
    // An empty todo file (Claude Code leaves one per session) shows nothing.
    std::fs::write(todos.join("e1-agent-e1.json"), "[]").unwrap();
    env.assert_quiet().await;

    let file = todos.join("s1-agent-s1.json");
    std::fs::write(
        &file,
        r#"[{"content":"Read the code","status":"in_progress","activeForm":"Reading the code"},{"content":"Fix it","status":"pending","activeForm":"Fixing it"}]"#,
    )
    .unwrap();
    let evs: Vec<TaskEvent> = vec![env.next().await, env.next().await, env.next().await];
    let got: Vec<String> = evs.iter().map(brief).collect();
    assert_eq!(
        got,
        [
            "active s1",
            "changed s1 +[1:in_progress,2:pending] -[] ~[] u[] = [1:in_progress,2:pending]",
            "started s1 1"
        ]
    );
    let TaskEvent::CcTasksChanged(c) = &evs[1] else {
        panic!()
    };
    assert_eq!(c.source, ListSource::Todos);
    assert_eq!(c.tasks[0].subject, "Read the code");
    assert_eq!(c.tasks[0].active_form.as_deref(), Some("Reading the code"));

    std::fs::write(
        &file,
        r#"[{"content":"Read the code","status":"completed","activeForm":"Reading the code"},{"content":"Fix it","status":"in_progress","activeForm":"Fixing it"}]"#,
    )
    .unwrap();
    assert_eq!(
        env.briefs(3).await,
        [
            "changed s1 +[] -[] ~[1:in_progress->completed,2:pending->in_progress] u[] = [1:completed,2:in_progress]",
            "completed s1 1",
            "started s1 2",
        ]
    );

    // Keyed by position and content: new text at a position is a removal and an addition.
    std::fs::write(&file, r#"[{"content":"Read more code","status":"completed"},{"content":"Fix it","status":"in_progress"}]"#).unwrap();
    let ev = env.next().await;
    assert_eq!(brief(&ev), "changed s1 +[1:completed] -[1:completed] ~[] u[2:in_progress] = [1:completed,2:in_progress]");
    assert_eq!(brief(&env.next().await), "completed s1 1");

    // A sub-agent's todos are their own list, tagged with the agent.
    std::fs::write(
        todos.join("s1-agent-a7.json"),
        r#"[{"content":"Sub","status":"pending"}]"#,
    )
    .unwrap();
    let active = env.next().await;
    let TaskEvent::CcSessionActive(a) = &active else {
        panic!("{}", brief(&active))
    };
    assert_eq!(
        (a.session_id.as_str(), a.agent_id.as_deref()),
        ("s1", Some("a7"))
    );
    assert_eq!(
        brief(&env.next().await),
        "changed s1 +[1:pending] -[] ~[] u[] = [1:pending]"
    );

    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        env.briefs(1).await,
        ["changed s1 +[] -[1:completed,2:in_progress] ~[] u[] = []"]
    );
    env.assert_quiet().await;
}

/// Maps one pid to one slot, like the supervisor does for its children.
struct OneSlot(u32, &'static str);
impl SlotResolver for OneSlot {
    fn slot_for_pid(&self, pid: u32) -> Option<String> {
        (pid == self.0).then(|| self.1.to_string())
    }
}

#[tokio::test]
async fn a_new_conversation_in_the_same_process_is_reported() {
    let me = std::process::id();
    let env = Env::start_with(Arc::new(OneSlot(me, "slot-a")), TaskHubOptions::default());
    let mut status = env.hub.subscribe_session_status();
    let sessions = env.root.join("sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let session_file = sessions.join(format!("{me}.json"));
    let write_session = |id: &str| {
        let body = format!(r#"{{"pid":{me},"sessionId":"{id}","status":"idle"}}"#);
        std::fs::write(&session_file, body).unwrap();
    };
    write_session("sess-1");
    let st = timeout(WAIT, status.recv()).await.unwrap().unwrap();
    assert_eq!(st.session_id, "sess-1");
    // `/clear`: same process, same status, another conversation.
    write_session("sess-2");
    let st = timeout(WAIT, status.recv()).await.unwrap().unwrap();
    assert_eq!(
        (st.pid, st.session_id.as_str(), st.busy),
        (me, "sess-2", false)
    );
}

#[tokio::test]
async fn session_file_links_the_list_to_its_slot() {
    let me = std::process::id();
    let mut env = Env::start_with(Arc::new(OneSlot(me, "slot-a")), TaskHubOptions::default());
    let root = env.root.clone();
    let mut status = env.hub.subscribe_session_status();
    let sessions = root.join("sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let session_file = sessions.join(format!("{me}.json"));
    let write_session = |st: &str| {
        let body = format!(
            r#"{{"pid":{me},"sessionId":"sess-1","cwd":"/work/projects/parser","startedAt":1,"name":"n","status":"{st}"}}"#
        );
        std::fs::write(&session_file, body).unwrap();
    };
    write_session("busy");
    let st = timeout(WAIT, status.recv()).await.unwrap().unwrap();
    assert_eq!(
        (st.pid, st.session_id.as_str(), st.busy),
        (me, "sess-1", true)
    );
    assert_eq!(env.hub.session_status(me).map(|s| s.busy), Some(true));

    write_task(&root, "sess-1", "1", "Design", "in_progress");
    let evs = vec![env.next().await, env.next().await, env.next().await];
    assert_eq!(
        evs.iter().map(brief).collect::<Vec<_>>(),
        [
            "active sess-1",
            "changed sess-1 +[1:in_progress] -[] ~[] u[] = [1:in_progress]",
            "started sess-1 1"
        ]
    );
    for ev in &evs {
        assert_eq!(ev.slot_id(), Some("slot-a"), "{}", brief(ev));
        let json = serde_json::to_value(ev).unwrap();
        assert_eq!(json["payload"]["slotId"], "slot-a");
        assert_eq!(json["payload"]["projectName"], "parser");
    }
    let TaskEvent::CcSessionActive(a) = &evs[0] else {
        panic!()
    };
    assert_eq!(a.cwd.as_deref(), Some("/work/projects/parser"));

    let lists = env.hub.slot_lists("slot-a");
    assert_eq!(lists.len(), 1);
    assert_eq!(
        (lists[0].session_id.as_str(), lists[0].active),
        ("sess-1", true)
    );
    assert!(env.hub.slot_lists("other").is_empty());

    write_session("idle");
    let st = timeout(WAIT, status.recv()).await.unwrap().unwrap();
    assert_eq!((st.pid, st.busy), (me, false));
    env.assert_quiet().await;
}

#[tokio::test]
async fn a_dead_session_process_makes_its_list_inactive() {
    let mut env = Env::start();
    let root = env.root.clone();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let sessions = root.join("sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    std::fs::write(
        sessions.join(format!("{dead}.json")),
        r#"{"sessionId":"gone","cwd":"/tmp/old","status":"idle"}"#,
    )
    .unwrap();
    env.assert_quiet().await;
    // Fresh files, but the owning process is dead: the list shows up inactive.
    write_task(&root, "gone", "1", "A", "pending");
    assert_eq!(
        env.briefs(1).await,
        ["changed gone +[1:pending] -[] ~[] u[] = [1:pending]"]
    );
    let ov = env.hub.overview();
    let gone = ov.sessions.iter().find(|s| s.session_id == "gone").unwrap();
    assert!(!gone.active);
    assert_eq!(gone.project_name, "old");
}

#[tokio::test]
async fn lists_without_session_expire_after_the_window() {
    let options = TaskHubOptions {
        active_window: Duration::from_millis(1500),
        ..TaskHubOptions::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(".claude");
    let hub = TaskHub::start_with(root.clone(), Arc::new(NoSlots), options).unwrap();
    let mut rx = hub.subscribe();
    write_task(&root, "s1", "1", "A", "pending");
    assert_eq!(brief(&next(&mut rx).await), "active s1");
    assert_eq!(
        brief(&next(&mut rx).await),
        "changed s1 +[1:pending] -[] ~[] u[] = [1:pending]"
    );
    let ev = next(&mut rx).await;
    assert_eq!(brief(&ev), "inactive s1");
    assert_eq!(
        serde_json::to_value(&ev).unwrap()["type"],
        "cc_session_inactive"
    );
    assert_eq!(hub.overview().active_sessions, 0);
    // A new write makes it active again.
    write_task(&root, "s1", "1", "A", "completed");
    assert_eq!(brief(&next(&mut rx).await), "active s1");
    assert_eq!(
        brief(&next(&mut rx).await),
        "changed s1 +[] -[] ~[1:pending->completed] u[] = [1:completed]"
    );
    assert_eq!(brief(&next(&mut rx).await), "completed s1 1");
}

#[tokio::test]
async fn subscribe_with_overview_has_no_gap() {
    let mut env = Env::start();
    let (ov, mut rx) = env.hub.subscribe_with_overview();
    assert_eq!(ov.total_sessions, 1);
    write_task(&env.root, "s1", "1", "A", "pending");
    assert_eq!(brief(&next(&mut rx).await), "active s1");
    assert_eq!(env.briefs(2).await.len(), 2);
}

#[tokio::test]
async fn project_name_from_the_transcript_when_no_session_file() {
    let mut env = Env::start();
    let project = env.root.join("projects/-home-u-my-app");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("old-1.jsonl"),
        "{\"type\":\"summary\",\"summary\":\"x\"}\n{\"type\":\"user\",\"cwd\":\"/home/u/my.app\",\"sessionId\":\"old-1\"}\n",
    )
    .unwrap();
    write_task(&env.root, "old-1", "1", "A", "pending");
    let evs = vec![env.next().await, env.next().await];
    assert_eq!(
        evs.iter().map(brief).collect::<Vec<_>>(),
        [
            "active old-1",
            "changed old-1 +[1:pending] -[] ~[] u[] = [1:pending]"
        ]
    );
    for ev in &evs {
        assert_eq!(
            serde_json::to_value(ev).unwrap()["payload"]["projectName"],
            "my.app",
            "{}",
            brief(ev)
        );
    }
    let ov = env.hub.overview();
    let s = ov
        .sessions
        .iter()
        .find(|s| s.session_id == "old-1")
        .unwrap();
    assert_eq!(s.cwd.as_deref(), Some("/home/u/my.app"));
}

#[test]
fn docs_examples_match_the_wire_types() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/TASKS.md"))
            .unwrap();
    let mut checked = 0;
    for block in doc.split("```json").skip(1) {
        let json = block.split("```").next().unwrap();
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let event: TaskEvent =
            serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            value,
            "round trip of {}",
            event.kind()
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}
