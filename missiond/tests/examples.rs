//! The scripts in examples/ run as a user would run them, against a real daemon, and react to
//! real task files and real slot states.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::daemon::{Daemon, BIN, STEP};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Starts `program args` with the daemon's URL and token, and streams its stdout lines.
fn run_example(daemon: &Daemon, program: &str, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("MISSIOND_URL", &daemon.url)
        .env("MISSIOND_TOKEN", &daemon.token)
        .env("MISSIOND", BIN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn next_line(rx: &mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(STEP)
        .unwrap_or_else(|_| panic!("no line from the example: {what}"))
}

fn write_task(daemon: &Daemon, list: &str, id: &str, subject: &str, status: &str) {
    let dir = daemon.dir().join("claude").join("tasks").join(list);
    std::fs::create_dir_all(&dir).expect("list dir");
    let task = serde_json::json!({
        "id": id, "subject": subject, "description": "", "activeForm": subject,
        "status": status, "blocks": [], "blockedBy": []
    });
    std::fs::write(dir.join(format!("{id}.json")), task.to_string()).expect("task file");
}

#[test]
fn python_task_watcher_prints_overview_and_events() {
    let daemon = Daemon::in_process();
    let script = examples_dir().join("watch_tasks.py");
    let (mut child, lines) = run_example(
        &daemon,
        "python3",
        &[script.to_str().unwrap(), "--max-events", "0"],
    );
    let overview = next_line(&lines, "overview");
    assert!(overview.starts_with("overview: 0 sessions"), "{overview}");
    write_task(&daemon, "list-a", "1", "Write the parser", "pending");
    let changed = line_starting(&lines, "changed");
    assert!(changed.contains(": +1 -0"), "{changed}");
    write_task(&daemon, "list-a", "1", "Write the parser", "in_progress");
    let started = line_starting(&lines, "started");
    assert!(started.ends_with(": Write the parser"), "{started}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Skips lines (e.g. session activity) until one starts with `prefix`.
fn line_starting(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let line = next_line(rx, prefix);
        if line.starts_with(prefix) {
            return line;
        }
        assert!(Instant::now() < deadline, "no line starting with {prefix}");
    }
}

#[test]
fn python_state_watcher_exits_when_a_slot_needs_attention() {
    let daemon = Daemon::in_process();
    daemon.cli_ok(&["launch", "sh1", "--cwd", "/tmp", "--", "bash", "--norc"]);
    let script = examples_dir().join("watch_states.py");
    let (mut child, lines) = run_example(
        &daemon,
        "python3",
        &[script.to_str().unwrap(), "--until-state", "exited"],
    );
    assert!(next_line(&lines, "snapshot").starts_with("sh1: "));
    daemon.cli_ok(&["send", "sh1", "--enter", "exit 0"]);
    let deadline = Instant::now() + STEP;
    loop {
        let line = next_line(&lines, "the exit");
        if line.ends_with("-> exited") {
            break;
        }
        assert!(Instant::now() < deadline, "no exit line");
    }
    assert!(child.wait().expect("wait").success());
}

#[test]
fn shell_notifier_prints_completed_tasks() {
    let daemon = Daemon::in_process();
    let script = examples_dir().join("notify-completed.sh");
    let (mut child, lines) = run_example(&daemon, "bash", &[script.to_str().unwrap(), "1"]);
    // The script prints nothing until a task completes, so there is no sign that it is
    // connected: complete the task again until its line arrives.
    let deadline = Instant::now() + STEP;
    let line = loop {
        write_task(&daemon, "list-b", "7", "Ship it", "pending");
        std::thread::sleep(Duration::from_millis(300));
        write_task(&daemon, "list-b", "7", "Ship it", "completed");
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(700)) {
            break line;
        }
        assert!(Instant::now() < deadline, "the notifier printed nothing");
    };
    assert!(line.starts_with("done: Ship it ("), "{line}");
    assert!(child.wait().expect("wait").success());
}
