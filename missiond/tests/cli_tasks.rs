//! `missiond tasks` against the real daemon and real task files in its Claude directory:
//! the table, `--json`, and `--follow --json` streaming one event per line.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

use serde_json::Value;
use support::daemon::{poll, Daemon, STEP};

fn write_task(d: &Daemon, list: &str, id: &str, subject: &str, status: &str) {
    let dir = d.dir().join("claude").join("tasks").join(list);
    std::fs::create_dir_all(&dir).expect("list dir");
    let task = serde_json::json!({
        "id": id, "subject": subject, "description": "", "activeForm": subject,
        "status": status, "blocks": [], "blockedBy": if id == "1" { vec![] } else { vec!["1"] },
    });
    // Write beside and rename, as a careful writer would; the watcher sees a whole file.
    let tmp = dir.join(format!(".{id}.json.tmp"));
    std::fs::write(&tmp, task.to_string()).expect("write task");
    std::fs::rename(&tmp, dir.join(format!("{id}.json"))).expect("rename task");
}

#[test]
fn tasks_lists_task_files_as_a_table_and_as_json() {
    let d = Daemon::in_process();
    write_task(&d, "list-a", "1", "Plan the work", "completed");
    write_task(&d, "list-a", "2", "Build the parser", "in_progress");

    let table = poll(STEP, || {
        let out = d.cli_ok(&["tasks"]);
        out.contains("Build the parser").then_some(out)
    })
    .unwrap_or_else(|| panic!("tasks never listed the files; daemon log:\n{}", d.log()));
    assert!(table.contains("● #1 Plan the work"), "{table}");
    assert!(
        table.contains("◐ #2 Build the parser (blocked by #1)"),
        "{table}"
    );

    let json: Value = serde_json::from_str(&d.cli_ok(&["tasks", "--json"])).expect("tasks --json");
    let sessions = json["sessions"].as_array().expect("sessions");
    let list = sessions
        .iter()
        .find(|s| s["sessionId"] == "list-a")
        .expect("list-a in the overview");
    assert_eq!(list["tasks"].as_array().map(Vec::len), Some(2), "{json}");
}

#[test]
fn tasks_follow_json_streams_one_event_per_line() {
    let d = Daemon::in_process();
    let mut child = d
        .command(&["tasks", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tasks --follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_event = || -> Value {
        let line = rx
            .recv_timeout(STEP)
            .expect("an event line from tasks --follow");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object per line: {e}: {line}"))
    };
    let first = next_event();
    assert_eq!(first["type"], "cc_tasks_overview", "{first}");

    write_task(&d, "list-b", "1", "Write the docs", "pending");
    let changed = loop {
        let event = next_event();
        if event["type"] == "cc_tasks_changed" {
            break event;
        }
    };
    assert_eq!(changed["payload"]["sessionId"], "list-b", "{changed}");
    assert_eq!(
        changed["payload"]["added"][0]["subject"], "Write the docs",
        "{changed}"
    );

    let _ = child.kill();
    let _ = child.wait();
}
