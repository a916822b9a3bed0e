//! Claude Code's own signals, end to end with the real CLI (issue 13), on every release of the
//! matrix: the session id missiond gives it from birth, its hooks as a second witness (the tool
//! that runs, no drift while the rules are right, drift when one is broken), usage from its
//! status line, and the user's own hook and status line still running beside missiond's.
//!
//! Each test has its own stand-in, daemon and slot; the tests take turns (one Claude Code at a
//! time). Needs the releases: run `scripts/install-e2e-tools.sh` once.

mod support;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use missiond_core::protocol::signals::{CheckStatus, DoctorReport};
use missiond_core::protocol::SlotInfo;
use serde_json::{json, Value};
use support::claude_env::{ClaudeEnv, ClaudeEnvBuilder};
use support::daemon::{poll, Daemon, DaemonOptions};
use support::stand_in::{StandIn, Turn};
use support::ws_log::WsLog;

const STEP: Duration = Duration::from_secs(60);
const STEP_SECS: &str = "60";
const SLOT: &str = "cc";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A stand-in, a daemon, a Claude Code environment with the user's own Stop hook and status
/// line in its settings, and `/events` recorded from before the slot existed.
struct Rig {
    stand_in: StandIn,
    events: WsLog,
    env: ClaudeEnv,
    daemon: Daemon,
    /// The user's own Stop hook appends a line here.
    user_hook_log: std::path::PathBuf,
    _rules: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    /// `rules` is a replacement `claude-code.toml`, or `None` for the built-in rules.
    fn start(release: &str, turns: Vec<Turn>, rules: Option<String>) -> Rig {
        let serial = serial();
        let stand_in = StandIn::start(turns);
        let rules_dir = tempfile::tempdir().expect("rules dir");
        let mut options = DaemonOptions::default();
        if let Some(rules) = rules {
            std::fs::write(rules_dir.path().join("claude-code.toml"), rules).expect("rules");
            options.extra_toml = format!(
                "[semantic]\nrules_dir = {:?}\n",
                rules_dir.path().display().to_string()
            );
        }
        let daemon = Daemon::start_with(options);
        let env = ClaudeEnvBuilder::new(stand_in.base_url())
            .release(release)
            .claude_dir(daemon.dir().join("claude"))
            .build();
        let user_hook_log = env.home.join("user-stop-hook.log");
        let settings = json!({
            "hooks": {"Stop": [{"hooks": [{"type": "command",
                "command": format!("echo stopped >> '{}'", user_hook_log.display())}]}]},
            "statusLine": {"type": "command", "command": "echo USER-STATUS-LINE"},
        });
        std::fs::write(env.claude_dir.join("settings.json"), settings.to_string())
            .expect("user settings");
        let events = WsLog::connect(&daemon, "/events");
        let rig = Rig {
            stand_in,
            events,
            env,
            daemon,
            user_hook_log,
            _rules: rules_dir,
            _serial: serial,
        };
        let (command, args, env, cwd) = rig.env.launch();
        let spec = json!({"id": SLOT, "command": command, "args": args, "cwd": cwd, "env": env,
            "profile": "claude-code", "cols": 120, "rows": 40});
        let (status, body) = rig.daemon.http(
            "POST",
            "/api/slots",
            Some(&rig.daemon.token),
            Some(("application/json", spec.to_string().into_bytes())),
        );
        assert_eq!(status, 201, "creating the slot failed: {body}");
        rig
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.daemon.cli(args);
        assert!(
            out.status.success(),
            "`missiond {}` failed: {}{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.context()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn info(&self) -> SlotInfo {
        self.daemon.slot(SLOT)
    }

    fn wait_info(&self, what: &str, pred: impl Fn(&SlotInfo) -> bool) -> SlotInfo {
        poll(STEP, || Some(self.info()).filter(|i| pred(i)))
            .unwrap_or_else(|| panic!("the slot never had {what}\n{}", self.context()))
    }

    fn context(&self) -> String {
        let screen = self.daemon.cli(&["screen", SLOT]).stdout;
        format!(
            "slot: {:?}\nscreen:\n{}\ndaemon log:\n{}",
            self.daemon.http(
                "GET",
                &format!("/api/slots/{SLOT}"),
                Some(&self.daemon.token),
                None
            ),
            String::from_utf8_lossy(&screen),
            self.daemon.log()
        )
    }

    fn doctor(&self) -> (bool, DoctorReport) {
        let out = self.daemon.cli(&["--json", "doctor"]);
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor printed no report ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.success(), report)
    }

    /// Every `/events` frame about the slot that carries a drift.
    fn drift_frames(&self) -> Vec<Value> {
        self.events
            .frames()
            .into_iter()
            .filter(|f| f["slotId"] == SLOT && !f["detail"]["drift"].is_null())
            .collect()
    }
}

/// The whole flow with the built-in rules: session id from birth (in slot info, in Claude
/// Code's session file, as the task list's id), a Bash turn that is `tool_running` with
/// `tool: "Bash"`, usage figures after the turn, the user's own Stop hook and status line still
/// running, and no drift at any point.
fn signals_agree_over_a_whole_flow(release: &str) {
    // A command that writes outside the project asks for permission.
    let outside = tempfile::tempdir().expect("temp dir");
    let command = format!(
        "sleep 4; touch {}",
        outside.path().join("slept.txt").display()
    );
    let rig = Rig::start(
        release,
        vec![
            Turn::task_create("Nap", "Sleep a little", "Napping"),
            Turn::bash(&command, "Nap a while"),
            Turn::text("Slept well.").with_text("Really."),
        ],
        None,
    );
    let ready = rig.wait_info("the idle state", |i| i.state.as_str() == "idle");
    let session_id = ready.session_id.clone().expect("a session id in slot info");
    assert_eq!(
        ready.args, rig.env.args,
        "slot info shows the user's args, not ours"
    );

    // Claude Code runs under that id: its session file says so.
    let pid = ready.pid.expect("a pid");
    let file = poll(STEP, || rig.env.session_file(pid)).expect("sessions/<pid>.json");
    assert_eq!(file["sessionId"], session_id.as_str(), "{file}");

    rig.cli_ok(&[
        "prompt",
        SLOT,
        "make a task, then nap",
        "--wait",
        "--timeout",
        STEP_SECS,
    ]);
    let reply: Value = serde_json::from_str(&rig.cli_ok(&[
        "--json",
        "wait",
        SLOT,
        "--state",
        "confirming",
        "--timeout",
        STEP_SECS,
    ]))
    .expect("wait reply");
    assert_eq!(
        reply["stateDetail"]["dialog"]["kind"], "permission",
        "{reply}"
    );
    rig.cli_ok(&["confirm", SLOT, "--yes"]);
    let running = rig.events.wait_for("tool_running with tool Bash", |f| {
        f["type"] == "slot_state"
            && f["slotId"] == SLOT
            && f["state"] == "tool_running"
            && f["detail"]["tool"]["name"] == "Bash"
    });
    assert!(
        running["detail"]["tool"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("sleep 4")),
        "{running}"
    );
    rig.cli_ok(&["wait", SLOT, "--state", "idle", "--timeout", STEP_SECS]);
    rig.wait_info("the screen showing the answer", |_| {
        rig.daemon.screen(SLOT).text.contains("Slept well.")
    });

    // The task list is the session's and linked to the slot by that id.
    let (status, body) = rig.daemon.http(
        "GET",
        &format!("/api/slots/{SLOT}/tasks"),
        Some(&rig.daemon.token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let lists: Value = serde_json::from_str(&body).expect("tasks JSON");
    assert_eq!(lists[0]["sessionId"], session_id.as_str(), "{lists}");
    assert!(rig.env.tasks_dir().join(&session_id).is_dir());

    // Usage from the status line: the model and numbers.
    let info = rig.wait_info("usage figures", |i| {
        i.usage
            .as_ref()
            .is_some_and(|u| u.model.is_some() && u.output_tokens.is_some_and(|t| t > 0))
    });
    let usage = info.usage.expect("usage");
    assert!(usage.cost_usd.is_some(), "{usage:?}");
    assert!(usage.input_tokens.is_some_and(|t| t > 0), "{usage:?}");
    assert!(
        rig.events
            .frames()
            .iter()
            .any(|f| f["type"] == "usage" && f["slotId"] == SLOT),
        "no usage message on /events"
    );
    let table = rig.cli_ok(&["ls"]);
    assert!(table.contains("COST") && table.contains('$'), "{table}");
    // Where a release's status line gives no token figures, they come from the session's
    // transcript. This real one gives what the stand-in reported, each response once although
    // Claude Code wrote the two-block answer as two entries.
    let transcript = std::fs::read_dir(rig.env.claude_dir.join("projects"))
        .expect("<claude dir>/projects")
        .flatten()
        .map(|project| project.path().join(format!("{session_id}.jsonl")))
        .find(|path| path.is_file())
        .expect("the session's transcript");
    let responses = rig.stand_in.main_requests().len() as u64;
    let from_transcript = missiond_core::supervisor::signals::usage_from_statusline(
        &serde_json::json!({ "transcript_path": transcript }),
    );
    assert_eq!(
        (from_transcript.input_tokens, from_transcript.output_tokens),
        (Some(100 * responses), Some(20 * responses)),
        "{responses} responses of 100 input and 20 output tokens"
    );
    // The model the stand-in answered as; the status line may add a context-size tag.
    let model = from_transcript.model.expect("the transcript's model");
    assert!(
        usage
            .model
            .as_deref()
            .is_some_and(|m| m.starts_with(&model)),
        "transcript {model}, status line {:?}",
        usage.model
    );

    // The user's own hook and status line ran beside missiond's.
    let hook_log = poll(STEP, || {
        std::fs::read_to_string(&rig.user_hook_log)
            .ok()
            .filter(|t| t.contains("stopped"))
    });
    assert!(
        hook_log.is_some(),
        "the user's Stop hook never ran\n{}",
        rig.context()
    );
    rig.wait_info("the user's status line on screen", |_| {
        rig.daemon.screen(SLOT).text.contains("USER-STATUS-LINE")
    });

    // The two witnesses agreed throughout.
    assert_eq!(rig.drift_frames(), Vec::<Value>::new(), "{}", rig.context());
    assert!(rig.info().state_detail.drift.is_none());
    let (ok, report) = rig.doctor();
    let hooks = report
        .checks
        .iter()
        .find(|c| c.name == format!("slot {SLOT}: hooks"))
        .expect("a hooks check");
    assert_eq!(hooks.status, CheckStatus::Ok, "{report:?}");
    assert!(ok, "doctor failed: {report:?}");
}

/// Turns that end without a closing hook are no drift: a refused permission (no PostToolUse)
/// and a tool interrupted with Escape (no PostToolUse, no Stop).
fn refusals_and_interrupts_are_no_drift(release: &str) {
    let outside = tempfile::tempdir().expect("temp dir");
    let refused = format!("touch {}", outside.path().join("refused.txt").display());
    let rig = Rig::start(
        release,
        vec![
            Turn::bash(&refused, "Touch a file"),
            // A read-only command runs without asking; it is interrupted.
            Turn::bash("sleep 20; echo slept", "Nap a long while"),
        ],
        None,
    );
    rig.wait_info("the idle state", |i| i.state.as_str() == "idle");
    rig.cli_ok(&["prompt", SLOT, "touch it", "--wait", "--timeout", STEP_SECS]);
    rig.cli_ok(&[
        "wait",
        SLOT,
        "--state",
        "confirming",
        "--timeout",
        STEP_SECS,
    ]);
    rig.cli_ok(&["confirm", SLOT, "--no"]);
    rig.cli_ok(&["wait", SLOT, "--state", "idle", "--timeout", STEP_SECS]);

    rig.cli_ok(&["prompt", SLOT, "nap"]);
    let napping = poll(STEP, || {
        rig.events.frames().into_iter().find(|f| {
            f["type"] == "slot_state"
                && f["slotId"] == SLOT
                && f["detail"]["tool"]["summary"] == "sleep 20; echo slept"
        })
    });
    assert!(napping.is_some(), "the nap never ran\n{}", rig.context());
    let stale = rig.events.frames().into_iter().filter(|f| {
        f["detail"]["tool"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("touch"))
    });
    assert_eq!(
        stale.count(),
        1,
        "the refused tool showed again\n{}",
        rig.context()
    );
    rig.cli_ok(&["send", SLOT, "\x1b"]);
    rig.cli_ok(&["wait", SLOT, "--state", "idle", "--timeout", STEP_SECS]);

    // Past the time a disagreement needs to become drift, none was reported.
    let settled = std::time::Instant::now() + missiond_core::semantic::hooks::DRIFT_AFTER * 2;
    let drift = poll(STEP, || {
        let info = rig.info();
        if info.state_detail.drift.is_some() {
            return Some(Some(info));
        }
        (std::time::Instant::now() >= settled).then_some(None)
    })
    .flatten();
    assert_eq!(drift, None, "{}", rig.context());
    assert_eq!(rig.drift_frames(), Vec::<Value>::new(), "{}", rig.context());
    assert_eq!(rig.info().state.as_str(), "idle");
}

/// A rule file whose `title-idle` rule says `thinking`: the screen calls an idle Claude Code
/// busy, the hooks say the turn stopped, and the slot reports drift (slot info, `/events`,
/// the log once, `missiond doctor`).
fn a_broken_rule_is_reported_as_drift(release: &str) {
    let embedded =
        missiond_core::semantic::embedded_source(missiond_core::protocol::Profile::ClaudeCode);
    let broken = break_title_idle(embedded);
    let rig = Rig::start(release, vec![Turn::text("Hello.")], Some(broken));
    rig.wait_info("the broken rule in force", |i| {
        i.state.as_str() == "thinking"
    });
    let info = rig.wait_info("a drift", |i| i.state_detail.drift.is_some());
    let drift = info.state_detail.drift.expect("drift");
    assert_eq!(
        (drift.screen.as_str(), drift.hooks.as_str()),
        ("thinking", "idle")
    );
    assert_eq!(drift.claude_version.as_deref(), Some(release), "{drift:?}");
    assert!(!rig.drift_frames().is_empty(), "no drift on /events");
    let (ok, report) = rig.doctor();
    assert!(!ok, "doctor must fail on drift: {report:?}");
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name.ends_with("drift") && c.status == CheckStatus::Fail),
        "{report:?}"
    );
    let log = rig.daemon.log();
    assert_eq!(log.matches("hooks disagree").count(), 1, "{log}");
}

/// The embedded rules with `title-idle` saying `thinking`.
fn break_title_idle(rules: &str) -> String {
    let at = rules
        .find("name = \"title-idle\"")
        .expect("a title-idle rule");
    let (head, tail) = rules.split_at(at);
    let tail = tail.replacen("state = \"idle\"", "state = \"thinking\"", 1);
    format!("{head}{tail}")
}

/// `hooks = false` on the slot: Claude Code gets a session id but no hooks, and nothing is
/// heard from it.
fn hooks_off_adds_no_settings(release: &str) {
    let _serial = serial();
    let stand_in = StandIn::start(vec![]);
    let daemon = Daemon::start();
    let env = ClaudeEnvBuilder::new(stand_in.base_url())
        .release(release)
        .claude_dir(daemon.dir().join("claude"))
        .build();
    let (command, args, env_vars, cwd) = env.launch();
    let spec = json!({"id": SLOT, "command": command, "args": args, "cwd": cwd,
        "env": env_vars, "hooks": false});
    let (status, body) = daemon.http(
        "POST",
        "/api/slots",
        Some(&daemon.token),
        Some(("application/json", spec.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");
    let info = daemon.wait_slot(SLOT, "idle", |i| i.state.as_str() == "idle");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", info.pid.expect("pid")))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    assert!(
        cmdline.contains("--session-id") && !cmdline.contains("--settings"),
        "{cmdline}"
    );
    let out = daemon.cli(&["--json", "doctor"]);
    let report: DoctorReport = serde_json::from_slice(&out.stdout).expect("report");
    let hooks = report
        .checks
        .iter()
        .find(|c| c.name.ends_with("hooks"))
        .expect("hooks check");
    assert!(hooks.detail.starts_with("off"), "{report:?}");
}

macro_rules! matrix {
    ($($release:ident => $version:literal),* $(,)?) => {
        $(mod $release {
            #[test]
            fn signals_agree_over_a_whole_flow() {
                super::signals_agree_over_a_whole_flow($version);
            }
            #[test]
            fn a_broken_rule_is_reported_as_drift() {
                super::a_broken_rule_is_reported_as_drift($version);
            }
            #[test]
            fn refusals_and_interrupts_are_no_drift() {
                super::refusals_and_interrupts_are_no_drift($version);
            }
            #[test]
            fn hooks_off_adds_no_settings() {
                super::hooks_off_adds_no_settings($version);
            }
        })*
    };
}

matrix! {
    v2_1_330 => "2.1.330",
    v2_1_332 => "2.1.332",
    v2_1_200 => "2.1.200",
}
