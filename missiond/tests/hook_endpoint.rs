//! The hook plumbing without Claude Code (issue 13): a stand-in program in a `claude-code` slot
//! with `hooks = true` gets the `--settings`, `--session-id` and the environment the hooks read;
//! `missiond hook` / `missiond statusline` reach the daemon with the slot's secret, print
//! nothing (hook) or a status line, and exit 0 even with the daemon gone; the endpoint is
//! strict about secrets, slots, JSON and sizes.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use missiond_core::protocol::signals::DoctorReport;
use serde_json::{json, Value};
use support::daemon::{poll, Daemon, BIN};

const SLOT: &str = "fake";

/// A program that records its arguments and environment, then waits; started as `claude`
/// would be (it ignores the arguments missiond adds).
fn fake_claude(dir: &Path) -> PathBuf {
    let script = dir.join("fake-claude");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo '9.9.9 (Claude Code)'; exit 0; }}\nprintf '%s\\n' \"$@\" > {dir}/args\nenv > {dir}/env\necho ready\nexec sleep 600\n",
            dir = dir.display()
        ),
    )
    .expect("write the fake");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    script
}

struct Rig {
    daemon: Daemon,
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Rig {
    fn start() -> Rig {
        let daemon = Daemon::in_process();
        let dir = tempfile::tempdir().expect("temp dir");
        let script = fake_claude(dir.path());
        let spec = json!({"id": SLOT, "command": script, "cwd": dir.path(),
            "profile": "claude-code", "hooks": true});
        let (status, body) = daemon.http(
            "POST",
            "/api/slots",
            Some(&daemon.token),
            Some(("application/json", spec.to_string().into_bytes())),
        );
        assert_eq!(status, 201, "{body}");
        let env_file = dir.path().join("env");
        let text = poll(Duration::from_secs(30), || {
            std::fs::read_to_string(&env_file)
                .ok()
                .filter(|t| t.contains("MISSIOND_HOOK"))
        })
        .unwrap_or_else(|| {
            panic!(
                "the fake recorded no environment; slot: {:?}\nlog: {}",
                daemon.slots(),
                daemon.log()
            )
        });
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.starts_with("MISSIOND_"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Rig { daemon, dir, env }
    }

    fn secret(&self) -> &str {
        &self.env["MISSIOND_HOOK_SECRET"]
    }

    fn post(&self, path: &str, secret: Option<&str>, body: Vec<u8>) -> (u16, String) {
        let headers: Vec<(&str, &str)> = secret
            .map(|s| vec![("X-Missiond-Hook-Secret", s)])
            .unwrap_or_default();
        support::daemon::http_with_headers(
            &self.daemon.url,
            "POST",
            path,
            None,
            &headers,
            Some(("application/json", body)),
        )
    }

    /// Runs `missiond <verb>` as Claude Code would: the slot's environment, JSON on stdin.
    fn run(&self, verb: &str, env: &BTreeMap<String, String>, stdin: &str) -> (Output, Duration) {
        let mut cmd = Command::new(BIN);
        cmd.arg(verb)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn missiond");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        (out, started.elapsed())
    }

    fn doctor(&self) -> DoctorReport {
        serde_json::from_str(&self.daemon.cli_ok(&["--json", "doctor"])).expect("report")
    }
}

#[test]
fn the_program_gets_a_session_id_settings_and_the_hook_environment() {
    let rig = Rig::start();
    let args = std::fs::read_to_string(rig.dir.path().join("args")).expect("args");
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[0], "--settings", "{args:?}");
    let settings: Value = serde_json::from_str(args[1]).expect("settings JSON");
    let hook = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
        .as_str()
        .expect("a PreToolUse hook");
    assert!(
        hook.ends_with(" hook") && hook.contains("missiond"),
        "{hook}"
    );
    assert!(settings["statusLine"]["command"]
        .as_str()
        .is_some_and(|c| c.ends_with(" statusline")));
    assert_eq!(args[2], "--session-id");
    let info = rig.daemon.slot(SLOT);
    assert_eq!(info.session_id.as_deref(), Some(args[3]));
    assert_eq!(
        info.args,
        Vec::<String>::new(),
        "slot info keeps the user's args"
    );
    assert_eq!(rig.env["MISSIOND_HOOK_SLOT"], SLOT);
    let addr = &rig.env["MISSIOND_HOOK_ADDR"];
    assert!(
        rig.daemon.url.ends_with(addr.as_str()),
        "{addr} vs {}",
        rig.daemon.url
    );
    assert!(rig.secret().len() >= 32);
}

#[test]
fn the_endpoint_takes_only_the_slots_secret_and_well_formed_json() {
    let rig = Rig::start();
    let event = json!({"hook_event_name": "UserPromptSubmit", "session_id": "s"}).to_string();
    let path = format!("/hooks/{SLOT}/hook");
    let (status, body) = rig.post(&path, None, event.clone().into_bytes());
    assert_eq!(status, 401, "{body}");
    let (status, _) = rig.post(&path, Some("not-the-secret"), event.clone().into_bytes());
    assert_eq!(status, 401);
    // The access token is no hook secret either.
    let token = rig.daemon.token.clone();
    assert_eq!(
        rig.post(&path, Some(&token), event.clone().into_bytes()).0,
        401
    );
    let (status, body) = rig.post(
        "/hooks/nobody/hook",
        Some(rig.secret()),
        event.clone().into_bytes(),
    );
    assert_eq!(status, 404, "{body}");
    let (status, _) = rig.post(
        &format!("/hooks/{SLOT}/other"),
        Some(rig.secret()),
        event.clone().into_bytes(),
    );
    assert_eq!(status, 404);
    let (status, body) = rig.post(&path, Some(rig.secret()), b"{not json".to_vec());
    assert_eq!(status, 400);
    assert!(body.contains("not JSON"), "{body}");
    let (status, body) = rig.post(&path, Some(rig.secret()), b"[1,2]".to_vec());
    assert_eq!(status, 400, "{body}");
    let huge = format!("{{\"x\":\"{}\"}}", "y".repeat(400 * 1024));
    assert_eq!(
        rig.post(&path, Some(rig.secret()), huge.into_bytes()).0,
        413
    );
    // Nothing above counted as a hook; the good one does.
    assert_eq!(
        rig.post(&path, Some(rig.secret()), event.into_bytes()).0,
        204
    );
    let report = rig.doctor();
    let hooks = report
        .checks
        .iter()
        .find(|c| c.name == format!("slot {SLOT}: hooks"))
        .expect("hooks check");
    assert!(hooks.detail.starts_with("1 heard"), "{report:?}");
    // Doctor also says where runs are recorded and how much they take: the fake's run is one.
    let recordings = report
        .checks
        .iter()
        .find(|c| c.name == "recordings")
        .expect("recordings check");
    assert!(recordings.detail.contains("1 run(s)"), "{recordings:?}");
    // And so does /metrics (one daemon per test: the count is this test's).
    let (status, metrics) = rig.daemon.http("GET", "/metrics", Some(&token), None);
    assert_eq!(status, 200);
    assert!(
        metrics.lines().any(|l| l == "missiond_hook_events_total 1"),
        "{metrics}"
    );
    // The daemon is still fine.
    assert_eq!(rig.daemon.http("GET", "/health", None, None).0, 200);
}

#[test]
fn missiond_hook_forwards_silently_and_names_the_tool() {
    let rig = Rig::start();
    let input = json!({"hook_event_name": "PreToolUse", "session_id": "abc-session",
        "tool_name": "Bash", "tool_input": {"command": "ls -la", "description": "List"},
        "tool_response": "x".repeat(100_000)});
    let (out, _) = rig.run("hook", &rig.env, &input.to_string());
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "a hook prints nothing on stdout");
    // The hook named the session (the daemon learns it from hooks too).
    let info = rig.daemon.wait_slot(SLOT, "the hook's session id", |i| {
        i.session_id.as_deref() == Some("abc-session")
    });
    assert_eq!(info.session_id.as_deref(), Some("abc-session"));
    let report = rig.doctor();
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.detail.contains("PreToolUse")),
        "{report:?}"
    );
    // Garbage on stdin: still silent, still 0.
    let (out, _) = rig.run("hook", &rig.env, "not json at all");
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn a_dead_daemon_costs_the_hook_nothing() {
    let rig = Rig::start();
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut env = rig.env.clone();
    env.insert("MISSIOND_HOOK_ADDR".into(), format!("127.0.0.1:{port}"));
    let (out, took) = rig.run("hook", &env, r#"{"hook_event_name":"Stop"}"#);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert!(took < Duration::from_secs(5), "gave up after {took:?}");
    let (out, _) = rig.run("statusline", &env, r#"{"model":{"display_name":"Opus"}}"#);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Opus");
    // No environment at all (run by hand): nothing happens, exit 0.
    let (out, _) = rig.run("hook", &BTreeMap::new(), "{}");
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn missiond_statusline_reports_usage_and_prints_the_users_line() {
    let rig = Rig::start();
    let input = json!({"session_id": "s", "model": {"id": "claude-x", "display_name": "X"},
        "cost": {"total_cost_usd": 0.5}, "context_window": {"total_input_tokens": 1000,
        "total_output_tokens": 50, "used_percentage": 25.0}});
    let (out, _) = rig.run("statusline", &rig.env, &input.to_string());
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "X · $0.50 · 25% context"
    );
    let info = rig.daemon.wait_slot(SLOT, "usage", |i| i.usage.is_some());
    let usage = info.usage.expect("usage");
    assert_eq!(usage.model.as_deref(), Some("claude-x"));
    assert_eq!(usage.cost_usd, Some(0.5));
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(1000), Some(50))
    );
    let table = rig.daemon.cli_ok(&["ls"]);
    assert!(table.contains("$0.50") && table.contains("25%"), "{table}");
    // The user's own status line gets the same input and has the last word on screen.
    let mut env = rig.env.clone();
    env.insert(
        "MISSIOND_USER_STATUSLINE".into(),
        "printf 'mine: '; wc -c | tr -d ' '".into(),
    );
    let text = input.to_string();
    let (out, _) = rig.run("statusline", &env, &text);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!("mine: {}", text.len())
    );
}
