//! `missiond upgrade`: the daemon executes a new binary in its own process while every slot's
//! program runs on: same pids, same terminals, no output and no key lost, the same screen.

mod support;

use missiond_core::protocol::SlotStatus;
use support::daemon::{alive, poll, Daemon, BIN, STEP};

fn create(d: &Daemon, body: serde_json::Value) {
    let (status, text) = d.http(
        "POST",
        "/api/slots",
        Some(&d.token),
        Some(("application/json", body.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{text}");
}

fn pids(d: &Daemon) -> Vec<(String, Option<u32>)> {
    d.slots().into_iter().map(|s| (s.id, s.pid)).collect()
}

/// The counter's numbers on the screen and in the scrollback, in order.
/// The `upgrade` entries of `slot`'s audit trail.
fn audit_upgrades(d: &Daemon, slot: &str) -> Vec<serde_json::Value> {
    let audit: Vec<serde_json::Value> =
        serde_json::from_str(&d.cli_ok(&["--json", "audit", "--slot", slot])).expect("audit JSON");
    audit
        .into_iter()
        .filter(|e| e["action"] == "upgrade")
        .collect()
}

fn counted(d: &Daemon) -> Vec<u64> {
    d.cli_ok(&["screen", "counter", "--scrollback"])
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn programs_keep_running_through_an_upgrade() {
    let mut d = Daemon::start();
    create(
        &d,
        serde_json::json!({"id": "cat", "command": "cat", "cols": 80, "rows": 24}),
    );
    create(
        &d,
        serde_json::json!({
            "id": "counter",
            "command": "sh",
            "args": ["-c", "i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); echo $i; sleep 0.001; done"],
            "scrollback": 20000,
        }),
    );
    let file = d.dir().join("poem.txt");
    let text: String = (1..=40)
        .map(|i| format!("line {i} of the poem\n"))
        .collect();
    std::fs::write(&file, text).expect("write file");
    // Terminal queries off: their late answers would make vim redraw at any moment.
    let vim = format!(
        "exec vim -u NONE -i NONE -N -n --cmd 'set t_RB= t_RF= t_RV= t_u7=' -c 'set ruler number' {}",
        file.display()
    );
    create(
        &d,
        serde_json::json!({"id": "vim", "command": "sh", "args": ["-c", vim], "cols": 80, "rows": 24, "env": {"TERM": "xterm-256color"}}),
    );
    d.wait_screen("vim", "the file and the ruler", |t| {
        t.contains("line 1 of the poem") && t.contains("1,1")
    });
    d.cli_ok(&["send", "cat", "--enter", "typed-before"]);
    d.wait_screen("cat", "the echo", |t| {
        t.matches("typed-before").count() == 2
    });
    d.cli_ok(&["wait", "cat", "--state", "idle", "--timeout", "30"]);
    let screen_before = d.screen("cat");
    let vim_before = d.screen("vim");
    let cat_before = d.slot("cat");
    let pids_before = pids(&d);
    let at_upgrade = *counted(&d).last().expect("the counter counts");
    let daemon_pid = d.pid;

    d.cli_ok(&["upgrade", "--binary", BIN]);

    assert!(alive(daemon_pid), "execve keeps the daemon's pid");
    assert_eq!(pids(&d), pids_before, "every program keeps its pid");
    let screen_after = d.screen("cat");
    assert_eq!(screen_after.text, screen_before.text, "the same screen");
    assert_eq!(screen_after.cursor, screen_before.cursor);
    let vim_after = d.screen("vim");
    assert_eq!(
        (vim_after.text, vim_after.cursor),
        (vim_before.text, vim_before.cursor),
        "vim's screen is the same"
    );
    d.cli_ok(&["send", "vim", "G"]);
    d.wait_screen("vim", "vim answering a key", |t| {
        t.contains("line 40 of the poem") && t.contains("40,1")
    });
    let cat_after = d.slot("cat");
    assert_eq!(
        (cat_after.state, cat_after.state_since),
        (cat_before.state, cat_before.state_since),
        "the state is handed over"
    );
    // The counter printed on through the handover: no line lost, none twice.
    let later = poll(STEP, || {
        let n = counted(&d);
        (n.last().copied().unwrap_or(0) > at_upgrade + 200).then_some(n)
    })
    .expect("the counter counts on after the upgrade");
    let from = later
        .iter()
        .position(|&n| n == at_upgrade)
        .unwrap_or_else(|| panic!("{at_upgrade} is not in the scrollback any more"));
    for pair in later[from..].windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "a line was lost or repeated: {pair:?}"
        );
    }
    // Keys typed right up to the upgrade and after it reach the same program, in order.
    d.cli_ok(&["send", "cat", "--enter", "typed-just-before"]);
    d.cli_ok(&["upgrade", "--binary", BIN]);
    d.cli_ok(&["send", "cat", "--enter", "typed-after"]);
    let text = d.wait_screen("cat", "the echo", |t| t.matches("typed-after").count() == 2);
    assert_eq!(text.matches("typed-just-before").count(), 2, "{text}");
    assert!(
        text.find("typed-before") < text.find("typed-just-before"),
        "{text}"
    );
    assert!(
        text.find("typed-just-before") < text.find("typed-after"),
        "{text}"
    );
    assert_eq!(d.slot("cat").status, SlotStatus::Running);

    // Two upgrades, three recordings of cat's one process: each closed at the handover, the
    // next opened with the handed-over screen and going on from there.
    let (status, runs) = d.http("GET", "/api/slots/cat/runs", Some(&d.token), None);
    assert_eq!(status, 200, "{runs}");
    let runs: Vec<serde_json::Value> = serde_json::from_str(&runs).expect("runs");
    let numbers: Vec<u64> = runs.iter().filter_map(|r| r["run"].as_u64()).collect();
    assert_eq!(numbers.len(), 3, "{runs:?}");
    let cast = |n: u64| {
        let (status, text) = d.http(
            "GET",
            &format!("/api/slots/cat/runs/{n}.cast"),
            Some(&d.token),
            None,
        );
        assert_eq!(status, 200, "{text}");
        text
    };
    let last_run = numbers.iter().copied().max().unwrap_or(3);
    let first = cast(numbers.iter().copied().min().unwrap_or(1));
    assert!(first.contains("\"upgrade:handed over\""), "{first}");
    // Written within a second (the recorder flushes at least that often).
    let after = poll(STEP, || {
        let text = cast(last_run);
        (text.contains("\"upgrade:continued\"") && text.contains("typed-after")).then_some(())
    });
    assert!(
        after.is_some(),
        "the last recording opens with its marker and goes on: {}",
        cast(last_run)
    );

    // Each slot's audit trail says who replaced the daemon, with which binary, and when.
    for slot in ["cat", "vim"] {
        let upgrades = audit_upgrades(&d, slot);
        assert_eq!(upgrades.len(), 2, "{slot}: {upgrades:?}");
        assert_eq!(upgrades[0]["actor"]["client"], "cli", "{upgrades:?}");
        assert_eq!(
            upgrades[0]["command"],
            serde_json::json!([BIN]),
            "{upgrades:?}"
        );
    }

    // The orphan guard was handed over too: it still ends the programs of a killed daemon.
    let cat = d.slot("cat").pid.expect("pid");
    d.kill_hard();
    assert!(
        poll(STEP, || (!alive(cat)).then_some(())).is_some(),
        "the guard did not end cat after the upgraded daemon died"
    );
}

#[test]
fn a_binary_that_cannot_take_over_leaves_the_daemon_serving() {
    let d = Daemon::start();
    create(&d, serde_json::json!({"id": "cat", "command": "cat"}));
    let before = pids(&d);
    let script = d.dir().join("not-missiond");
    std::fs::write(&script, "#!/bin/sh\necho hello\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for (binary, why) in [
        (
            "/bin/false".to_string(),
            "not a missiond that can take over",
        ),
        (
            script.display().to_string(),
            "not a missiond that can take over",
        ),
    ] {
        let err = d.cli_err(&["upgrade", "--binary", &binary]);
        assert!(err.contains(why), "{binary}: {err}");
    }
    let err = d.cli_err(&["upgrade", "--binary", "/nonexistent/missiond"]);
    assert!(err.contains("/nonexistent/missiond"), "{err}");
    assert_eq!(pids(&d), before);
    assert_eq!(
        audit_upgrades(&d, "cat"),
        Vec::<serde_json::Value>::new(),
        "no upgrade took place"
    );
    d.cli_ok(&["send", "cat", "--enter", "still-here"]);
    d.wait_screen("cat", "the echo", |t| t.matches("still-here").count() == 2);
}

/// A viewer's WebSocket closes with 1012 ("service restart") when the daemon upgrades, and
/// the viewer that connects again gets the slot's screen from the new daemon.
#[test]
fn viewers_are_told_to_reconnect_and_find_their_slot_again() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let d = Daemon::start();
    create(&d, serde_json::json!({"id": "cat", "command": "cat"}));
    d.cli_ok(&["send", "cat", "--enter", "seen-before"]);
    d.wait_screen("cat", "the echo", |t| t.contains("seen-before"));
    let url = format!(
        "{}/pty/cat?token={}",
        d.url.replacen("http://", "ws://", 1),
        d.token
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut ws = runtime
        .block_on(tokio_tungstenite::connect_async(url.as_str()))
        .expect("connect")
        .0;
    let first = runtime
        .block_on(ws.next())
        .expect("a frame")
        .expect("a message");
    assert!(
        first.to_text().unwrap_or("").contains("\"screen\""),
        "{first:?}"
    );
    let code = std::thread::scope(|s| {
        let upgrading = s.spawn(|| d.cli_ok(&["upgrade", "--binary", BIN]));
        let code = runtime.block_on(async {
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Close(frame) = msg {
                    return frame.map(|f| u16::from(f.code));
                }
            }
            None
        });
        upgrading.join().expect("upgrade thread");
        code
    });
    assert_eq!(code, Some(1012), "the documented close code");
    let mut again = runtime
        .block_on(tokio_tungstenite::connect_async(url.as_str()))
        .expect("reconnect")
        .0;
    let screen = runtime
        .block_on(again.next())
        .expect("a frame")
        .expect("a message");
    assert!(
        screen.to_text().unwrap_or("").contains("seen-before"),
        "{screen:?}"
    );
}

/// Clients that were waiting when the daemon upgraded carry on with the new one: `/events`
/// closes with 1012, `missiond tasks --follow` follows the new daemon's stream, and a
/// `missiond wait` whose request the upgrade cut asks the new daemon again.
#[test]
fn streams_and_waiting_clients_carry_on_through_an_upgrade() {
    use futures_util::StreamExt;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use tokio_tungstenite::tungstenite::Message;
    let d = Daemon::start();
    create(&d, serde_json::json!({"id": "sh", "command": "sh"}));
    d.wait_slot("sh", "running", |s| s.status == SlotStatus::Running);

    // A `wait` in flight: its process holds a connection to the daemon.
    let wait = d
        .command(&["wait", "sh", "--state", "exited", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wait");
    let connected = poll(STEP, || {
        let (_, fds) = support::daemon::open_fds(wait.id());
        fds.iter().any(|f| f.starts_with("socket:")).then_some(())
    });
    assert!(connected.is_some(), "wait never connected");

    // `tasks --follow`, past its first line (the overview).
    let mut follow = d
        .command(&["tasks", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tasks --follow");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let overview = lines.recv_timeout(STEP).expect("the overview");
    assert!(overview.contains("cc_tasks_overview"), "{overview}");

    // `/events`, past its snapshot.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!(
        "{}/events?token={}",
        d.url.replacen("http://", "ws://", 1),
        d.token
    );
    let mut events = runtime
        .block_on(tokio_tungstenite::connect_async(url.as_str()))
        .expect("connect /events")
        .0;
    runtime
        .block_on(events.next())
        .expect("the snapshot")
        .expect("a message");

    let before = d.slot("sh").pid;
    d.cli_ok(&["upgrade", "--binary", BIN]);
    assert_eq!(d.slot("sh").pid, before, "the program runs on");
    let code = runtime.block_on(async {
        while let Some(Ok(msg)) = events.next().await {
            if let Message::Close(frame) = msg {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    });
    assert_eq!(code, Some(1012), "/events says: reconnect");

    // After the upgrade: a task appears, and the slot's program exits.
    let dir = d.dir().join("claude/tasks/after-upgrade");
    std::fs::create_dir_all(&dir).expect("list dir");
    let task = serde_json::json!({"id": "1", "subject": "Seen by the new daemon",
        "description": "", "activeForm": "", "status": "pending", "blocks": [], "blockedBy": []});
    std::fs::write(dir.join(".1.json.tmp"), task.to_string()).expect("write task");
    std::fs::rename(dir.join(".1.json.tmp"), dir.join("1.json")).expect("rename task");
    let seen = poll(STEP, || {
        lines
            .try_iter()
            .find(|l| l.contains("Seen by the new daemon"))
    });
    assert!(
        seen.is_some(),
        "tasks --follow did not follow the new daemon"
    );
    assert!(
        follow.try_wait().expect("try_wait").is_none(),
        "tasks --follow ended"
    );
    let _ = follow.kill();
    let _ = follow.wait();

    d.cli_ok(&["send", "sh", "--enter", "exit"]);
    let out = wait.wait_with_output().expect("wait ends");
    assert!(
        out.status.success(),
        "wait failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("exited"));
}
