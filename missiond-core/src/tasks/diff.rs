//! The pure half of the task model: comparing a list before and after a batch, and putting the
//! resulting events in their fixed order. No files, no clock, no /proc: everything here is a
//! function of its arguments, so it is tested on its own (the model does the reading and probing).

use super::model::ListKey;
use crate::protocol::tasks::{
    ListSource, StatusChange, Task, TaskEvent, TaskStatus, TaskTransition, TasksByStatus,
    TasksChanged,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How a task is recognised across two reads of its list. A task-list folder names each task by
/// its file's id; a legacy todos array may reuse an id for another todo, so the subject is part of
/// its identity there.
fn identity(source: ListSource, t: &Task) -> String {
    match source {
        ListSource::Tasks => t.id.clone(),
        ListSource::Todos => format!("{}\u{0}{}", t.id, t.subject),
    }
}

/// What changed in one list between two reads.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct TaskDiff {
    pub added: Vec<Task>,
    pub removed: Vec<Task>,
    pub status_changed: Vec<StatusChange>,
    /// Tasks whose content other than the status changed.
    pub updated: Vec<Task>,
    /// New or re-statused tasks that are no longer pending, in list order: each becomes a
    /// `cc_task_started` or `cc_task_completed`.
    pub transitions: Vec<Task>,
}

impl TaskDiff {
    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.status_changed.is_empty()
            && self.updated.is_empty()
    }
}

/// Compares `old` with `new` (both in list order).
pub(crate) fn diff(source: ListSource, old: &[Task], new: &[Task]) -> TaskDiff {
    let old_by: HashMap<String, &Task> = old.iter().map(|t| (identity(source, t), t)).collect();
    let new_keys: BTreeSet<String> = new.iter().map(|t| identity(source, t)).collect();
    let mut d = TaskDiff::default();
    for t in new {
        match old_by.get(&identity(source, t)) {
            None => {
                d.added.push(t.clone());
                if t.status != TaskStatus::Pending {
                    d.transitions.push(t.clone());
                }
            }
            Some(prev) => {
                if prev.status != t.status {
                    d.status_changed.push(StatusChange {
                        task: t.clone(),
                        previous_status: prev.status,
                    });
                    if t.status != TaskStatus::Pending {
                        d.transitions.push(t.clone());
                    }
                }
                let mut same = (*prev).clone();
                same.status = t.status;
                if &same != t {
                    d.updated.push(t.clone());
                }
            }
        }
    }
    d.removed = old
        .iter()
        .filter(|t| !new_keys.contains(&identity(source, t)))
        .cloned()
        .collect();
    d
}

/// Whether a diff is worth telling clients: something changed or the list appeared or vanished,
/// and the list is shown on at least one side.
pub(crate) fn reportable(d: &TaskDiff, old_visible: bool, new_visible: bool) -> bool {
    (!d.is_empty() || old_visible != new_visible) && (old_visible || new_visible)
}

/// Whom a list's events are about.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub session_id: String,
    pub slot_id: Option<String>,
    pub project_name: String,
    pub source: ListSource,
    pub agent_id: Option<String>,
}

/// A reportable diff as events: `cc_tasks_changed` (with the whole new list), then one
/// `cc_task_started`/`cc_task_completed` per transition, in task order.
pub(crate) fn events(owner: Owner, d: TaskDiff, tasks: Vec<Task>) -> Vec<TaskEvent> {
    let Owner {
        session_id,
        slot_id,
        project_name,
        source,
        agent_id,
    } = owner;
    let mut out = vec![TaskEvent::CcTasksChanged(TasksChanged {
        session_id: session_id.clone(),
        slot_id: slot_id.clone(),
        project_name: project_name.clone(),
        source,
        agent_id,
        added: d.added,
        removed: d.removed,
        status_changed: d.status_changed,
        updated: d.updated,
        tasks,
    })];
    for task in d.transitions {
        let tr = TaskTransition {
            session_id: session_id.clone(),
            slot_id: slot_id.clone(),
            project_name: project_name.clone(),
            task,
        };
        match tr.task.status {
            TaskStatus::InProgress => out.push(TaskEvent::CcTaskStarted(tr)),
            TaskStatus::Completed => out.push(TaskEvent::CcTaskCompleted(tr)),
            TaskStatus::Pending => {}
        }
    }
    out
}

/// Per list: active, changes, inactive; lists in key order.
pub(crate) fn order_events(
    mut changes: BTreeMap<ListKey, Vec<TaskEvent>>,
    activity: Vec<(ListKey, TaskEvent)>,
) -> Vec<TaskEvent> {
    let mut act: BTreeMap<ListKey, TaskEvent> = activity.into_iter().collect();
    let keys: BTreeSet<ListKey> = changes.keys().chain(act.keys()).cloned().collect();
    let mut out = Vec::new();
    for key in keys {
        let a = act.remove(&key);
        if let Some(ev @ TaskEvent::CcSessionActive(_)) = &a {
            out.push(ev.clone());
        }
        if let Some(evs) = changes.remove(&key) {
            out.extend(evs);
        }
        if let Some(ev @ TaskEvent::CcSessionInactive(_)) = a {
            out.push(ev);
        }
    }
    out
}

/// One list's tasks from its files (in file-name order): a todos list concatenates its agents'
/// arrays; a task-list folder keeps the first file's copy of each id, sorted by id.
pub(crate) fn merge<'a>(source: ListSource, files: impl Iterator<Item = &'a [Task]>) -> Vec<Task> {
    let mut tasks: Vec<Task> = Vec::new();
    match source {
        ListSource::Todos => {
            for f in files {
                tasks.extend(f.iter().cloned());
            }
        }
        ListSource::Tasks => {
            let mut seen = BTreeSet::new();
            for f in files {
                for t in f {
                    if seen.insert(t.id.clone()) {
                        tasks.push(t.clone());
                    }
                }
            }
            tasks.sort_by(|a, b| id_order(&a.id, &b.id));
        }
    }
    tasks
}

/// Numeric ids in numeric order, then the rest in string order.
pub(crate) fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Adds `tasks` to the per-status counts.
pub(crate) fn count(by: &mut TasksByStatus, tasks: &[Task]) {
    for t in tasks {
        match t.status {
            TaskStatus::Pending => by.pending += 1,
            TaskStatus::InProgress => by.in_progress += 1,
            TaskStatus::Completed => by.completed += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tasks::SessionActivity;

    fn task(id: &str, subject: &str, status: TaskStatus) -> Task {
        Task {
            id: id.to_string(),
            subject: subject.to_string(),
            description: String::new(),
            active_form: None,
            status,
            blocks: Vec::new(),
            blocked_by: Vec::new(),
            owner: None,
        }
    }

    fn owner() -> Owner {
        Owner {
            session_id: "s1".into(),
            slot_id: Some("slot".into()),
            project_name: "proj".into(),
            source: ListSource::Tasks,
            agent_id: None,
        }
    }

    fn kinds(evs: &[TaskEvent]) -> Vec<&'static str> {
        evs.iter()
            .map(|e| match e {
                TaskEvent::CcSessionActive(_) => "active",
                TaskEvent::CcSessionInactive(_) => "inactive",
                TaskEvent::CcTasksChanged(_) => "changed",
                TaskEvent::CcTaskStarted(_) => "started",
                TaskEvent::CcTaskCompleted(_) => "completed",
                TaskEvent::CcTasksOverview(_) => "overview",
            })
            .collect()
    }

    #[test]
    fn identical_lists_make_an_empty_diff() {
        let l = vec![task("1", "a", TaskStatus::Pending)];
        let d = diff(ListSource::Tasks, &l, &l);
        assert!(d.is_empty());
        assert!(d.transitions.is_empty());
        assert!(!reportable(&d, true, true));
    }

    #[test]
    fn added_removed_status_and_content_changes_are_told_apart() {
        let old = vec![
            task("1", "a", TaskStatus::Pending),
            task("2", "b", TaskStatus::Pending),
            task("3", "c", TaskStatus::Pending),
        ];
        let new = vec![
            task("1", "a", TaskStatus::InProgress),
            task("2", "b renamed", TaskStatus::Pending),
            task("4", "d", TaskStatus::Completed),
        ];
        let d = diff(ListSource::Tasks, &old, &new);
        assert_eq!(d.added, vec![new[2].clone()]);
        assert_eq!(d.removed, vec![old[2].clone()]);
        assert_eq!(d.status_changed.len(), 1);
        assert_eq!(d.status_changed[0].task.id, "1");
        assert_eq!(d.status_changed[0].previous_status, TaskStatus::Pending);
        assert_eq!(d.updated, vec![new[1].clone()]);
        let ids: Vec<&str> = d.transitions.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["1", "4"]);
    }

    #[test]
    fn a_status_change_alone_is_not_an_update() {
        let old = vec![task("1", "a", TaskStatus::InProgress)];
        let new = vec![task("1", "a", TaskStatus::Pending)];
        let d = diff(ListSource::Tasks, &old, &new);
        assert!(d.updated.is_empty());
        assert_eq!(d.status_changed.len(), 1);
        // Back to pending starts nothing and completes nothing.
        assert!(d.transitions.is_empty());
    }

    #[test]
    fn todos_are_recognised_by_id_and_subject() {
        let old = vec![task("1", "a", TaskStatus::Pending)];
        let new = vec![task("1", "b", TaskStatus::Pending)];
        let todos = diff(ListSource::Todos, &old, &new);
        assert_eq!((todos.added.len(), todos.removed.len()), (1, 1));
        assert!(todos.updated.is_empty());
        let tasks = diff(ListSource::Tasks, &old, &new);
        assert_eq!((tasks.added.len(), tasks.removed.len()), (0, 0));
        assert_eq!(tasks.updated.len(), 1);
    }

    #[test]
    fn appearing_or_vanishing_is_reportable_but_an_unseen_list_is_not() {
        let empty = TaskDiff::default();
        assert!(reportable(&empty, false, true));
        assert!(reportable(&empty, true, false));
        assert!(!reportable(&empty, false, false));
        let d = diff(
            ListSource::Todos,
            &[],
            &[task("1", "a", TaskStatus::Pending)],
        );
        assert!(!reportable(&d, false, false));
        assert!(reportable(&d, true, true));
    }

    #[test]
    fn events_carry_the_whole_list_then_transitions_in_order() {
        let new = vec![
            task("1", "a", TaskStatus::Completed),
            task("2", "b", TaskStatus::InProgress),
            task("3", "c", TaskStatus::Pending),
        ];
        let d = diff(ListSource::Tasks, &[], &new);
        let evs = events(owner(), d, new.clone());
        assert_eq!(kinds(&evs), ["changed", "completed", "started"]);
        let TaskEvent::CcTasksChanged(c) = &evs[0] else {
            panic!("first event is not cc_tasks_changed: {evs:?}");
        };
        assert_eq!(c.tasks, new);
        assert_eq!(c.added.len(), 3);
        assert_eq!(c.slot_id.as_deref(), Some("slot"));
        assert_eq!(c.project_name, "proj");
    }

    fn activity(session: &str) -> SessionActivity {
        SessionActivity {
            session_id: session.into(),
            slot_id: None,
            project_name: "p".into(),
            cwd: None,
            source: ListSource::Tasks,
            agent_id: None,
        }
    }

    #[test]
    fn order_is_active_changes_inactive_per_list_in_key_order() {
        let a = ListKey::Tasks("a".into());
        let b = ListKey::Tasks("b".into());
        let new = vec![task("1", "x", TaskStatus::InProgress)];
        let changes_a = events(owner(), diff(ListSource::Tasks, &[], &new), new.clone());
        let changes_b = events(owner(), diff(ListSource::Tasks, &[], &new), new);
        let mut changes = BTreeMap::new();
        changes.insert(b.clone(), changes_b);
        changes.insert(a.clone(), changes_a);
        let act = vec![
            (b, TaskEvent::CcSessionInactive(activity("b"))),
            (a, TaskEvent::CcSessionActive(activity("a"))),
        ];
        let out = order_events(changes, act);
        assert_eq!(
            kinds(&out),
            ["active", "changed", "started", "changed", "started", "inactive"]
        );
    }

    #[test]
    fn task_folders_merge_by_id_in_numeric_order_and_todos_concatenate() {
        let f1 = vec![
            task("10", "ten", TaskStatus::Pending),
            task("2", "two", TaskStatus::Pending),
        ];
        let f2 = vec![
            task("2", "two again", TaskStatus::Pending),
            task("x", "named", TaskStatus::Pending),
            task("1", "one", TaskStatus::Pending),
        ];
        let files = [f1.as_slice(), f2.as_slice()];
        let merged = merge(ListSource::Tasks, files.iter().copied());
        let ids: Vec<(&str, &str)> = merged
            .iter()
            .map(|t| (t.id.as_str(), t.subject.as_str()))
            .collect();
        assert_eq!(
            ids,
            [("1", "one"), ("2", "two"), ("10", "ten"), ("x", "named")]
        );
        let todos = merge(ListSource::Todos, files.iter().copied());
        assert_eq!(todos.len(), 5);
        assert_eq!(todos[2].subject, "two again");
    }

    #[test]
    fn counts_by_status() {
        let mut by = TasksByStatus::default();
        count(
            &mut by,
            &[
                task("1", "a", TaskStatus::Pending),
                task("2", "b", TaskStatus::Completed),
                task("3", "c", TaskStatus::Completed),
            ],
        );
        assert_eq!((by.pending, by.in_progress, by.completed), (1, 0, 2));
    }
}
