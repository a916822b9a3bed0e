//! End to end with the real Claude Code (issues 4 and 5): the pinned CLI runs in a slot of a
//! real `missiond serve`, against the scripted Messages API stand-in, and is driven only
//! through the daemon's CLI, REST and WebSocket interfaces, as a user would.
//!
//! Each test has its own stand-in, daemon and slot. The slot's environment carries the Claude
//! Code test set-up (HOME, the API stand-in, pre-answered start-up dialogs) and points
//! `CLAUDE_CONFIG_DIR` at the daemon's own claude dir, so the daemon sees the session and task
//! files this Claude Code writes. The tests take turns (one Claude Code at a time): the
//! machine's two cores are shared and Claude Code's start-up is heavy.
//!
//! Needs the pinned CLI: run `scripts/install-e2e-tools.sh` once.

mod support;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use missiond_core::protocol::{Dialog, DialogKind, Meaning, SemanticState, SlotInfo, StateReply};
use serde_json::{json, Value};
use support::claude_env::{ClaudeEnv, ClaudeEnvBuilder};
use support::daemon::{poll, Daemon};
use support::stand_in::{Gate, StandIn, Turn};
use support::ws_log::WsLog;

/// Per step: generous, the cores are shared with parallel builds and other engineers' tests.
const STEP: Duration = Duration::from_secs(60);
const STEP_SECS: &str = "60";
const SLOT: &str = "cc";

/// One Claude Code at a time (see the module docs).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything one test runs: the stand-in, the daemon, Claude Code's directories, and a
/// recording of the daemon's `/events` stream from before the slot existed.
struct Rig {
    stand_in: StandIn,
    events: WsLog,
    env: ClaudeEnv,
    daemon: Daemon,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    /// Starts the stand-in with `turns`, a daemon, and Claude Code `release` in slot [`SLOT`].
    fn start(release: &str, turns: Vec<Turn>, trust_dialog: bool) -> Rig {
        let serial = serial();
        let stand_in = StandIn::start(turns);
        let daemon = Daemon::start();
        let env = ClaudeEnvBuilder::new(stand_in.base_url())
            .release(release)
            .show_trust_dialog(trust_dialog)
            .claude_dir(daemon.dir().join("claude"))
            .build();
        let events = WsLog::connect(&daemon, "/events");
        let rig = Rig {
            stand_in,
            events,
            env,
            daemon,
            _serial: serial,
        };
        rig.launch();
        rig
    }

    /// `POST /api/slots` with the Claude Code command and environment.
    fn launch(&self) {
        let (command, args, env, cwd) = self.env.launch();
        let spec = json!({
            "id": SLOT,
            "command": command,
            "args": args,
            "cwd": cwd,
            "env": env,
            "profile": "claude-code",
            "cols": 120,
            "rows": 40,
        });
        let (status, body) = self.daemon.http(
            "POST",
            "/api/slots",
            Some(&self.daemon.token),
            Some(("application/json", spec.to_string().into_bytes())),
        );
        assert_eq!(status, 201, "creating the slot failed: {body}");
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.daemon.cli(args);
        assert!(
            out.status.success(),
            "`missiond {}` failed ({}):\nstdout: {}\nstderr: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.context()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `missiond wait SLOT --state S`; fails the test with the slot's screen and history.
    fn wait_state(&self, state: &str) -> StateReply {
        let out = self.cli_ok(&[
            "--json",
            "wait",
            SLOT,
            "--state",
            state,
            "--timeout",
            STEP_SECS,
        ]);
        parse(&out)
    }

    /// `missiond prompt SLOT TEXT --wait`: the state the turn ended in.
    fn prompt_wait(&self, text: &str) -> StateReply {
        let out = self.cli_ok(&[
            "--json",
            "prompt",
            SLOT,
            text,
            "--wait",
            "--timeout",
            STEP_SECS,
        ]);
        parse(&out)
    }

    /// `prompt --wait` for a turn that must end in a dialog of `kind`: that dialog.
    fn prompt_for_dialog(&self, text: &str, kind: DialogKind) -> (StateReply, Dialog) {
        let reply = self.prompt_wait(text);
        assert_eq!(reply.state, SemanticState::Confirming, "{}", self.context());
        let dialog = reply
            .state_detail
            .dialog
            .clone()
            .unwrap_or_else(|| panic!("confirming without a dialog\n{}", self.context()));
        assert_eq!(dialog.kind, kind, "{dialog:?}");
        (reply, dialog)
    }

    /// `missiond confirm SLOT N`.
    fn confirm(&self, n: u32) {
        self.cli_ok(&["--json", "confirm", SLOT, &n.to_string()]);
    }

    /// `GET /api/slots/SLOT`.
    fn info(&self) -> SlotInfo {
        let (status, body) = self.daemon.http(
            "GET",
            &format!("/api/slots/{SLOT}"),
            Some(&self.daemon.token),
            None,
        );
        assert_eq!(status, 200, "GET /api/slots/{SLOT}: {body}");
        parse(&body)
    }

    fn screen_text(&self) -> String {
        self.daemon.screen(SLOT).text
    }

    /// Polls the screen until `pred` holds.
    fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        poll(STEP, || {
            let text = self.screen_text();
            pred(&text).then_some(text)
        })
        .unwrap_or_else(|| panic!("the screen never showed {what}\n{}", self.context()))
    }

    /// The states the slot went through, from `/events`, oldest first.
    fn states(&self) -> Vec<String> {
        self.events
            .frames()
            .iter()
            .filter(|f| f["type"] == "slot_state" && f["slotId"] == SLOT)
            .filter_map(|f| f["state"].as_str().map(str::to_string))
            .collect()
    }

    /// What a failure message needs: the slot, its screen, the states it went through, the
    /// requests the stand-in got and the daemon's log.
    fn context(&self) -> String {
        let (_, info) = self.daemon.http(
            "GET",
            &format!("/api/slots/{SLOT}"),
            Some(&self.daemon.token),
            None,
        );
        let screen = self.daemon.cli(&["screen", SLOT]).stdout;
        let requests: Vec<String> = self
            .stand_in
            .requests()
            .iter()
            .map(|r| {
                format!(
                    "{:?} {} {} user={:?}",
                    r.kind,
                    r.method,
                    r.path,
                    r.user_texts()
                )
            })
            .collect();
        format!(
            "slot: {info}\nstates: {:?}\nscreen:\n{}\nstand-in requests: {requests:#?}\ndaemon log:\n{}",
            self.states(),
            String::from_utf8_lossy(&screen),
            self.daemon.log()
        )
    }

    /// The slot becomes idle at the prompt (Claude Code has drawn its prompt box).
    fn wait_ready(&self) {
        let reply = self.wait_state("idle");
        assert_eq!(reply.state, SemanticState::Idle);
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("unexpected JSON ({e}): {text}"))
}

fn is_busy(state: &str) -> bool {
    matches!(state, "thinking" | "tool_running" | "responding")
}

/// The start-up trust dialog is a `trust` confirmation; answering "Yes, I trust this folder"
/// through `missiond confirm` lets Claude Code start.
fn trust_dialog_is_confirmed_and_claude_starts(release: &str) {
    let rig = Rig::start(release, vec![], true);
    let reply = rig.wait_state("confirming");
    let dialog = reply
        .state_detail
        .dialog
        .unwrap_or_else(|| panic!("confirming without a dialog\n{}", rig.context()));
    assert_eq!(dialog.kind, DialogKind::Trust, "{dialog:?}");
    let trust = dialog
        .options
        .iter()
        .find(|o| o.label.starts_with("Yes"))
        .unwrap_or_else(|| panic!("no Yes option in {dialog:?}"));
    assert!(
        dialog.options.iter().any(|o| o.label.starts_with("No")),
        "no No option in {dialog:?}"
    );
    assert_eq!(trust.meaning, Some(Meaning::Yes), "{dialog:?}");
    assert!(
        dialog
            .options
            .iter()
            .any(|o| o.label.starts_with("No") && o.meaning == Some(Meaning::No)),
        "{dialog:?}"
    );
    rig.cli_ok(&["--json", "confirm", SLOT, "--yes"]);
    rig.wait_ready();
    let info = rig.info();
    assert_eq!(info.state, SemanticState::Idle);
    assert_eq!(info.claude_version.as_deref(), Some(release), "{info:?}");
    assert!(
        rig.info().pid.is_some_and(support::daemon::alive),
        "Claude Code should run after the trust dialog\n{}",
        rig.context()
    );
}

/// `prompt --wait`: the slot is busy while the stand-in holds the answer, the CLI returns
/// `idle` once the answer is in, and the model got the prompt text.
fn prompt_wait_goes_busy_then_idle(release: &str) {
    let gate = Gate::new();
    let rig = Rig::start(
        release,
        vec![Turn::text("Hello from the stand-in.").held_by(&gate)],
        false,
    );
    rig.wait_ready();

    let prompt = std::thread::scope(|s| {
        let waiting = s.spawn(|| rig.prompt_wait("hello"));
        rig.events.wait_for("a busy state of the slot", |f| {
            f["type"] == "slot_state"
                && f["slotId"] == SLOT
                && f["state"].as_str().is_some_and(is_busy)
        });
        assert!(
            is_busy(rig.info().state.as_str()),
            "REST should say busy while the answer is held\n{}",
            rig.context()
        );
        gate.open();
        waiting.join().expect("prompt thread")
    });
    assert_eq!(prompt.state, SemanticState::Idle, "{}", rig.context());
    rig.wait_screen("the scripted answer", |s| {
        s.contains("Hello from the stand-in.")
    });
    let requests = rig.stand_in.wait_for_main_requests(1, STEP);
    assert_eq!(
        requests[0].user_texts().last().map(String::as_str),
        Some("hello")
    );
    assert_eq!(rig.info().state, SemanticState::Idle);
    let states = rig.states();
    assert_eq!(
        states.last().map(String::as_str),
        Some("idle"),
        "{states:?}"
    );
}

/// A Bash call with a side effect asks permission: `confirming` with a `permission` dialog
/// naming the command, its options carrying meanings; `confirm --yes` runs it.
fn bash_permission_confirmed_runs_the_command(release: &str) {
    let outside = tempfile::tempdir().expect("temp dir");
    let flag = outside.path().join("flag.txt");
    let command = format!("touch {}", flag.display());
    let rig = Rig::start(
        release,
        vec![
            Turn::bash(&command, "Create the flag file"),
            Turn::text("The flag is set."),
        ],
        false,
    );
    rig.wait_ready();

    let (_, dialog) = rig.prompt_for_dialog("set the flag", DialogKind::Permission);
    assert!(
        dialog.body.contains(&command),
        "the command should be the body: {dialog:?}"
    );
    let labels: Vec<&str> = dialog.options.iter().map(|o| o.label.as_str()).collect();
    assert!(labels.len() >= 2, "{dialog:?}");
    assert!(labels[0].starts_with("Yes"), "{labels:?}");
    assert_eq!(labels.last().copied(), Some("No"), "{labels:?}");
    assert_eq!(dialog.options[0].n, 1);
    assert_eq!(dialog.options[0].meaning, Some(Meaning::Yes), "{dialog:?}");
    assert_eq!(
        dialog.options.last().and_then(|o| o.meaning),
        Some(Meaning::No),
        "{dialog:?}"
    );
    assert!(!flag.exists(), "nothing runs before the answer");

    rig.cli_ok(&["--json", "confirm", SLOT, "--yes"]);
    let requests = rig.stand_in.wait_for_main_requests(2, STEP);
    let results = requests[1].tool_results();
    assert!(
        results.iter().any(|r| !r.is_error),
        "the model should get the command's result: {results:?}"
    );
    assert!(flag.exists(), "the command should have run");
    rig.wait_screen("the answer after the tool", |s| {
        s.contains("The flag is set.")
    });
    rig.wait_state("idle");
    assert_eq!(rig.info().state, SemanticState::Idle);
}

/// A Bash command that takes a while (`sleep 8`, confirmed with option 1) is `tool_running`
/// while it runs (the `tool-running` rule: about 3 s in, Claude Code adds the elapsed time and
/// `(ctrl+b to run in background)` to the tool's block), then the turn ends `idle` with the
/// command done.
fn a_running_bash_command_is_tool_running_then_idle(release: &str) {
    let outside = tempfile::tempdir().expect("temp dir");
    let flag = outside.path().join("slept.txt");
    let command = format!("sleep 8; touch {}", flag.display());
    let rig = Rig::start(
        release,
        vec![
            Turn::bash(&command, "Nap a while"),
            Turn::text("Slept well."),
        ],
        false,
    );
    rig.wait_ready();

    let (_, dialog) = rig.prompt_for_dialog("take a nap", DialogKind::Permission);
    assert!(dialog.body.contains(&command), "{dialog:?}");

    rig.confirm(1);
    let running = rig.events.wait_for("the slot in tool_running", |f| {
        f["type"] == "slot_state" && f["slotId"] == SLOT && f["state"] == "tool_running"
    });
    // The screen's rule, or Claude Code's PreToolUse hook naming the tool (issue 13).
    let reason = running["detail"]["reason"].as_str().unwrap_or("");
    assert!(
        reason == "tool-running" || running["detail"]["tool"]["name"] == "Bash",
        "{running:#}"
    );
    assert!(
        !flag.exists(),
        "tool_running should be reported while the command still runs\n{}",
        rig.context()
    );

    rig.wait_state("idle");
    assert!(
        flag.exists(),
        "the command should have run\n{}",
        rig.context()
    );
    let requests = rig.stand_in.wait_for_main_requests(2, STEP);
    assert!(
        requests[1].tool_results().iter().any(|r| !r.is_error),
        "the model should get the command's result: {:?}",
        requests[1].tool_results()
    );
    rig.wait_screen("the answer after the tool", |s| s.contains("Slept well."));
    assert_eq!(rig.info().state, SemanticState::Idle);
    let states = rig.states();
    let confirming = states.iter().position(|s| s == "confirming");
    let running = states.iter().rposition(|s| s == "tool_running");
    assert!(
        confirming.is_some() && running.is_some() && confirming < running,
        "tool_running should follow the dialog: {states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("idle"),
        "{states:?}"
    );
}

/// An AskUserQuestion call is a `question` dialog (the `question-dialog` rule): `confirming`
/// with the question and the model's options, numbered as on screen; `confirm 2` picks the
/// second option, and the model gets it as the tool's result.
fn ask_user_question_is_a_question_dialog_and_confirm_answers_it(release: &str) {
    let question = "Which colour do you like?";
    let rig = Rig::start(
        release,
        vec![
            Turn::ask_user_question("Colour", question, &["Red", "Blue"]),
            Turn::text("Blue it is."),
        ],
        false,
    );
    rig.wait_ready();

    let (reply, dialog) = rig.prompt_for_dialog("pick a colour", DialogKind::Question);
    assert_eq!(
        reply.state_detail.reason.as_deref(),
        Some("question-dialog"),
        "{}",
        rig.context()
    );
    assert_eq!(dialog.question, question, "{dialog:?}");
    let labels: Vec<&str> = dialog.options.iter().map(|o| o.label.as_str()).collect();
    assert!(labels.len() >= 2, "{dialog:?}");
    assert_eq!(&labels[..2], ["Red", "Blue"], "{dialog:?}");
    let numbers: Vec<u32> = dialog.options.iter().map(|o| o.n).collect();
    let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
    assert_eq!(numbers, expected, "{dialog:?}");
    assert!(dialog.options[0].selected, "{dialog:?}");
    assert_eq!(
        dialog.options.iter().filter(|o| o.selected).count(),
        1,
        "{dialog:?}"
    );
    // REST shows the same dialog.
    let info = rig.info();
    assert_eq!(info.state, SemanticState::Confirming);
    assert_eq!(info.state_detail.dialog.as_ref(), Some(&dialog));
    assert_eq!(
        rig.stand_in.main_requests().len(),
        1,
        "nothing is sent before the answer"
    );

    rig.confirm(2);
    let requests = rig.stand_in.wait_for_main_requests(2, STEP);
    let ask_id = requests[1]
        .body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "assistant")
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .find(|b| b["type"] == "tool_use" && b["name"] == "AskUserQuestion")
        .and_then(|b| b["id"].as_str())
        .unwrap_or_else(|| panic!("no AskUserQuestion call in {:#}", requests[1].body))
        .to_string();
    let results = requests[1].tool_results();
    let answer = results
        .iter()
        .find(|r| r.tool_use_id == ask_id)
        .unwrap_or_else(|| panic!("no result for the AskUserQuestion call: {results:?}"));
    assert!(!answer.is_error, "{answer:?}");
    assert!(
        answer.content.contains("Blue") && !answer.content.contains("Red"),
        "the model should be told the answer was Blue: {answer:?}"
    );
    assert!(answer.content.contains(question), "{answer:?}");
    rig.wait_screen("the answer after the question", |s| {
        s.contains("Blue it is.")
    });
    rig.wait_state("idle");
    assert_eq!(rig.info().state, SemanticState::Idle);
    assert!(
        rig.states().iter().any(|s| s == "confirming"),
        "{:?}",
        rig.states()
    );
}

/// A Write refused through `confirm`: no file, no request to the model, back to idle. `how` is
/// the confirm's arguments after the slot id, or `None` for the number of the "No" option.
fn refuse_write(release: &str, how: Option<&[&str]>) {
    let rig = Rig::start(release, vec![], false);
    let target = rig.env.project_dir.join("notes.txt");
    rig.stand_in
        .push(Turn::write(target.to_string_lossy(), "should not exist\n"));
    rig.wait_ready();

    let (_, dialog) = rig.prompt_for_dialog("write the notes", DialogKind::Permission);
    assert!(dialog.question.contains("notes.txt"), "{dialog:?}");
    let no = dialog
        .options
        .iter()
        .find(|o| o.label == "No")
        .unwrap_or_else(|| panic!("no `No` option in {dialog:?}"));
    assert!(no.n > 1, "{dialog:?}");
    assert_eq!(no.meaning, Some(Meaning::No), "{dialog:?}");

    let number = no.n.to_string();
    let args: Vec<&str> = match how {
        Some(how) => ["--json", "confirm", SLOT]
            .iter()
            .chain(how)
            .copied()
            .collect(),
        None => vec!["--json", "confirm", SLOT, number.as_str()],
    };
    rig.cli_ok(&args);
    rig.wait_screen("the refusal", |s| {
        let s = s.to_lowercase();
        s.contains("rejected") || s.contains("interrupted")
    });
    rig.wait_state("idle");
    assert_eq!(rig.info().state, SemanticState::Idle);
    assert!(!target.exists(), "a refused Write must not create the file");
    assert_eq!(
        rig.stand_in.main_requests().len(),
        1,
        "a refusal sends no request"
    );
}

/// A Write refused with `confirm N`, N the number of its "No" option (3 on 2.1.200, where a
/// burst of arrows and Enter used to submit option 1 and write the file).
fn write_refused_by_number_leaves_no_file(release: &str) {
    refuse_write(release, None);
}

/// A Write refused with `confirm --no` (`{"answer": "no"}`).
fn write_refused_by_meaning_leaves_no_file(release: &str) {
    refuse_write(release, Some(&["--no"]));
}

/// `/exit` typed through `prompt` ends Claude Code: the slot is `exited`.
fn exit_command_ends_the_slot(release: &str) {
    let rig = Rig::start(release, vec![], false);
    rig.wait_ready();
    let pid = rig.info().pid.expect("a running slot has a pid");
    rig.cli_ok(&["prompt", SLOT, "/exit"]);
    let reply = rig.wait_state("exited");
    assert_eq!(reply.state, SemanticState::Exited);
    assert!(
        poll(STEP, || (!support::daemon::alive(pid)).then_some(())).is_some(),
        "Claude Code (pid {pid}) should be gone"
    );
    rig.events.wait_for("slot_exited with status 0", |f| {
        f["type"] == "slot_exited" && f["slotId"] == SLOT && f["code"] == 0
    });
    assert!(
        !rig.env.sessions_dir().join(format!("{pid}.json")).exists(),
        "Claude Code removes its session file on /exit"
    );
}

/// A model answer that quotes a dialog and a spinner footer is transcript, not a dialog: the
/// slot stays `idle` and never enters `confirming`.
fn quoted_dialog_text_in_an_answer_is_not_a_dialog(release: &str) {
    let prose = "Here is what the dialog looked like:\n\n\
                 Do you want to proceed?\n\
                 ❯ 1. Yes\n  \
                 2. No\n\n\
                 and the footer said esc to interrupt while it ran.";
    let rig = Rig::start(release, vec![Turn::text(prose)], false);
    rig.wait_ready();

    let reply = rig.prompt_wait("show me the dialog");
    assert_eq!(reply.state, SemanticState::Idle, "{}", rig.context());
    rig.wait_screen("the quoted prose", |s| {
        s.contains("Do you want to proceed?") && s.contains("esc to interrupt")
    });
    // Look again over about two seconds: the screen settles (cursor, footer redraws) after the
    // answer, and none of that may turn the quote into a dialog.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(rig.info().state, SemanticState::Idle, "{}", rig.context());
        std::thread::sleep(Duration::from_millis(250));
    }
    let states = rig.states();
    assert!(
        !states.iter().any(|s| s == "confirming"),
        "the slot entered confirming: {states:?}\n{}",
        rig.context()
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("idle"),
        "{states:?}"
    );
}

/// Issue 5: a scripted TaskCreate and TaskUpdate(in_progress) in a slot reach `/tasks` as
/// `cc_tasks_changed` and `cc_task_started`, carrying the slot's id and the subjects sent.
fn task_tools_in_a_slot_reach_the_tasks_stream_with_the_slot_id(release: &str) {
    let subject = "Design the API";
    let rig = Rig::start(
        release,
        vec![
            Turn::task_create(subject, "Design it", "Designing the API"),
            Turn::task_update("1", "in_progress"),
            Turn::text("Task started."),
        ],
        false,
    );
    let tasks = WsLog::connect(&rig.daemon, "/tasks");
    rig.wait_ready();

    let reply = rig.prompt_wait("plan the work");
    assert_eq!(reply.state, SemanticState::Idle, "{}", rig.context());
    let requests = rig.stand_in.wait_for_main_requests(3, STEP);
    assert!(
        requests[1]
            .tool_results()
            .iter()
            .any(|r| r.content.contains(subject) && !r.is_error),
        "TaskCreate should have succeeded: {:?}",
        requests[1].tool_results()
    );

    let has_subject = |tasks: &Value, status: Option<&str>| {
        tasks.as_array().is_some_and(|list| {
            list.iter()
                .any(|t| t["subject"] == subject && status.is_none_or(|s| t["status"] == s))
        })
    };
    let changed = tasks.wait_for("cc_tasks_changed for the slot", |f| {
        f["type"] == "cc_tasks_changed"
            && f["payload"]["slotId"] == SLOT
            && has_subject(&f["payload"]["tasks"], None)
    });
    let session = requests[0].session_id().expect("the session id header");
    assert_eq!(
        changed["payload"]["sessionId"],
        session.as_str(),
        "{changed:#}"
    );
    let started = tasks.wait_for("cc_task_started for the slot", |f| {
        f["type"] == "cc_task_started" && f["payload"]["slotId"] == SLOT
    });
    let started_json = started.to_string();
    assert!(
        started_json.contains(subject),
        "cc_task_started should name the task: {started:#}"
    );
    assert_eq!(
        started["payload"]["sessionId"],
        session.as_str(),
        "{started:#}"
    );
}

/// Escape during a turn interrupts it: busy while the stand-in holds the answer, then `idle`
/// with the turn abandoned (the prompt back in the prompt box, or "Interrupted"), and the next
/// prompt is answered.
fn escape_interrupts_a_turn(release: &str) {
    let gate = Gate::new();
    let rig = Rig::start(
        release,
        vec![
            Turn::text("This answer is never shown.").held_by(&gate),
            Turn::text("Still here."),
        ],
        false,
    );
    rig.wait_ready();
    rig.cli_ok(&["prompt", SLOT, "think about it for a long time"]);
    rig.events.wait_for("a busy state of the slot", |f| {
        f["type"] == "slot_state" && f["slotId"] == SLOT && f["state"].as_str().is_some_and(is_busy)
    });
    // The held request has reached the stand-in (and taken the first turn) before the Escape.
    rig.stand_in.wait_for_main_requests(1, STEP);
    rig.cli_ok(&["send", SLOT, "\x1b"]);
    // Interrupted before any answer came, Claude Code puts the prompt back in the prompt box;
    // later, it says "Interrupted".
    rig.wait_screen("the interruption", |s| {
        s.contains("Interrupted")
            || s.lines()
                .any(|l| l.starts_with('❯') && l.contains("think about it for a long time"))
                && !s.contains("esc to interrupt")
    });
    rig.wait_state("idle");
    gate.open();
    let reply = rig.prompt_wait("are you there?");
    assert_eq!(reply.state, SemanticState::Idle, "{}", rig.context());
    rig.wait_screen("the next answer", |s| s.contains("Still here."));
    assert!(
        !rig.screen_text().contains("This answer is never shown."),
        "{}",
        rig.context()
    );
}

/// API calls that fail with 500 are retried by Claude Code: the slot is `error` with
/// `stateDetail.error.reason == "api_retry"` and the attempt, then the turn recovers to idle.
fn api_retries_are_an_error_until_the_turn_recovers(release: &str) {
    let mut turns: Vec<Turn> = (0..RETRIED_FAILURES)
        .map(|_| Turn::api_error(500, "stand-in is having a bad day"))
        .collect();
    turns.push(Turn::text("Recovered."));
    let rig = Rig::start(release, turns, false);
    rig.wait_ready();
    rig.cli_ok(&["prompt", SLOT, "are you there?"]);
    let retry = rig
        .events
        .wait_for("the slot in error with api_retry", |f| {
            f["type"] == "slot_state"
                && f["slotId"] == SLOT
                && f["state"] == "error"
                && f["detail"]["error"]["reason"] == "api_retry"
        });
    let error = &retry["detail"]["error"];
    let attempt = error["attempt"]
        .as_u64()
        .unwrap_or_else(|| panic!("{retry:#}"));
    let of = error["of"].as_u64().unwrap_or_else(|| panic!("{retry:#}"));
    assert!(attempt >= 1 && of >= attempt, "{retry:#}");
    assert!(error["message"].is_string(), "{retry:#}");
    // The countdown is read while it shows (2.1.332 ends each with `retrying…`, no seconds).
    rig.events.wait_for("an api_retry with its countdown", |f| {
        f["type"] == "slot_state"
            && f["slotId"] == SLOT
            && f["detail"]["error"]["reason"] == "api_retry"
            && f["detail"]["error"]["retryInSecs"].is_u64()
    });
    rig.wait_screen("the recovered answer", |s| s.contains("Recovered."));
    rig.wait_state("idle");
    // `wait` answers from the slot's state; its `/events` frame may still be on the way.
    let states = poll(STEP, || {
        let states = rig.states();
        (states.last().map(String::as_str) == Some("idle")).then_some(states)
    })
    .unwrap_or_else(|| rig.states());
    assert_eq!(
        states.last().map(String::as_str),
        Some("idle"),
        "{states:?}"
    );
}

/// How many 500s the stand-in answers before it recovers: enough for Claude Code to show its
/// retry line (from the first attempt on, counting down 1 s, 2 s, 3 s between them).
const RETRIED_FAILURES: usize = 3;

/// A turn that ends in an API error (403: not retried; 2.1.332 retries a 400 silently) leaves
/// the slot `error` with `reason: "api_error"` until the next prompt, which is taken and answered.
fn an_api_error_is_error_until_the_next_prompt(release: &str) {
    let rig = Rig::start(
        release,
        vec![
            Turn::api_error(403, "stand-in refuses this request"),
            Turn::text("Back again."),
        ],
        false,
    );
    rig.wait_ready();
    let reply = rig.prompt_wait("please fail");
    assert_eq!(reply.state, SemanticState::Error, "{}", rig.context());
    let error = reply.state_detail.error.clone().unwrap_or_default();
    assert_eq!(error.reason, "api_error", "{reply:?}");
    assert!(
        error
            .message
            .as_deref()
            .is_some_and(|m| m.contains("stand-in refuses")),
        "{reply:?}"
    );
    // Nothing on screen changes while nobody types: still error a little later.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rig.info().state, SemanticState::Error, "{}", rig.context());
    let reply = rig.prompt_wait("try again");
    assert_eq!(reply.state, SemanticState::Idle, "{}", rig.context());
    rig.wait_screen("the next answer", |s| s.contains("Back again."));
}

/// Every test it names, once per release of the matrix (`support::claude_env::RELEASES`, kept
/// equal to this list): `cargo test -p missiond --test claude_e2e v2_1_200` runs one release.
macro_rules! on_every_release {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[test]
            fn v2_1_330() {
                super::$test("2.1.330")
            }
            #[test]
            fn v2_1_332() {
                super::$test("2.1.332")
            }
            #[test]
            fn v2_1_200() {
                super::$test("2.1.200")
            }
        }
    )*};
}

on_every_release!(
    trust_dialog_is_confirmed_and_claude_starts,
    prompt_wait_goes_busy_then_idle,
    bash_permission_confirmed_runs_the_command,
    a_running_bash_command_is_tool_running_then_idle,
    ask_user_question_is_a_question_dialog_and_confirm_answers_it,
    write_refused_by_number_leaves_no_file,
    write_refused_by_meaning_leaves_no_file,
    exit_command_ends_the_slot,
    quoted_dialog_text_in_an_answer_is_not_a_dialog,
    task_tools_in_a_slot_reach_the_tasks_stream_with_the_slot_id,
    escape_interrupts_a_turn,
    api_retries_are_an_error_until_the_turn_recovers,
    an_api_error_is_error_until_the_next_prompt,
    a_conversation_resumes_after_the_daemon_is_killed,
    claude_code_runs_on_through_an_upgrade,
);

#[test]
fn the_matrix_is_the_list_of_releases() {
    assert_eq!(
        support::claude_env::RELEASES,
        ["2.1.330", "2.1.332", "2.1.200"],
        "on_every_release! and RELEASES must name the same releases"
    );
}

/// Issue 14: a prompt, then SIGKILL of the daemon, then `missiond serve` again. The slot comes
/// back resumed (`--resume` of the same session), its screen or scrollback shows the earlier
/// exchange, and a new `prompt --wait` is answered with the earlier exchange in its context.
fn a_conversation_resumes_after_the_daemon_is_killed(release: &str) {
    let mut rig = Rig::start(
        release,
        vec![
            Turn::text("The first answer is forty-two."),
            Turn::text("The second answer remembers the first."),
        ],
        false,
    );
    rig.wait_ready();
    let reply = rig.prompt_wait("first question");
    assert_eq!(reply.state, SemanticState::Idle, "{}", rig.context());
    rig.wait_screen("the first answer", |s| {
        s.contains("The first answer is forty-two.")
    });
    let before = rig.info();
    let old_pid = before.pid.expect("a running slot has a pid");
    let session = poll(STEP, || rig.env.session_file(old_pid))
        .and_then(|f| f["sessionId"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no session file for {old_pid}\n{}", rig.context()));
    // The daemon learnt the session from the session file and recorded it.
    let registry = rig.daemon.dir().join("state/missiond/slots.json");
    poll(STEP, || {
        std::fs::read_to_string(&registry)
            .ok()
            .filter(|t| t.contains(&session))
    })
    .unwrap_or_else(|| panic!("the registry never recorded session {session}"));

    rig.daemon.kill_hard();
    poll(STEP, || (!support::daemon::alive(old_pid)).then_some(()))
        .unwrap_or_else(|| panic!("the guard did not end Claude Code {old_pid}"));
    rig.daemon.start_again();
    let after = poll(STEP, || {
        let (status, body) = rig.daemon.http(
            "GET",
            &format!("/api/slots/{SLOT}"),
            Some(&rig.daemon.token),
            None,
        );
        (status == 200)
            .then(|| parse::<SlotInfo>(&body))
            .filter(|s| s.pid.is_some())
    })
    .unwrap_or_else(|| panic!("the slot did not come back\n{}", rig.daemon.log()));
    assert_eq!(
        after.restored,
        Some(missiond_core::protocol::Restored::Resumed),
        "{after:?}"
    );
    let new_pid = after.pid.expect("pid");
    assert_ne!(new_pid, old_pid);
    let resumed = poll(STEP, || rig.env.session_file(new_pid))
        .and_then(|f| f["sessionId"].as_str().map(str::to_string));
    assert_eq!(
        resumed.as_deref(),
        Some(session.as_str()),
        "same conversation"
    );
    rig.wait_ready();
    let history = rig.cli_ok(&["screen", SLOT, "--scrollback"]);
    assert!(
        history.contains("The first answer is forty-two."),
        "the earlier exchange is on the screen or in the scrollback:\n{history}"
    );
    let reply = rig.prompt_wait("second question");
    assert_eq!(reply.state, SemanticState::Idle, "{}", rig.context());
    rig.wait_screen("the second answer", |s| {
        s.contains("The second answer remembers the first.")
    });
    let requests = rig.stand_in.wait_for_main_requests(2, STEP);
    let last = requests.last().expect("a request");
    assert_eq!(
        last.user_texts(),
        ["first question", "second question"],
        "the resumed conversation carries the first exchange"
    );
    assert_eq!(last.session_id().as_deref(), Some(session.as_str()));
}

/// Columns of the logo at the left of Claude Code's header; its text starts after them.
const LOGO_COLUMNS: usize = 11;

/// An idle Claude Code screen without what Claude Code changes on its own: its logo (the
/// header's first [`LOGO_COLUMNS`] columns above the first prompt: a mascot whose eyes blink,
/// who jumps a row and waves its arms), the passing effort hint above the input box
/// ("◐ medium · /effort") and the passing hints after " · " on its last line (the mode line:
/// "⏸ manual mode on · ← for agents" drops the hint after a while).
fn settled(screen: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.trim_end().lines().collect();
    let last = lines.len().saturating_sub(1);
    let header_end = lines
        .iter()
        .position(|line| line.starts_with('❯'))
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .map(|(row, line)| {
            let line = if row == last {
                line.split(" · ").next().unwrap_or_default()
            } else if line.trim_end().ends_with("/effort") {
                ""
            } else {
                line
            };
            line.chars()
                .enumerate()
                .map(|(column, c)| {
                    let logo = (row < header_end && column < LOGO_COLUMNS)
                        || ('\u{2580}'..='\u{259F}').contains(&c);
                    if logo {
                        ' '
                    } else {
                        c
                    }
                })
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

#[test]
fn a_settled_screen_leaves_out_the_logo_s_moves_and_the_passing_hints() {
    let resting = " ▐▛███▛█   Claude Code v2.1.332\n▝▜██████▀  Opus 5.5\n ▝▝   ▝▝   /tmp/p\n\n❯ first\n\n● Answer.\n\n────\n❯\n────\n  ⏸ manual mode on";
    let jumping = "           Claude Code v2.1.332\n ▐▛███▛█   Opus 5.5\n~▜██████~  /tmp/p\n\n❯ first\n\n● Answer.\n                ◐ medium · /effort\n────\n❯\n────\n  ⏸ manual mode on · ← for agents";
    assert_eq!(settled(resting), settled(jumping));
    let waving = jumping.replace("~▜██████~", "\\▜██████/");
    assert_eq!(settled(resting), settled(&waving));
    // What the program wrote itself must still match.
    assert_ne!(
        settled(resting),
        settled(&resting.replace("Answer", "Answre"))
    );
    assert_ne!(
        settled(resting),
        settled(&resting.replace("/tmp/p", "/tmp/q"))
    );
}

/// Issue 14: a real Claude Code keeps its pid, its screen and its conversation through
/// `missiond upgrade`, and answers the next `prompt --wait`.
fn claude_code_runs_on_through_an_upgrade(release: &str) {
    let rig = Rig::start(
        release,
        vec![
            Turn::text("Before the upgrade."),
            Turn::text("After the upgrade."),
        ],
        false,
    );
    rig.wait_ready();
    let reply = rig.prompt_wait("first");
    assert_eq!(reply.state, SemanticState::Idle, "{}", rig.context());
    let screen = rig.wait_screen("the first answer", |s| s.contains("Before the upgrade."));
    let before = rig.info();
    let daemon_pid = rig.daemon.pid;
    rig.cli_ok(&["upgrade", "--binary", support::daemon::BIN]);
    assert!(support::daemon::alive(daemon_pid));
    let after = rig.info();
    assert_eq!(after.pid, before.pid, "Claude Code keeps its pid");
    assert_eq!(after.state, SemanticState::Idle, "{}", rig.context());
    // The screen the new image rebuilt is the one the old image had, but for what Claude Code
    // changes on its own while idle. A screen rebuilt wrong would not come back to it (Claude
    // Code redraws only what it changes).
    let same = poll(STEP, || {
        (settled(&rig.screen_text()) == settled(&screen)).then_some(())
    });
    assert!(
        same.is_some(),
        "not the same screen after the upgrade:\n{}\nbefore:\n{screen}",
        rig.screen_text()
    );
    let reply = rig.prompt_wait("second");
    assert_eq!(reply.state, SemanticState::Idle, "{}", rig.context());
    rig.wait_screen("the second answer", |s| s.contains("After the upgrade."));
    let requests = rig.stand_in.wait_for_main_requests(2, STEP);
    assert_eq!(
        requests.last().expect("a request").user_texts(),
        ["first", "second"]
    );
    // The second witness goes on too: the program's hooks still present the secret they were
    // started with, and the new image (whose counters start at zero) hears them.
    assert_eq!(after.session_id, before.session_id, "the same session id");
    let heard = poll(STEP, || {
        let (_, metrics) = rig
            .daemon
            .http("GET", "/metrics", Some(&rig.daemon.token), None);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("missiond_hook_events_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|n| *n >= 1.0)
    });
    assert!(
        heard.is_some(),
        "no hook heard after the upgrade: {}",
        rig.context()
    );
}
