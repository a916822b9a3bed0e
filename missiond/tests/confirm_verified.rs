//! Enter only on what was asked: `confirm` moves the selection one key at a time, reads it back
//! from the screen and presses Enter only when the asked option shows selected. A real daemon
//! and a real PTY running `tests/data/dialog.py`, a Claude Code-like dialog whose keyboard can
//! ignore arrows or read a burst of keys as Enter alone (as Claude Code 2.1.150-2.1.200 did).

mod support;

use std::path::{Path, PathBuf};

use missiond_core::protocol::{Meaning, SemanticState};
use support::daemon::{poll, Daemon, STEP};

struct DialogSlot {
    daemon: Daemon,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

const SLOT: &str = "dlg";

impl DialogSlot {
    /// The dialog in slot [`SLOT`] (profile claude-code), waiting for an answer.
    fn start(keyboard: &str, options: &str) -> DialogSlot {
        let daemon = Daemon::in_process();
        let dir = tempfile::tempdir().expect("temp dir");
        let record = dir.path().join("record.txt");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dialog.py");
        daemon.cli_ok(&[
            "launch",
            SLOT,
            "--profile",
            "claude-code",
            "--",
            "python3",
            &script.to_string_lossy(),
            &record.to_string_lossy(),
            keyboard,
            options,
        ]);
        daemon.wait_slot(SLOT, "the dialog", |s| {
            s.state == SemanticState::Confirming && s.state_detail.dialog.is_some()
        });
        DialogSlot {
            daemon,
            record,
            _dir: dir,
        }
    }

    /// What the dialog did, one entry per line of its record.
    fn record(&self) -> Vec<String> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until the dialog recorded an answer; returns the whole record.
    fn answered(&self) -> Vec<String> {
        poll(STEP, || {
            let record = self.record();
            record
                .iter()
                .any(|l| l.starts_with("submitted") || l == "escape")
                .then_some(record)
        })
        .unwrap_or_else(|| panic!("the dialog never got an answer: {:?}", self.record()))
    }
}

#[test]
fn a_dialog_that_ignores_arrows_gets_no_enter_and_the_error_says_why() {
    let d = DialogSlot::start("ignore-arrows", "yes-always-no");
    let err = d.daemon.cli_err(&["confirm", SLOT, "3"]);
    assert!(err.contains("nothing was submitted"), "{err}");
    assert!(
        err.contains("option 1 (Yes) selected"),
        "the error should say what the screen shows: {err}"
    );
    assert!(
        !d.record().iter().any(|l| l.starts_with("submitted")),
        "Enter was pressed: {:?}",
        d.record()
    );
    let info = d.daemon.slot(SLOT);
    assert_eq!(
        info.state,
        SemanticState::Confirming,
        "the dialog stays open"
    );
}

#[test]
fn keys_go_one_at_a_time_so_a_burst_reader_gets_the_asked_option() {
    let d = DialogSlot::start("burst-is-enter", "yes-always-no");
    d.daemon.cli_ok(&["confirm", SLOT, "3"]);
    let record = d.answered();
    assert_eq!(
        record,
        ["moved 2", "moved 3", "submitted 3"],
        "each arrow read back before the next; Enter on option 3 only"
    );
    let info = d.daemon.slot(SLOT);
    assert_ne!(info.state, SemanticState::Confirming, "{info:?}");
}

#[test]
fn options_carry_meanings_and_answers_by_meaning_pick_them() {
    let d = DialogSlot::start("normal", "yes-always-no");
    let info = d.daemon.slot(SLOT);
    let dialog = info.state_detail.dialog.expect("dialog");
    let meanings: Vec<Option<Meaning>> = dialog.options.iter().map(|o| o.meaning).collect();
    assert_eq!(
        meanings,
        [Some(Meaning::Yes), Some(Meaning::Always), Some(Meaning::No)]
    );
    assert!(dialog.cancellable, "{dialog:?}");
    d.daemon.cli_ok(&["confirm", SLOT, "--always"]);
    assert_eq!(d.answered(), ["moved 2", "submitted 2"]);
}

#[test]
fn no_on_a_dialog_without_a_no_option_presses_escape() {
    let d = DialogSlot::start("normal", "yes-always-free");
    let dialog = d.daemon.slot(SLOT).state_detail.dialog.expect("dialog");
    assert_eq!(dialog.options[2].meaning, None, "{dialog:?}");
    d.daemon.cli_ok(&["confirm", SLOT, "--no"]);
    assert_eq!(d.answered(), ["escape"]);
}

#[test]
fn an_answer_the_dialog_does_not_have_is_refused_and_nothing_is_sent() {
    let d = DialogSlot::start("normal", "yes-always-no");
    let err = d.daemon.cli_err(&["confirm", SLOT, "7"]);
    assert!(err.contains("option 7 does not exist"), "{err}");
    assert!(err.contains("3. No (no)"), "the options are listed: {err}");
    let (status, body) = d.daemon.http(
        "POST",
        &format!("/api/slots/{SLOT}/confirm"),
        Some(&d.daemon.token),
        Some((
            "application/json",
            br#"{"option": 1, "answer": "no"}"#.to_vec(),
        )),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not both"), "{body}");
    assert!(
        d.record().is_empty(),
        "no key reached the dialog: {:?}",
        d.record()
    );
    assert_eq!(d.daemon.slot(SLOT).state, SemanticState::Confirming);
}
