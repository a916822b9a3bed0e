//! The CLI against the real daemon: a shell in a slot, typed input, its screen, its size.

mod support;

use missiond_core::protocol::{SlotInfo, SlotStatus};
use support::daemon::{poll, vm_rss_kib, Daemon, BIN, STEP};

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim_end() == line)
}

#[test]
fn launch_bash_send_echo_and_read_the_screen() {
    let d = Daemon::in_process();
    let out = d.cli_ok(&["launch", "sh1", "--", "bash", "--norc", "--noprofile"]);
    assert!(out.contains("launched sh1"), "launch said: {out}");

    d.cli_ok(&["send", "sh1", "--enter", "echo hello"]);
    // The typed command line contains "hello" too; the output is a line of its own.
    let screen = d.wait_screen("sh1", "a line 'hello'", |t| has_line(t, "hello"));
    assert!(screen.contains("echo hello"), "{screen}");

    // The plain screen verb prints the same text.
    let plain = d.cli_ok(&["screen", "sh1"]);
    assert!(has_line(&plain, "hello"), "{plain}");

    let slots: Vec<SlotInfo> =
        serde_json::from_str(&d.cli_ok(&["ls", "--json"])).expect("ls --json");
    assert_eq!(slots.len(), 1, "{slots:?}");
    let s = &slots[0];
    assert_eq!(s.id, "sh1");
    assert_eq!(s.command, "bash");
    assert_eq!(s.status, SlotStatus::Running);
    let pid = s.pid.expect("a running slot has a pid");
    assert!(support::daemon::alive(pid), "pid {pid} is not alive");

    let table = d.cli_ok(&["ls"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("sh1 "))
        .unwrap_or_else(|| panic!("no row for sh1:\n{table}"));
    assert!(
        row.contains("running") && row.contains(&pid.to_string()),
        "{table}"
    );
}

/// `screen --scrollback` prints what scrolled off the top, then the screen; bad query
/// parameters get a JSON error.
/// Issue 7: a slot with a full 2000-line scrollback costs under 4 MiB once it is quiet. As
/// rows of vt100 cells those lines take 7.8 MiB; the slot compacts them a second after its
/// output stops, and hands the memory back.
#[test]
fn a_quiet_slot_with_a_full_scrollback_costs_under_4_mib() {
    let d = Daemon::start();
    let before = vm_rss_kib(d.pid);
    let line = format!("line %06g {}", "x".repeat(88));
    let script = format!("seq -f '{line}' 2500; printf 'done> '; read x");
    d.cli_ok(&[
        "launch", "full", "--size", "120x40", "--", "sh", "-c", &script,
    ]);
    d.wait_screen("full", "the prompt after 2500 lines", |t| {
        t.contains("done>")
    });
    let history = d.cli_ok(&["screen", "full", "--scrollback"]);
    assert_eq!(
        history.lines().filter(|l| l.starts_with("line ")).count(),
        2000 + 39,
        "the scrollback holds 2000 lines, the screen 39 more"
    );
    assert!(history.contains(&format!("line 002500 {}", "x".repeat(88))));

    let quiet = poll(STEP, || {
        let grown = vm_rss_kib(d.pid).saturating_sub(before);
        (grown < 4 * 1024).then_some(grown)
    });
    assert!(
        quiet.is_some(),
        "the daemon still holds {} KiB more than before the slot",
        vm_rss_kib(d.pid).saturating_sub(before)
    );
    // What the slot serves is unchanged by compacting it.
    assert_eq!(d.cli_ok(&["screen", "full", "--scrollback"]), history);
}

#[test]
fn screen_with_scrollback_prints_what_scrolled_off() {
    let d = Daemon::in_process();
    d.cli_ok(&[
        "launch",
        "long",
        "--size",
        "80x10",
        "--",
        "sh",
        "-c",
        "seq 1 100; printf 'end> '; read x",
    ]);
    d.wait_screen("long", "the end", |t| t.contains("end>"));

    let plain = d.cli_ok(&["screen", "long"]);
    assert!(
        !has_line(&plain, "1"),
        "the screen alone is the last rows:\n{plain}"
    );

    let all = d.cli_ok(&["screen", "long", "--scrollback"]);
    let numbers: Vec<&str> = all.lines().filter(|l| !l.starts_with("end>")).collect();
    let expected: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    assert_eq!(numbers, expected, "{all}");
    assert!(all.trim_end().ends_with("end>"), "{all}");

    let ansi = d.cli_ok(&["screen", "long", "--scrollback", "--ansi"]);
    assert!(ansi.starts_with("1\x1b[m\r\n2\x1b[m\r\n"), "{ansi:?}");

    let (status, body) = d.http(
        "GET",
        "/api/slots/long/screen?scrollback=maybe",
        Some(&d.token),
        None,
    );
    assert_eq!(status, 400, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(error["error"]["code"], "bad_request", "{body}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("scrollback")),
        "{body}"
    );
}

#[test]
fn resize_reaches_the_program_and_the_emulator() {
    let d = Daemon::in_process();
    d.cli_ok(&[
        "launch",
        "r",
        "--size",
        "100x30",
        "--",
        "bash",
        "--norc",
        "--noprofile",
    ]);
    let before = d.screen("r");
    assert_eq!((before.cols, before.rows), (100, 30));

    d.cli_ok(&["resize", "r", "80x20"]);
    d.cli_ok(&["send", "r", "--enter", "stty size"]);
    let text = d.wait_screen("r", "'20 80' from stty", |t| has_line(t, "20 80"));

    let after = d.screen("r");
    assert_eq!((after.cols, after.rows), (80, 20), "{text}");
    assert!(after.text.lines().count() <= 20, "{}", after.text);
    assert!(
        after.text.lines().all(|l| l.chars().count() <= 80),
        "{}",
        after.text
    );
    let info = d.slot("r");
    assert_eq!((info.cols, info.rows), (80, 20));
}

#[test]
fn unknown_slot_and_bad_arguments_fail_with_one_line() {
    let d = Daemon::in_process();
    let err = d.cli_err(&["screen", "nope"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("missiond: ") && err.contains("nope"),
        "{err}"
    );

    let err = d.cli_err(&["launch", "bad id", "--", "sh"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("slot id"), "{err}");

    let err = d.cli_err(&["launch", "x", "--cwd", "/no/such/dir", "--", "sh"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/no/such/dir"), "{err}");

    // Refused by clap before any request: still non-zero with a reason.
    let err = d.cli_err(&["resize", "x", "80by20"]);
    assert!(err.contains("COLSxROWS"), "{err}");
}

#[test]
fn without_a_daemon_the_cli_says_so() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(BIN);
    support::daemon::isolate(&mut cmd, dir.path());
    let out = cmd
        .args(["ls"])
        .env("MISSIOND_URL", &url)
        .env("MISSIOND_TOKEN", "t")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!("missiond: cannot reach the daemon at {url} (is `missiond serve` running?)")
    );
}

#[test]
fn token_is_created_once_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || {
        let mut cmd = std::process::Command::new(BIN);
        support::daemon::isolate(&mut cmd, dir.path());
        let out = cmd.arg("token").output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first = run();
    assert!(
        first.len() >= 32 && first.chars().all(|c| c.is_ascii_hexdigit()),
        "{first}"
    );
    let path = dir.path().join("state/missiond/token");
    let mode = std::fs::metadata(&path)
        .expect("token file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(run(), first, "a second call must print the same token");
}

#[test]
fn every_verb_teaches_with_examples() {
    let verbs = [
        "serve", "ls", "launch", "kill", "restart", "start", "rm", "send", "screen", "resize",
        "token", "prompt", "confirm", "wait", "tasks", "attach", "audit",
    ];
    for verb in verbs {
        let out = std::process::Command::new(BIN)
            .args([verb, "--help"])
            .output()
            .expect("run");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{verb} --help failed");
        assert!(
            help.contains("Examples:"),
            "`{verb} --help` has no examples:\n{help}"
        );
        assert!(
            help.contains(&format!("missiond {verb}")),
            "`{verb} --help` shows no use of {verb}:\n{help}"
        );
    }
}
