//! Proves the end-to-end set-up without the daemon: the real Claude Code CLI in a real PTY,
//! pointed at the scripted stand-in, answers a prompt with the scripted text, runs a scripted
//! Bash call after its permission dialog is answered, and exits on `/exit`.
//!
//! Needs the pinned CLI: run `scripts/install-e2e-tools.sh` once.

mod support;

use std::time::{Duration, Instant};

use support::claude_env::{ClaudeEnv, ClaudeEnvBuilder};
use support::pty_claude::{PtyClaude, STEP_TIMEOUT};
use support::stand_in::{Gate, StandIn, Turn};

/// Polls `sessions/<pid>.json` until its `status` is `want` (`idle`, `busy`, `waiting`).
fn wait_session_status(env: &ClaudeEnv, pid: u32, want: &str) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let session = env.session_file(pid);
        if session.as_ref().and_then(|s| s["status"].as_str()) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "session status never became {want}; last: {session:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The idle prompt: the `❯` composer line and the idle footer.
fn at_prompt(screen: &str) -> bool {
    screen.contains("? for shortcuts") && screen.lines().any(|l| l.starts_with('❯'))
}

#[test]
fn claude_answers_a_prompt_from_the_stand_in_and_exits() {
    let gate = Gate::new();
    let stand_in =
        StandIn::start([Turn::text("Hello from the stand-in, 42 apples.").held_by(&gate)]);
    let env = ClaudeEnvBuilder::new(stand_in.base_url()).build();
    let mut claude = PtyClaude::spawn(&env);

    claude.wait_screen("the idle prompt", at_prompt);
    assert!(
        claude.bracketed_paste(),
        "Claude Code enables bracketed paste (ESC[?2004h) at start"
    );
    let pid = claude.pid().expect("claude pid");
    let session = env
        .session_file(pid)
        .expect("sessions/<pid>.json of the claude process itself");
    assert_eq!(session["pid"], pid);
    assert_eq!(session["cwd"], env.cwd.to_string_lossy().as_ref());

    claude.submit_prompt("count the apples");
    // The turn is held: Claude Code stays busy, and says so in its session file.
    wait_session_status(&env, pid, "busy");
    stand_in.wait_for_main_requests(1, STEP_TIMEOUT);
    assert!(!claude
        .screen_text()
        .contains("Hello from the stand-in, 42 apples."));
    gate.open();
    claude.wait_screen("the scripted answer", |s| {
        s.contains("Hello from the stand-in, 42 apples.")
    });
    let main = stand_in.wait_for_main_requests(1, STEP_TIMEOUT);
    assert_eq!(main[0].user_texts(), vec!["count the apples".to_string()]);
    assert_eq!(
        main[0].session_id().as_deref(),
        session["sessionId"].as_str()
    );
    assert_eq!(stand_in.turns_left(), 0);

    claude.wait_screen("the prompt after the turn", at_prompt);
    wait_session_status(&env, pid, "idle");
    claude.submit_prompt("/exit");
    let status = claude.wait_exit();
    assert!(
        status.success(),
        "/exit ends claude with status 0, got {status:?}"
    );
    assert!(
        env.session_file(pid).is_none(),
        "the session file is removed on /exit"
    );
}

#[test]
fn scripted_bash_call_runs_after_permission_digit() {
    let env_root = tempfile::tempdir().expect("temp dir");
    let marker = env_root.path().join("ran.txt");
    let stand_in = StandIn::start([
        Turn::bash(
            format!("echo ran > {}", marker.display()),
            "Write a marker file",
        ),
        Turn::text("The marker is written."),
    ]);
    let env = ClaudeEnvBuilder::new(stand_in.base_url()).build();
    let mut claude = PtyClaude::spawn(&env);

    claude.wait_screen("the idle prompt", at_prompt);
    claude.submit_prompt("write the marker");
    let dialog = claude.wait_screen("the Bash permission dialog", |s| {
        s.contains("Do you want to proceed?") && s.contains("❯ 1. Yes")
    });
    assert!(
        dialog.contains("Bash command"),
        "dialog title; screen:\n{dialog}"
    );
    assert!(!marker.exists(), "the command must wait for permission");
    let pid = claude.pid().expect("claude pid");
    wait_session_status(&env, pid, "waiting");
    let session = env.session_file(pid).expect("session file");
    assert_eq!(session["waitingFor"], "permission prompt");

    // The digit alone picks the option; no Enter (it would reach whatever comes next).
    claude.answer_dialog(b"1", |s| s.contains("Do you want to proceed?"));
    claude.wait_screen("the answer after the tool call", |s| {
        s.contains("The marker is written.")
    });
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker written by the Bash tool"),
        "ran\n"
    );
    let main = stand_in.wait_for_main_requests(2, STEP_TIMEOUT);
    let results = main[1].tool_results();
    assert_eq!(results.len(), 1, "one tool_result: {results:?}");
    assert!(!results[0].is_error, "{results:?}");
    assert_eq!(results[0].content, "(Bash completed with no output)");
}

/// Side requests (title generation without tools, `count_tokens`, probes) are answered and
/// recorded but leave the scripted turns to the conversation; main turns stream the SSE
/// sequence.
#[tokio::test]
async fn side_requests_do_not_consume_scripted_turns() {
    use support::stand_in::RequestKind;
    let stand_in = StandIn::start([Turn::bash("touch x", "Make x")]);
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", stand_in.base_url());

    let title = http
        .post(url("/v1/messages?beta=true"))
        .json(&serde_json::json!({
            "model": "claude-opus-5-5", "max_tokens": 100, "stream": false,
            "messages": [{"role": "user", "content": "<session>hi</session>"}],
            "output_config": {"format": {"type": "json_schema", "schema": {
                "type": "object", "properties": {"title": {"type": "string"}}}}},
        }))
        .send()
        .await
        .expect("title request");
    let title: serde_json::Value = title.json().await.expect("title json");
    let text = title["content"][0]["text"].as_str().expect("title text");
    let parsed: serde_json::Value = serde_json::from_str(text).expect("title is JSON");
    assert!(parsed["title"].is_string(), "{parsed}");

    let count = http
        .post(url("/v1/messages/count_tokens"))
        .json(&serde_json::json!({"model": "m", "messages": []}))
        .send()
        .await
        .expect("count_tokens");
    let count: serde_json::Value = count.json().await.expect("count json");
    assert!(count["input_tokens"].is_u64(), "{count}");
    assert_eq!(stand_in.turns_left(), 1, "side requests keep the script");

    let main = http
        .post(url("/v1/messages?beta=true"))
        .json(&serde_json::json!({
            "model": "claude-opus-5-5", "max_tokens": 100, "stream": true,
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "go"}],
        }))
        .send()
        .await
        .expect("main request");
    assert_eq!(
        main.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    let sse = main.text().await.expect("sse body");
    let events: Vec<&str> = sse
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        events,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(sse.contains(r#""stop_reason":"tool_use""#), "{sse}");
    assert!(sse.contains("input_json_delta"), "{sse}");
    assert_eq!(stand_in.turns_left(), 0);

    let kinds: Vec<RequestKind> = stand_in.requests().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [RequestKind::Side, RequestKind::Other, RequestKind::Main]
    );
    assert_eq!(stand_in.main_requests()[0].user_texts(), ["go"]);
}
