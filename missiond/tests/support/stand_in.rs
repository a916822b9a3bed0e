//! A scripted stand-in for the Anthropic Messages API, so the real Claude Code CLI runs offline.
//!
//! Claude Code is pointed at it with `ANTHROPIC_BASE_URL` (see `claude_env`). Every request is
//! recorded. `POST /v1/messages` requests that carry a `tools` list are the conversation's main
//! turns: each one takes the next scripted [`Turn`] from the queue and streams it back as the SSE
//! event sequence the real API sends. Everything else Claude Code asks for on the side (session
//! title generation, which has no `tools`; `count_tokens`; `HEAD /api/hello` probes) gets a
//! plausible answer and never consumes a scripted turn.
//!
//! The server runs on its own thread with its own tokio runtime, so both plain `#[test]`s and
//! `#[tokio::test]`s can use it; it stops when the [`StandIn`] is dropped.
#![allow(dead_code)] // each test binary uses a different part of this helper

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

/// One content block of a scripted assistant message.
#[derive(Debug, Clone)]
pub enum Block {
    Text(String),
    ToolUse { name: String, input: Value },
}

/// One scripted assistant turn: the answer to one main `POST /v1/messages`.
///
/// The stop reason is `tool_use` when the turn has a tool call, else `end_turn`. After a tool
/// call Claude Code runs the tool (asking permission first where needed) and sends the result in
/// the next main request, which takes the next turn: script one turn per model round trip.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    pub blocks: Vec<Block>,
    /// Wait this long after `message_start` before streaming the blocks (keeps the CLI busy).
    pub delay: Duration,
    /// Wait until this gate is opened before streaming the blocks (keeps the CLI busy for as
    /// long as a test needs, without guessing a duration).
    pub gate: Option<Gate>,
    /// Fail the request instead: this HTTP status with an API error body carrying the message
    /// (500 and 529 are retried by Claude Code, each retry taking the next turn; 400 is not).
    pub error: Option<(u16, String)>,
}

impl Turn {
    /// A failed request: HTTP `status` with the API's error body.
    pub fn api_error(status: u16, message: impl Into<String>) -> Self {
        Turn {
            error: Some((status, message.into())),
            ..Turn::default()
        }
    }

    /// A turn that answers with text only.
    pub fn text(text: impl Into<String>) -> Self {
        Turn::default().with_text(text)
    }

    /// A turn that calls one tool with the given input.
    pub fn tool(name: impl Into<String>, input: Value) -> Self {
        Turn::default().with_tool(name, input)
    }

    /// `Bash` tool call. Claude Code asks permission in `--permission-mode default`.
    pub fn bash(command: impl Into<String>, description: impl Into<String>) -> Self {
        Turn::tool(
            "Bash",
            json!({"command": command.into(), "description": description.into()}),
        )
    }

    /// `Write` tool call; `file_path` must be absolute. Asks permission (`Do you want to create
    /// <name>?`).
    pub fn write(file_path: impl Into<String>, content: impl Into<String>) -> Self {
        Turn::tool(
            "Write",
            json!({"file_path": file_path.into(), "content": content.into()}),
        )
    }

    /// `TaskCreate` (needs `CLAUDE_CODE_ENABLE_TODO_TOOLS=1`). Task ids are assigned by Claude
    /// Code: "1", "2", ... per list. Runs without a permission dialog.
    pub fn task_create(
        subject: impl Into<String>,
        description: impl Into<String>,
        active_form: impl Into<String>,
    ) -> Self {
        Turn::tool(
            "TaskCreate",
            json!({
                "subject": subject.into(),
                "description": description.into(),
                "activeForm": active_form.into(),
            }),
        )
    }

    /// `TaskUpdate` of a task's status: `pending`, `in_progress`, `completed` or `deleted`.
    pub fn task_update(task_id: impl Into<String>, status: impl Into<String>) -> Self {
        Turn::tool(
            "TaskUpdate",
            json!({"taskId": task_id.into(), "status": status.into()}),
        )
    }

    /// `AskUserQuestion` with one question and its options (2 to 4 labels); Claude Code adds
    /// its own free-text option.
    pub fn ask_user_question(header: &str, question: &str, options: &[&str]) -> Self {
        let options: Vec<Value> = options
            .iter()
            .map(|label| json!({"label": label, "description": format!("Choose {label}")}))
            .collect();
        Turn::tool(
            "AskUserQuestion",
            json!({"questions": [{
                "question": question,
                "header": header,
                "options": options,
                "multiSelect": false,
            }]}),
        )
    }

    /// Adds a text block.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Text(text.into()));
        self
    }

    /// Adds a tool call block.
    pub fn with_tool(mut self, name: impl Into<String>, input: Value) -> Self {
        self.blocks.push(Block::ToolUse {
            name: name.into(),
            input,
        });
        self
    }

    /// Streams the blocks only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Streams the blocks only once `gate` is opened.
    pub fn held_by(mut self, gate: &Gate) -> Self {
        self.gate = Some(gate.clone());
        self
    }

    fn has_tool_use(&self) -> bool {
        self.blocks
            .iter()
            .any(|b| matches!(b, Block::ToolUse { .. }))
    }
}

/// A latch a test opens to let a held turn finish; see [`Turn::held_by`].
#[derive(Debug, Clone, Default)]
pub struct Gate {
    open: Arc<(Mutex<bool>, Condvar)>,
}

impl Gate {
    pub fn new() -> Self {
        Gate::default()
    }

    /// Lets every turn held by this gate stream its blocks.
    pub fn open(&self) {
        let (flag, cvar) = &*self.open;
        *lock(flag) = true;
        cvar.notify_all();
    }

    fn is_open(&self) -> bool {
        *lock(&self.open.0)
    }
}

/// What a request was taken to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A conversation turn (`POST /v1/messages` with tools): consumed a scripted turn.
    Main,
    /// `POST /v1/messages` without tools (e.g. session title generation).
    Side,
    /// `count_tokens`, probes and anything else.
    Other,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub kind: RequestKind,
    pub method: String,
    /// Path and query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The JSON body, or `Value::Null` when there was none or it was not JSON.
    pub body: Value,
    /// Which scripted turn answered it (main requests only); `None` when the queue was empty.
    pub turn_index: Option<usize>,
}

impl RecordedRequest {
    /// The last message of the conversation (what is new in this request).
    pub fn last_message(&self) -> Option<&Value> {
        self.body.get("messages")?.as_array()?.last()
    }

    /// Text the user typed, in order, over every `user` message of the request. Claude Code
    /// sends the first prompt as a list of blocks after `<system-reminder>` blocks; those and
    /// tool results are left out.
    pub fn user_texts(&self) -> Vec<String> {
        let mut texts = Vec::new();
        for msg in self.messages() {
            if msg.get("role").and_then(Value::as_str) != Some("user") {
                continue;
            }
            match msg.get("content") {
                Some(Value::String(s)) => texts.push(s.clone()),
                Some(Value::Array(blocks)) => {
                    for block in blocks {
                        if block.get("type").and_then(Value::as_str) != Some("text") {
                            continue;
                        }
                        if let Some(t) = block.get("text").and_then(Value::as_str) {
                            if !t.trim_start().starts_with("<system-reminder>") {
                                texts.push(t.to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        texts
    }

    /// Every `tool_result` block in the request, in order.
    pub fn tool_results(&self) -> Vec<ToolResult> {
        let mut results = Vec::new();
        for msg in self.messages() {
            let Some(blocks) = msg.get("content").and_then(Value::as_array) else {
                continue;
            };
            for block in blocks {
                if block.get("type").and_then(Value::as_str) != Some("tool_result") {
                    continue;
                }
                results.push(ToolResult {
                    tool_use_id: str_field(block, "tool_use_id"),
                    content: tool_result_text(block.get("content")),
                    is_error: block
                        .get("is_error")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                });
            }
        }
        results
    }

    /// Names of the tools offered to the model. Deferred tools (TaskCreate, TaskUpdate, ...)
    /// are not in this list but named in a `system` message; Claude Code still runs them when
    /// called directly.
    pub fn tool_names(&self) -> Vec<String> {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| tools.iter().map(|t| str_field(t, "name")).collect())
            .unwrap_or_default()
    }

    /// The `x-claude-code-session-id` header: Claude Code's session id (= its task list id).
    pub fn session_id(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-claude-code-session-id"))
            .map(|(_, v)| v.clone())
    }

    fn messages(&self) -> impl Iterator<Item = &Value> {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }
}

/// A `tool_result` the CLI sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub tool_use_id: String,
    /// The result as text (string content, or the text blocks joined by newlines).
    pub content: String,
    pub is_error: bool,
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn tool_result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[derive(Default)]
struct Shared {
    turns: VecDeque<Turn>,
    next_turn: usize,
    requests: Vec<RecordedRequest>,
    next_tool_id: u64,
}

struct Inner {
    shared: Mutex<Shared>,
    changed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the recorded requests from the rest of the test.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running stand-in. Dropping it stops the server.
pub struct StandIn {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    /// Starts a stand-in on `127.0.0.1:<free port>` with the given scripted turns.
    pub fn start(turns: impl IntoIterator<Item = Turn>) -> Self {
        let inner = Arc::new(Inner {
            shared: Mutex::new(Shared {
                turns: turns.into_iter().collect(),
                ..Shared::default()
            }),
            changed: Condvar::new(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
        listener
            .set_nonblocking(true)
            .expect("stand-in listener non-blocking");
        let addr = listener.local_addr().expect("stand-in address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        let thread = std::thread::Builder::new()
            .name("stand-in".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("stand-in runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("stand-in listener");
                    let app = axum::Router::new().fallback(handle).with_state(state);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                });
                // Streams still open (a held turn, a CLI that never closed) must not keep the
                // test waiting.
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("spawn stand-in thread");
        StandIn {
            addr,
            inner,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, the value for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends turns to the script.
    pub fn push(&self, turn: Turn) {
        lock(&self.inner.shared).turns.push_back(turn);
    }

    /// Scripted turns not yet used.
    pub fn turns_left(&self) -> usize {
        lock(&self.inner.shared).turns.len()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.shared).requests.clone()
    }

    /// The main (conversation) requests so far.
    pub fn main_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.shared)
            .requests
            .iter()
            .filter(|r| r.kind == RequestKind::Main)
            .cloned()
            .collect()
    }

    /// Blocks until at least `n` main requests have arrived and returns them all; panics with
    /// the requests seen so far after `timeout`.
    pub fn wait_for_main_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        let mut shared = lock(&self.inner.shared);
        loop {
            let main: Vec<RecordedRequest> = shared
                .requests
                .iter()
                .filter(|r| r.kind == RequestKind::Main)
                .cloned()
                .collect();
            if main.len() >= n {
                return main;
            }
            let now = Instant::now();
            if now >= deadline {
                let seen: Vec<String> = shared
                    .requests
                    .iter()
                    .map(|r| format!("{:?} {} {}", r.kind, r.method, r.path))
                    .collect();
                panic!(
                    "stand-in: expected {n} main requests within {timeout:?}, got {}; all requests: {seen:#?}",
                    main.len()
                );
            }
            shared = self
                .inner
                .changed
                .wait_timeout(shared, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Async form of [`StandIn::wait_for_main_requests`] for `#[tokio::test]`s (does not block
    /// the runtime).
    pub async fn wait_for_main_requests_async(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let main = self.main_requests();
            if main.len() >= n || tokio::time::Instant::now() >= deadline {
                // Past the deadline, the blocking form reports the failure with context.
                return self.wait_for_main_requests(n, Duration::ZERO);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let is_messages = method == Method::POST && uri.path() == "/v1/messages";
    let kind = if !is_messages {
        RequestKind::Other
    } else if body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty())
    {
        RequestKind::Main
    } else {
        RequestKind::Side
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude-stand-in")
        .to_string();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);

    let (turn, first_tool_id) = {
        let mut shared = lock(&inner.shared);
        let turn = if kind == RequestKind::Main {
            let t = shared.turns.pop_front();
            let index = t.as_ref().map(|_| shared.next_turn);
            if t.is_some() {
                shared.next_turn += 1;
            }
            shared
                .requests
                .push(record(kind, &method, &path, &headers, &body, index));
            t.or_else(|| Some(Turn::text("(stand-in: no scripted turn left)")))
        } else {
            shared
                .requests
                .push(record(kind, &method, &path, &headers, &body, None));
            None
        };
        let first_tool_id = shared.next_tool_id;
        shared.next_tool_id += 8;
        inner.changed.notify_all();
        (turn, first_tool_id)
    };

    match kind {
        RequestKind::Main => {
            let turn = turn.unwrap_or_default();
            match turn.error {
                Some((status, message)) => error_response(status, &message),
                None => respond_with_turn(turn, &model, stream, first_tool_id),
            }
        }
        RequestKind::Side => respond_with_turn(side_answer(&body), &model, stream, first_tool_id),
        RequestKind::Other => respond_other(&method, uri.path()),
    }
}

fn record(
    kind: RequestKind,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
    turn_index: Option<usize>,
) -> RecordedRequest {
    RecordedRequest {
        kind,
        method: method.to_string(),
        path: path.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
        turn_index,
    }
}

/// Side requests get a short text; when they ask for JSON output (`output_config.format`, as
/// title generation does with `{title}`), an object filling every string property.
fn side_answer(body: &Value) -> Turn {
    let schema = body.pointer("/output_config/format/schema");
    let Some(props) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return Turn::text("OK");
    };
    let mut obj = serde_json::Map::new();
    for (name, prop) in props {
        let value = match prop.get("type").and_then(Value::as_str) {
            Some("string") => json!("Stand-in session"),
            Some("boolean") => json!(false),
            Some("number") | Some("integer") => json!(0),
            Some("array") => json!([]),
            _ => Value::Null,
        };
        obj.insert(name.clone(), value);
    }
    Turn::text(Value::Object(obj).to_string())
}

fn respond_other(method: &Method, path: &str) -> Response {
    if *method == Method::POST && path == "/v1/messages/count_tokens" {
        return json_response(json!({"input_tokens": 1000}));
    }
    if *method == Method::HEAD {
        return Response::builder()
            .status(StatusCode::OK)
            .body(Body::empty())
            .unwrap_or_default();
    }
    json_response(json!({}))
}

/// The error body the Messages API sends with a failed request.
fn error_response(status: u16, message: &str) -> Response {
    let kind = match status {
        400 => "invalid_request_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .header(
            "x-should-retry",
            if status >= 500 { "true" } else { "false" },
        )
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn json_response(v: Value) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

fn tool_id(base: u64, index: usize) -> String {
    format!("toolu_standin_{:06}", base + index as u64)
}

fn respond_with_turn(turn: Turn, model: &str, stream: bool, first_tool_id: u64) -> Response {
    // Unique per response, as the real API's are: Claude Code writes a transcript entry per
    // content block, each with its message's id and usage.
    let message_id = format!("msg_standin_{first_tool_id}");
    let stop_reason = if turn.has_tool_use() {
        "tool_use"
    } else {
        "end_turn"
    };
    if !stream {
        let content: Vec<Value> = turn
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| match b {
                Block::Text(t) => json!({"type": "text", "text": t}),
                Block::ToolUse { name, input } => json!({
                    "type": "tool_use", "id": tool_id(first_tool_id, i), "name": name, "input": input,
                }),
            })
            .collect();
        return json_response(json!({
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 20},
        }));
    }

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let model = model.to_string();
    tokio::spawn(async move {
        let send = |event: &str, data: Value| {
            let tx = tx.clone();
            let frame = format!("event: {event}\ndata: {data}\n\n");
            async move { tx.send(Bytes::from(frame)).await.is_ok() }
        };
        let start = json!({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 1},
        }});
        if !send("message_start", start).await {
            return;
        }
        // Hold the turn (delay and/or gate), pinging like the real API so the stream stays alive.
        let until = tokio::time::Instant::now() + turn.delay;
        let mut last_ping = tokio::time::Instant::now();
        while tokio::time::Instant::now() < until
            || turn.gate.as_ref().is_some_and(|g| !g.is_open())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if last_ping.elapsed() >= Duration::from_secs(1) {
                last_ping = tokio::time::Instant::now();
                if !send("ping", json!({"type": "ping"})).await {
                    return;
                }
            }
        }
        for (i, block) in turn.blocks.iter().enumerate() {
            let (start_block, delta) = match block {
                Block::Text(t) => (
                    json!({"type": "text", "text": ""}),
                    json!({"type": "text_delta", "text": t}),
                ),
                Block::ToolUse { name, input } => (
                    json!({"type": "tool_use", "id": tool_id(first_tool_id, i), "name": name, "input": {}}),
                    json!({"type": "input_json_delta", "partial_json": input.to_string()}),
                ),
            };
            let ok = send(
                "content_block_start",
                json!({"type": "content_block_start", "index": i, "content_block": start_block}),
            )
            .await
                && send(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": delta}),
                )
                .await
                && send(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": i}),
                )
                .await;
            if !ok {
                return;
            }
        }
        let _ = send(
            "message_delta",
            json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": 20}}),
        )
        .await
            && send("message_stop", json!({"type": "message_stop"})).await;
    });

    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}
