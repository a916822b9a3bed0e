//! Thousands of task files: the initial scan is complete and exact, events still flow, and an
//! idle watcher's threads use no CPU.

use missiond_core::protocol::tasks::TaskEvent;
use missiond_core::tasks::{NoSlots, TaskHub};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTS: usize = 100;
const PER_LIST: usize = 50;

fn status_of(i: usize) -> &'static str {
    match i % 5 {
        0 | 1 => "completed",
        2 => "in_progress",
        _ => "pending",
    }
}

/// CPU ticks (utime + stime) used so far by this process's threads whose name starts with one
/// of `prefixes`.
fn thread_ticks(prefixes: &[&str]) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !prefixes.iter().any(|p| comm.trim_end().starts_with(p)) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let after = &stat[stat.rfind(')').unwrap() + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields after the comm: state(0) ppid(1) ... utime(11) stime(12).
        total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    total
}

#[tokio::test]
async fn five_thousand_files_in_a_hundred_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(".claude");
    let mut expected = [0usize; 3];
    for l in 0..LISTS {
        let dir = root.join("tasks").join(format!("list-{l:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".lock"), "").unwrap();
        for t in 1..=PER_LIST {
            let st = status_of(l + t);
            expected[match st {
                "pending" => 0,
                "in_progress" => 1,
                _ => 2,
            }] += 1;
            let body = format!(
                r#"{{"id":"{t}","subject":"Task {t} of list {l}","description":"d","status":"{st}","blocks":[],"blockedBy":[]}}"#
            );
            std::fs::write(dir.join(format!("{t}.json")), body).unwrap();
        }
    }

    let started = Instant::now();
    let hub = TaskHub::start(root.clone(), Arc::new(NoSlots)).unwrap();
    let elapsed = started.elapsed();
    println!("initial scan of {} files: {elapsed:?}", LISTS * PER_LIST);

    let ov = hub.overview();
    assert_eq!(ov.total_sessions, LISTS);
    assert_eq!(ov.active_sessions, LISTS);
    let by = ov.tasks_by_status;
    assert_eq!([by.pending, by.in_progress, by.completed], expected);
    assert!(ov.sessions.iter().all(|s| s.tasks.len() == PER_LIST));
    let l42 = ov
        .sessions
        .iter()
        .find(|s| s.session_id == "list-042")
        .unwrap();
    assert_eq!(l42.tasks[9].id, "10");
    assert_eq!(l42.tasks[9].subject, "Task 10 of list 42");

    // Idle: the watcher threads sleep.
    let threads = ["missiond-tasks", "notify-rs"];
    let before = thread_ticks(&threads);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = thread_ticks(&threads) - before;
    println!("watcher CPU ticks while idle for 1 s: {idle}");
    assert!(idle <= 1, "idle watcher used {idle} ticks of CPU");

    // Events still flow, for one list among a hundred.
    let mut rx = hub.subscribe();
    let body = r#"{"id":"7","subject":"Task 7 of list 77","description":"d","status":"completed","blocks":[],"blockedBy":[]}"#;
    let old_status = status_of(77 + 7);
    std::fs::write(root.join("tasks/list-077/7.json"), body).unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let TaskEvent::CcTasksChanged(c) = ev else {
        panic!("expected a change, got {ev:?}")
    };
    assert_eq!(c.session_id, "list-077");
    assert_eq!(c.tasks.len(), PER_LIST);
    assert_eq!(old_status, "pending");
    assert_eq!(c.status_changed.len(), 1);
    assert_eq!(c.status_changed[0].task.id, "7");
    assert_eq!(c.status_changed[0].previous_status.as_str(), "pending");
}
