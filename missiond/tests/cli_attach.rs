//! `missiond attach` under a real terminal (a PTY this test holds): keys reach the program,
//! Ctrl-C interrupts the program and not the client, the detach key detaches, and the
//! terminal's modes are restored whether the session ends by detaching, by the slot exiting,
//! or by the daemon going away.

mod support;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use support::daemon::{poll, process_tree, Daemon, BIN, STEP};

/// A shell in a PTY that records the terminal settings (`stty -g`), runs `missiond attach`,
/// prints its exit status and records the settings again.
struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    output: Arc<Mutex<Vec<u8>>>,
    _master: Box<dyn MasterPty + Send>,
}

impl Terminal {
    fn attach(d: &Daemon, id: &str) -> Terminal {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 30,
                cols: 100,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let script = format!(
            "echo STTY1=$(stty -g); {BIN} attach {id}; echo EXIT=$?; echo STTY2=$(stty -g); sleep 1000"
        );
        let mut cmd = CommandBuilder::new("sh");
        cmd.args(["-c", &script]);
        cmd.env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.env("TERM", "xterm-256color");
        cmd.env("HOME", d.dir().join("home"));
        cmd.env("XDG_STATE_HOME", d.dir().join("state"));
        cmd.env("MISSIOND_URL", &d.url);
        cmd.env("MISSIOND_TOKEN", &d.token);
        let child = pty.slave.spawn_command(cmd).expect("spawn attach");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("reader");
        let writer = pty.master.take_writer().expect("writer");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut out) = sink.lock() {
                    out.extend_from_slice(&buf[..n]);
                }
            }
        });
        let term = Terminal {
            child,
            writer,
            output,
            _master: pty.master,
        };
        term.wait_for("STTY1=");
        // Raw mode is on once the client switched to the alternate screen; attached once the
        // daemon counts the viewer.
        term.wait_for("\x1b[?1049h");
        d.wait_slot(id, "attached by one viewer", |s| s.viewers == 1);
        term
    }

    fn text(&self) -> String {
        self.output
            .lock()
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .unwrap_or_default()
    }

    fn wait_for(&self, needle: &str) -> String {
        poll(STEP, || {
            let t = self.text();
            t.contains(needle).then_some(t)
        })
        .unwrap_or_else(|| {
            panic!(
                "the terminal never showed {needle:?}; it shows:\n{}",
                self.text()
            )
        })
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.writer.write_all(keys).expect("type");
        self.writer.flush().expect("flush");
    }

    /// The value printed after `NAME=` on a line of its own.
    fn value(&self, name: &str) -> String {
        let text = self.text();
        let start = text
            .rfind(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name}= in:\n{text}"));
        text[start + name.len() + 1..]
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    }

    /// After the client ended: it exited with `status`, and the terminal is as it was before.
    fn assert_ended_and_restored(&self, status: &str) {
        self.wait_for("STTY2=");
        let stty2 = poll(STEP, || {
            let v = self.value("STTY2");
            (!v.is_empty()).then_some(v)
        });
        assert_eq!(self.value("EXIT"), status, "{}", self.text());
        assert_eq!(
            Some(self.value("STTY1")),
            stty2,
            "terminal modes not restored"
        );
        // The client also left the alternate screen and showed the cursor again.
        let text = self.text();
        let end = text.rfind("EXIT=").unwrap_or(0);
        let tail = &text[..end];
        assert!(
            tail.rfind("\x1b[?1049l") > tail.rfind("\x1b[?1049h"),
            "alternate screen not left"
        );
        assert!(tail.contains("\x1b[?25h"), "cursor not shown again");
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim_end() == line)
}

#[test]
fn typing_reaches_the_program_ctrl_c_interrupts_it_and_the_detach_key_detaches() {
    let d = Daemon::start();
    d.cli_ok(&["launch", "a", "--", "bash", "--norc", "--noprofile"]);
    let pid = d
        .wait_slot("a", "running", |s| s.pid.is_some())
        .pid
        .unwrap_or(0);
    let mut term = Terminal::attach(&d, "a");

    // The client resized the slot to its own terminal.
    d.wait_slot("a", "resized to the client's 100x30", |s| {
        (s.cols, s.rows) == (100, 30)
    });

    term.type_keys(b"echo typed-$((6*7))\r");
    d.wait_screen("a", "the typed command's output", |t| {
        has_line(t, "typed-42")
    });
    term.wait_for("typed-42");

    // The program's bytes arrive as they are, even those that are not UTF-8 (binary frames).
    term.type_keys(b"printf 'raw-\\377-%s\\n' bytes\r");
    term.wait_for("-bytes");
    let output = term.output.lock().map(|o| o.clone()).unwrap_or_default();
    assert!(
        output.windows(6).any(|w| w == b"raw-\xff-"),
        "the 0xFF byte did not come through unchanged: {:?}",
        String::from_utf8_lossy(&output)
    );

    // Ctrl-C is a byte for the program: it interrupts `sleep`, the client stays.
    term.type_keys(b"sleep 1000\r");
    poll(STEP, || (process_tree(pid).len() > 1).then_some(()))
        .expect("sleep never started in the slot");
    term.type_keys(b"\x03");
    poll(STEP, || (process_tree(pid).len() == 1).then_some(()))
        .expect("Ctrl-C did not end the slot's sleep");
    term.type_keys(b"echo still-$((1+1))\r");
    d.wait_screen("a", "input after Ctrl-C", |t| has_line(t, "still-2"));

    term.type_keys(b"\x1d");
    term.assert_ended_and_restored("0");
    assert!(term.text().contains("detached from a"), "{}", term.text());
    // Detaching leaves the program running.
    let s = d.wait_slot("a", "without viewers", |s| s.viewers == 0);
    assert_eq!(s.pid, Some(pid));
}

#[test]
fn the_slot_exiting_ends_the_session_and_restores_the_terminal() {
    let d = Daemon::start();
    d.cli_ok(&["launch", "e", "--", "bash", "--norc", "--noprofile"]);
    let mut term = Terminal::attach(&d, "e");
    term.type_keys(b"exit 7\r");
    term.assert_ended_and_restored("0");
    assert!(term.text().contains("e exited (7)"), "{}", term.text());
}

#[test]
fn the_daemon_going_away_ends_the_session_and_restores_the_terminal() {
    let mut d = Daemon::start();
    d.cli_ok(&["launch", "g", "--", "bash", "--norc", "--noprofile"]);
    let term = Terminal::attach(&d, "g");
    d.kill_hard();
    term.assert_ended_and_restored("1");
    assert!(
        term.text().contains("lost the connection to the daemon"),
        "{}",
        term.text()
    );
}

#[test]
fn attach_refuses_unknown_and_exited_slots_before_touching_the_terminal() {
    let d = Daemon::start();
    let err = d.cli_err(&["attach", "nope"]);
    assert!(err.contains("nope") && err.lines().count() == 1, "{err}");
    d.cli_ok(&["launch", "done", "--", "sh", "-c", "exit 0"]);
    d.wait_slot("done", "exited", |s| {
        s.pid.is_none() && s.exit_code.is_some()
    });
    let err = d.cli_err(&["attach", "done"]);
    assert!(
        err.contains("exited") && err.contains("missiond restart done"),
        "{err}"
    );
    // Not a terminal and not read-only: refused with a pointer to the script verbs.
    d.cli_ok(&["launch", "live", "--", "cat"]);
    let err = d.cli_err(&["attach", "live"]);
    assert!(err.contains("terminal"), "{err}");
}

/// `missiond upgrade` closes the viewer with 1012: attach connects again by itself and the
/// keys typed afterwards reach the same program.
#[test]
fn attach_reconnects_by_itself_through_an_upgrade() {
    let d = Daemon::start();
    d.cli_ok(&["launch", "u", "--", "bash", "--norc", "--noprofile"]);
    let pid = d.wait_slot("u", "running", |s| s.pid.is_some()).pid;
    let mut term = Terminal::attach(&d, "u");
    term.type_keys(b"echo before-$((20+1))\r");
    term.wait_for("before-21");
    d.cli_ok(&["upgrade", "--binary", BIN]);
    // Attached again: the new daemon counts the viewer.
    let s = d.wait_slot("u", "attached again", |s| s.viewers == 1);
    assert_eq!(s.pid, pid, "the same program");
    term.type_keys(b"echo after-$((20+2))\r");
    d.wait_screen("u", "the keys typed after the upgrade", |t| {
        has_line(t, "after-22")
    });
    term.wait_for("after-22");
    assert!(
        !term.text().contains("EXIT="),
        "attach ended:\n{}",
        term.text()
    );
    term.type_keys(b"\x1d");
    term.assert_ended_and_restored("0");
}
