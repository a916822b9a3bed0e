//! The recorder of Claude Code fixtures: runs one release of Claude Code in a bare PTY against
//! the stand-in through a few scenarios and saves every byte it wrote, with the state a person
//! reads off the screen at moments the scenario knows (the stand-in is holding the turn: busy; a
//! dialog is drawn whole: confirming; the scripted answer and the prompt box are back: idle; the
//! API failed: error), as `missiond-core/tests/fixtures/claude-code-<release>/NAME-120x40.{bin,json}`
//! in the format of the shared fixtures (`tests/fixtures/README.md`).
//!
//! The labels come from the scenario, never from missiond's rules, so the fixture tests can
//! prove the rules against them. Run by hand when a release is added (docs/TESTING-WITH-CLAUDE.md):
//!
//! ```sh
//! MISSIOND_CLAUDE_BIN=/path/to/claude MISSIOND_RECORD_RELEASE=2.1.332 \
//!     cargo test -p missiond --test record_claude -- --ignored --test-threads=1
//! ```

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::claude_env::{ClaudeEnv, ClaudeEnvBuilder};
use support::pty_claude::{PtyClaude, COLS, ROWS};
use support::stand_in::{Gate, StandIn, Turn};

/// One recording in the making: the program and the marks taken so far.
struct Recorder {
    claude: PtyClaude,
    marks: Vec<Value>,
    name: &'static str,
    release: String,
    _env: ClaudeEnv,
}

impl Recorder {
    fn start(name: &'static str, stand_in: &StandIn, trust_dialog: bool) -> Recorder {
        let release = std::env::var("MISSIOND_RECORD_RELEASE")
            .expect("set MISSIOND_RECORD_RELEASE to the release being recorded");
        let env = ClaudeEnvBuilder::new(stand_in.base_url())
            .show_trust_dialog(trust_dialog)
            .build();
        Recorder {
            claude: PtyClaude::spawn(&env),
            marks: Vec::new(),
            name,
            release,
            _env: env,
        }
    }

    /// Waits for `what` to show, then marks `state` at that screen.
    fn mark_when(
        &mut self,
        state: &str,
        note: &str,
        timeout: Duration,
        what: impl Fn(&str) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let (screen, offset) = self.claude.screen_at();
            if what(&screen) {
                self.marks.push(json!({
                    "offset": offset, "state": state, "note": note,
                    "cols": COLS, "rows": ROWS, "screen": screen,
                }));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: never saw the screen for `{note}`; screen:\n{screen}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn save(self) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../missiond-core/tests/fixtures")
            .join(format!("claude-code-{}", self.release));
        std::fs::create_dir_all(&dir).expect("fixtures dir");
        let stem = dir.join(format!("{}-{COLS}x{ROWS}", self.name));
        std::fs::write(stem.with_extension("bin"), self.claude.output()).expect("write bin");
        let json = json!({
            "cols": COLS, "rows": ROWS, "claude_code": self.release, "marks": self.marks,
        });
        let text = serde_json::to_string_pretty(&json).expect("json");
        std::fs::write(stem.with_extension("json"), text + "\n").expect("write json");
        eprintln!("recorded {}", stem.display());
    }
}

const STEP: Duration = Duration::from_secs(60);

/// The idle prompt box: a `❯` row between two rules, and the scripted text above it.
fn prompt_box(screen: &str) -> bool {
    let lines: Vec<&str> = screen.lines().collect();
    lines
        .windows(3)
        .any(|w| w[0].starts_with("────") && w[1].starts_with('❯') && w[2].starts_with("────"))
}

/// A dialog drawn whole: its footer (drawn last) is on screen and no prompt box.
fn dialog_whole(screen: &str) -> bool {
    let lower = screen.to_lowercase();
    (lower.contains("esc to cancel")
        || lower.contains("esc to exit")
        || lower.contains("enter to confirm"))
        && !prompt_box(screen)
}

#[test]
#[ignore = "records fixtures: run by hand (see the module docs)"]
fn record_startup_trust() {
    let stand_in = StandIn::start([]);
    let mut r = Recorder::start("startup_trust", &stand_in, true);
    r.mark_when("confirming", "trust dialog", STEP, |s| {
        s.to_lowercase().contains("trust") && dialog_whole(s)
    });
    // Select the option that trusts (2.1.3xx selects "No, exit" first), one key at a time,
    // then Enter; Claude Code may redraw the dialog once and drop an early key, so keys are
    // pressed until the screen shows their effect.
    let trusting = |s: &str| {
        s.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("❯ Yes") || l.starts_with("❯ 1. Yes")
        })
    };
    // Claude Code redraws a fresh trust dialog (selection reset) about a second after the first.
    std::thread::sleep(Duration::from_millis(2500));
    let deadline = Instant::now() + STEP;
    while !trusting(&r.claude.screen_text()) {
        assert!(
            Instant::now() < deadline,
            "never selected Yes:\n{}",
            r.claude.screen_text()
        );
        r.claude.send(b"\x1b[B");
        let _ = r.claude.poll_screen(Duration::from_secs(2), trusting);
    }
    r.claude.answer_dialog(b"\r", |s| {
        s.to_lowercase().contains("trust") && dialog_whole(s)
    });
    r.mark_when("idle", "prompt after the trust dialog", STEP, prompt_box);
    r.save();
}

#[test]
#[ignore = "records fixtures: run by hand (see the module docs)"]
fn record_bash_permission() {
    let gate = Gate::new();
    // A command with a side effect outside the project: read-only commands run unasked.
    let outside = tempfile::tempdir().expect("temp dir");
    let command = format!(
        "sleep 6; touch {}",
        outside.path().join("slept.txt").display()
    );
    let stand_in = StandIn::start([
        Turn::bash(&command, "Nap a while").held_by(&gate),
        Turn::text("Slept well."),
    ]);
    let mut r = Recorder::start("bash_permission", &stand_in, false);
    r.mark_when("idle", "ready", STEP, prompt_box);
    r.claude.submit_prompt("take a nap");
    stand_in.wait_for_main_requests(1, STEP);
    std::thread::sleep(Duration::from_secs(2)); // the turn is held: busy for as long as we like
    r.mark_when("thinking", "turn held by the stand-in", STEP, |_| true);
    gate.open();
    r.mark_when("confirming", "Bash permission dialog", STEP, |s| {
        s.contains("sleep 6") && dialog_whole(s)
    });
    r.claude
        .answer_dialog(b"\r", |s| s.contains("sleep 6") && dialog_whole(s));
    std::thread::sleep(Duration::from_secs(4)); // the 6 s command is running
    r.mark_when("thinking", "Bash command running", STEP, |s| {
        !s.contains("Slept well.")
    });
    r.mark_when("idle", "answered after the tool", STEP, |s| {
        s.contains("Slept well.") && prompt_box(s)
    });
    r.save();
}

#[test]
#[ignore = "records fixtures: run by hand (see the module docs)"]
fn record_write_permission() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("notes.txt");
    let stand_in = StandIn::start([
        Turn::write(target.to_string_lossy(), "hello\n"),
        Turn::text("Understood."),
    ]);
    let mut r = Recorder::start("write_permission", &stand_in, false);
    r.mark_when("idle", "ready", STEP, prompt_box);
    r.claude.submit_prompt("write the notes");
    r.mark_when("confirming", "Write permission dialog", STEP, |s| {
        s.contains("notes.txt") && dialog_whole(s)
    });
    r.claude
        .answer_dialog(b"\x1b", |s| s.contains("notes.txt") && dialog_whole(s));
    r.mark_when("idle", "refused", STEP, |s| {
        prompt_box(s) && !dialog_whole(s)
    });
    assert!(!target.exists(), "the refused write must not happen");
    r.save();
}

#[test]
#[ignore = "records fixtures: run by hand (see the module docs)"]
fn record_api_retry() {
    let mut turns: Vec<Turn> = (0..3)
        .map(|_| Turn::api_error(500, "stand-in is having a bad day"))
        .collect();
    turns.push(Turn::text("Recovered."));
    let stand_in = StandIn::start(turns);
    let mut r = Recorder::start("api_retry", &stand_in, false);
    r.mark_when("idle", "ready", STEP, prompt_box);
    r.claude.submit_prompt("are you there?");
    r.mark_when(
        "error",
        "API call failed, retrying",
        Duration::from_secs(120),
        |s| {
            let s = s.to_lowercase();
            s.contains("retrying") && s.contains("attempt")
        },
    );
    r.mark_when("idle", "recovered", Duration::from_secs(180), |s| {
        s.contains("Recovered.") && prompt_box(s)
    });
    r.save();
}

#[test]
#[ignore = "records fixtures: run by hand (see the module docs)"]
fn record_api_error() {
    let stand_in = StandIn::start([
        Turn::api_error(403, "stand-in refuses this request"),
        Turn::text("Back again."),
    ]);
    let mut r = Recorder::start("api_error", &stand_in, false);
    r.mark_when("idle", "ready", STEP, prompt_box);
    r.claude.submit_prompt("please fail");
    stand_in.wait_for_main_requests(1, STEP);
    r.mark_when("error", "turn ended in an API error", STEP, |s| {
        s.contains("stand-in refuses this request") && prompt_box(s)
    });
    std::thread::sleep(Duration::from_secs(2));
    r.mark_when("error", "still the error, nothing typed", STEP, |_| true);
    r.claude.submit_prompt("try again");
    r.mark_when("idle", "the next prompt answered", STEP, |s| {
        s.contains("Back again.") && prompt_box(s)
    });
    r.save();
}
