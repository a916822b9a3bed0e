//! `/pty/<slot>` against the real daemon on 127.0.0.1 with real WebSocket clients (issue 3's
//! acceptance, plus issue 2's pump items: a slow subscriber and UTF-8 split across reads).
//! The daemon runs in-process but where a test watches its process (memory, open files).
//!
//! Every wait is for a frame or a state, with a deadline; nothing sleeps to synchronise.
//! The flood size of the slow-viewer test is `MISSIOND_FLOOD_MB` (see [`flood_mb`]).

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};
use support::daemon::{vm_rss_kib, Daemon, DaemonOptions};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Generous: two cores are shared with parallel builds and other tests.
const STEP: Duration = Duration::from_secs(30);

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// `ws://127.0.0.1:PORT`.
fn ws_base(d: &Daemon) -> String {
    d.url.replacen("http://", "ws://", 1)
}

/// `127.0.0.1:PORT`.
fn authority(d: &Daemon) -> String {
    d.url.trim_start_matches("http://").to_string()
}

fn with_token(d: &Daemon, path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{}{path}{sep}token={}", ws_base(d), d.token)
}

// ---------------------------------------------------------------------------------------------
// REST

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    fn new(d: &Daemon) -> Api {
        Api {
            base: d.url.clone(),
            token: d.token.clone(),
            client: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates (and starts) a slot; requires 201.
    async fn create(&self, spec: Value) -> Value {
        let (status, body) = self
            .call(reqwest::Method::POST, "/api/slots", Some(spec.clone()))
            .await;
        assert_eq!(status, 201, "creating {spec} failed: {body}");
        body
    }

    async fn slot(&self, id: &str) -> Value {
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("/api/slots/{id}"), None)
            .await;
        assert_eq!(status, 200, "GET slot {id}: {body}");
        body
    }

    /// `GET /api/slots/{id}/screen[?format=ansi]`.
    async fn screen(&self, id: &str, ansi: bool) -> Value {
        let q = if ansi { "?format=ansi" } else { "" };
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/slots/{id}/screen{q}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "screen of {id}: {body}");
        body
    }

    /// Polls the slot until `pred` holds, every 50 ms, for at most [`STEP`].
    async fn wait_slot(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let slot = self.slot(id).await;
            if pred(&slot) {
                return slot;
            }
            assert!(
                Instant::now() < deadline,
                "slot {id} never became {what}: {slot}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls the screen text until `pred` holds; returns the screen.
    async fn wait_screen(&self, id: &str, what: &str, pred: impl Fn(&str) -> bool) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let screen = self.screen(id, false).await;
            if pred(screen["text"].as_str().unwrap_or("")) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "screen of {id} never showed {what}:\n{}",
                screen["text"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A shell slot with a recognisable prompt, waiting at it.
async fn shell_slot(api: &Api, id: &str) {
    api.create(
        json!({"id": id, "command": "sh", "env": {"PS1": "prompt> "}, "cols": 80, "rows": 24}),
    )
    .await;
    api.wait_screen(id, "the prompt", |t| t.contains("prompt> "))
        .await;
}

// ---------------------------------------------------------------------------------------------
// WebSocket clients

/// Opens a WebSocket with extra request headers (replacing any the client would set).
async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Ws, tungstenite::Error> {
    let mut req = url.into_client_request()?;
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
        req.headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req)).await {
        Ok(result) => result.map(|(ws, _)| ws),
        Err(_) => panic!("connecting to {url} timed out"),
    }
}

/// The HTTP status of a refused upgrade.
async fn refused_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    match connect(url, headers).await {
        Ok(_) => panic!("{url} with {headers:?} was accepted"),
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{url}: expected an HTTP refusal, got {e}"),
    }
}

/// What a viewer reads next (fields are read through `Debug` in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
enum Ev {
    Msg(Value),
    Close(Option<u16>, String),
    Pong(Vec<u8>),
    /// The connection ended without a close frame.
    Gone(String),
}

/// One viewer: a WebSocket plus everything it has received so far.
struct Viewer {
    ws: Ws,
    name: String,
    /// Every `data` frame's text, concatenated.
    data: String,
    /// Every frame, in order (data frames included).
    frames: Vec<Value>,
}

impl Viewer {
    /// Attaches to `path` (e.g. `/pty/s` or `/pty/s?mode=ro`) with the daemon's token and
    /// requires the protocol's opening: `screen`, then `state`.
    async fn attach(d: &Daemon, path: &str) -> Viewer {
        let ws = connect(&with_token(d, path), &[])
            .await
            .unwrap_or_else(|e| panic!("attach {path}: {e}"));
        Viewer::opened(ws, path).await
    }

    async fn opened(ws: Ws, name: &str) -> Viewer {
        let mut v = Viewer {
            ws,
            name: name.to_string(),
            data: String::new(),
            frames: Vec::new(),
        };
        let first = v.msg().await;
        assert_eq!(
            first["type"], "screen",
            "{name}: the first frame must be the screen: {first}"
        );
        let second = v.msg().await;
        assert_eq!(
            second["type"], "state",
            "{name}: the screen must be followed by the state: {second}"
        );
        v
    }

    async fn next(&mut self) -> Ev {
        self.next_within(STEP).await
    }

    async fn next_within(&mut self, limit: Duration) -> Ev {
        loop {
            let frame = match tokio::time::timeout(limit, self.ws.next()).await {
                Ok(frame) => frame,
                Err(_) => panic!(
                    "{}: nothing arrived for {limit:?}; data so far (tail): {:?}",
                    self.name,
                    tail(&self.data, 400)
                ),
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                        panic!("{}: server sent non-JSON text ({e}): {text}", self.name)
                    });
                    if value["type"] == "data" {
                        self.data
                            .push_str(value["data"].as_str().expect("data is a string"));
                    }
                    self.frames.push(value.clone());
                    return Ev::Msg(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) => Ev::Close(Some(u16::from(f.code)), f.reason.to_string()),
                        None => Ev::Close(None, String::new()),
                    }
                }
                Some(Ok(Message::Pong(payload))) => return Ev::Pong(payload.to_vec()),
                // Output of a `?binary=1` viewer: raw bytes, whole characters.
                Some(Ok(Message::Binary(b))) => {
                    let text = std::str::from_utf8(&b).unwrap_or_else(|e| {
                        panic!("{}: a binary frame splits a character: {e}", self.name)
                    });
                    self.data.push_str(text);
                    let value = json!({"type": "binary", "bytes": b.len()});
                    self.frames.push(value.clone());
                    return Ev::Msg(value);
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Ev::Gone(e.to_string()),
                None => return Ev::Gone("end of stream".into()),
            }
        }
    }

    /// The next JSON message; a close or an error fails the test.
    async fn msg(&mut self) -> Value {
        match self.next().await {
            Ev::Msg(v) => v,
            other => panic!("{}: expected a message, got {other:?}", self.name),
        }
    }

    /// Reads until a message of type `ty`; returns it.
    async fn until_type(&mut self, ty: &str) -> Value {
        loop {
            let m = self.msg().await;
            if m["type"] == ty {
                return m;
            }
        }
    }

    /// Reads until the concatenated output satisfies `pred`.
    async fn until_data(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + STEP;
        while !pred(&self.data) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: output never showed {what}; tail: {:?}",
                self.name,
                tail(&self.data, 400)
            );
            match self.next_within(left).await {
                Ev::Msg(_) | Ev::Pong(_) => {}
                other => panic!(
                    "{}: connection ended while waiting for {what}: {other:?}",
                    self.name
                ),
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Ev::Msg(_) | Ev::Pong(_) => {}
                Ev::Close(code, _) => return code,
                Ev::Gone(e) => panic!(
                    "{}: connection dropped without a close frame: {e}",
                    self.name
                ),
            }
        }
    }

    async fn send(&mut self, msg: Message) {
        match tokio::time::timeout(STEP, self.ws.send(msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{}: send failed: {e}", self.name),
            Err(_) => panic!("{}: send timed out", self.name),
        }
    }

    async fn send_json(&mut self, value: Value) {
        self.send(Message::Text(value.to_string().into())).await;
    }

    async fn input(&mut self, data: &str) {
        self.send_json(json!({"type": "input", "data": data})).await;
    }

    /// Sends a ping and reads until its pong: the server has read everything sent before it.
    async fn ping(&mut self) {
        let payload = format!("ping-{}", self.frames.len()).into_bytes();
        self.send(Message::Ping(payload.clone().into())).await;
        loop {
            match self.next().await {
                Ev::Pong(p) if p == payload => return,
                Ev::Msg(_) | Ev::Pong(_) => {}
                other => panic!("{}: no pong: {other:?}", self.name),
            }
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The close code a connection to `path` gets right after the upgrade.
async fn close_code_of(d: &Daemon, path: &str) -> Option<u16> {
    let ws = connect(&with_token(d, path), &[])
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut v = Viewer {
        ws,
        name: path.to_string(),
        data: String::new(),
        frames: Vec::new(),
    };
    let code = v.close_code().await;
    assert!(
        v.frames.iter().all(|f| f["type"] != "screen"),
        "{path}: a refused viewer must not get the screen: {:?}",
        v.frames
    );
    code
}

// ---------------------------------------------------------------------------------------------
// Screens

/// A fresh vt100 parser of the given size fed `bytes`.
fn parse(rows: u16, cols: u16, bytes: &str) -> vt100::Parser {
    let mut p = vt100::Parser::new(rows, cols, 0);
    p.process(bytes.as_bytes());
    p
}

/// Asserts two emulated screens are the same cell for cell, with cursor and input modes.
fn assert_same_screen(what: &str, expected: &vt100::Screen, actual: &vt100::Screen) {
    if let Some(diff) = screen_diff(expected, actual) {
        panic!(
            "{what}: {diff}\nexpected screen:\n{}\nactual screen:\n{}",
            expected.contents(),
            actual.contents()
        );
    }
}

/// The first visible difference between two emulated screens (cells, cursor, input modes).
fn screen_diff(expected: &vt100::Screen, actual: &vt100::Screen) -> Option<String> {
    if expected.size() != actual.size() {
        return Some(format!("size {:?} vs {:?}", expected.size(), actual.size()));
    }
    let (rows, cols) = expected.size();
    let describe = |c: Option<&vt100::Cell>| {
        c.map(|c| {
            // On a blank cell the foreground, bold and italic cannot be seen (unless it is
            // inverse), and vt100's contents_formatted does not keep them.
            if matches!(c.contents(), "" | " ") && !c.inverse() {
                return format!("blank bg={:?} u={}", c.bgcolor(), c.underline());
            }
            format!(
                "{:?} fg={:?} bg={:?} b={} i={} u={} inv={} dim={} wide={}/{}",
                c.contents(),
                c.fgcolor(),
                c.bgcolor(),
                c.bold(),
                c.italic(),
                c.underline(),
                c.inverse(),
                c.dim(),
                c.is_wide(),
                c.is_wide_continuation()
            )
        })
    };
    for row in 0..rows {
        for col in 0..cols {
            let (e, a) = (
                describe(expected.cell(row, col)),
                describe(actual.cell(row, col)),
            );
            if e != a {
                return Some(format!("cell ({row},{col}): expected {e:?}, got {a:?}"));
            }
        }
    }
    let modes = |s: &vt100::Screen| {
        format!(
            "cursor={:?} hidden={} alt={} app_cursor={} app_keypad={} paste={} mouse={:?}/{:?}",
            s.cursor_position(),
            s.hide_cursor(),
            s.alternate_screen(),
            s.application_cursor(),
            s.application_keypad(),
            s.bracketed_paste(),
            s.mouse_protocol_mode(),
            s.mouse_protocol_encoding()
        )
    };
    let (e, a) = (modes(expected), modes(actual));
    (e != a).then(|| format!("modes: expected {e}, got {a}"))
}

/// The screen frame of a viewer (cols/rows from the frame) parsed into a fresh emulator.
fn parse_screen_frame(frame: &Value) -> vt100::Parser {
    assert_eq!(frame["type"], "screen", "not a screen frame: {frame}");
    let rows = frame["rows"].as_u64().expect("rows") as u16;
    let cols = frame["cols"].as_u64().expect("cols") as u16;
    parse(rows, cols, frame["data"].as_str().expect("screen data"))
}

/// Attaches a recorder before `start` is typed, waits until the program has drawn `ready`,
/// then checks that a fresh viewer's snapshot (and `GET /screen?format=ansi`) reproduce what
/// the recorder's parser built from the raw stream.
async fn check_snapshot_of(d: &Daemon, api: &Api, id: &str, ready: &str) {
    let (cols, rows) = (80u16, 24u16);
    let mut recorder = Viewer::attach(d, &format!("/pty/{id}")).await;
    let first = recorder.frames[0].clone();
    recorder.input("\r").await;
    recorder.until_data(ready, |s| s.contains(ready)).await;
    // Drawing is done when the daemon's screen equals the recorder's replay of the stream,
    // colours included (vim redraws in other colours once it learns the background).
    let deadline = Instant::now() + STEP;
    let replay = loop {
        let mut replay = parse_screen_frame(&first);
        replay.process(recorder.data.as_bytes());
        let daemon = api.screen(id, true).await;
        let daemon = parse(rows, cols, daemon["text"].as_str().unwrap_or(""));
        let diff = screen_diff(daemon.screen(), replay.screen());
        if diff.is_none() {
            break replay;
        }
        assert!(
            Instant::now() < deadline,
            "recorder never caught up with the daemon's screen: {diff:?}"
        );
        // More output may be on its way to the recorder: wait for it, briefly.
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(200), recorder.ws.next()).await
        {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "data" {
                recorder.data.push_str(v["data"].as_str().unwrap_or(""));
            }
        }
    };
    assert_eq!(replay.screen().size(), (rows, cols));

    let fresh = Viewer::attach(d, &format!("/pty/{id}")).await;
    let snapshot = parse_screen_frame(&fresh.frames[0]);
    assert_same_screen(
        &format!("{id}: snapshot vs raw stream"),
        replay.screen(),
        snapshot.screen(),
    );

    let rest = api.screen(id, true).await;
    let from_rest = parse(rows, cols, rest["text"].as_str().expect("ansi text"));
    assert_same_screen(
        &format!("{id}: GET screen?format=ansi vs raw stream"),
        replay.screen(),
        from_rest.screen(),
    );
    let cursor = &rest["cursor"];
    let (crow, ccol) = replay.screen().cursor_position();
    assert_eq!(cursor, &json!([crow, ccol]), "{id}: REST cursor");
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn snapshot_of_a_full_screen_program_reproduces_the_screen() {
    let d = Daemon::in_process();
    // A full-screen program made of printf alone (present everywhere): alternate screen,
    // 16/256/true colours, attributes, wide characters, a scroll region that scrolled,
    // application keys, bracketed paste, SGR mouse, hidden cursor at a known place.
    let script = concat!(
        "read x\n",
        "printf '\\033[?1049h\\033[?1h\\033=\\033[?2004h\\033[?1002h\\033[?1006h\\033[H\\033[2J'\n",
        "printf '\\033[1;31mbold red\\033[0m \\033[4;38;5;208munder 208\\033[0m \\033[7;48;2;10;20;30minverse rgb\\033[0m\\r\\n'\n",
        "printf '\\033[3;5H\\033[3mitalic\\033[0m wide: \\346\\274\\242\\345\\255\\227 \\360\\237\\230\\200 end'\n",
        "printf '\\033[5;10r\\033[5;1H'\n",
        "i=1; while [ $i -le 9 ]; do printf 'scrolled line %s\\r\\n' $i; i=$((i+1)); done\n",
        "printf '\\033[r\\033[24;1H\\033[44m status bar \\033[K\\033[0m'\n",
        "printf '\\033[12;40H\\033[2mdim\\033[0m\\033[?25l\\033[20;30HREADY'\n",
        "read y\n",
    );
    block_on(async {
        let api = Api::new(&d);
        api.create(
            json!({"id": "tui", "command": "sh", "args": ["-c", script], "cols": 80, "rows": 24}),
        )
        .await;
        check_snapshot_of(&d, &api, "tui", "READY").await;
    });
}

#[test]
fn snapshot_of_vim_reproduces_the_screen() {
    if !Path::new("/usr/bin/vim").exists() {
        eprintln!("SKIPPED: /usr/bin/vim is not installed (apt-get install vim-tiny); the printf TUI test covers the snapshot");
        return;
    }
    let d = Daemon::in_process();
    let file = d.dir().join("poem.txt");
    let text: String = (1..=40)
        .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
        .collect();
    std::fs::write(&file, text).expect("write file");
    // The terminal queries are off: vim redraws in other colours whenever their answers come
    // in, which would leave no moment at which the drawing is known to be finished.
    let vim = format!(
        "read x; exec vim -u NONE -i NONE -N -n --cmd 'set t_RB= t_RF= t_RV= t_u7= background=dark' -c 'set number hlsearch mouse=a ruler laststatus=2' -c '/lazy' -c 'normal 15G5w' {}",
        file.display()
    );
    block_on(async {
        let api = Api::new(&d);
        api.create(json!({"id": "vim", "command": "sh", "args": ["-c", vim], "cols": 80, "rows": 24, "env": {"TERM": "xterm-256color"}}))
            .await;
        // The ruler shows the cursor's line and column once vim has drawn everything.
        check_snapshot_of(&d, &api, "vim", "15,").await;
    });
}

#[test]
fn two_viewers_see_the_same_stream_and_read_only_input_is_ignored() {
    let d = Daemon::in_process();
    let ro_token = d.read_only_token.clone();
    block_on(async {
        let api = Api::new(&d);
        shell_slot(&api, "s").await;
        let mut a = Viewer::attach(&d, "/pty/s").await;
        let mut b = Viewer::attach(&d, "/pty/s").await;
        let mut ro = Viewer::attach(&d, "/pty/s?mode=ro").await;
        // The read-only token, without ?mode=ro.
        let url = format!("{}/pty/s?token={}", ws_base(&d), ro_token.trim());
        let ws = connect(&url, &[])
            .await
            .expect("attach with the read-only token");
        let mut ro_token_viewer = Viewer::opened(ws, "ro-token").await;

        for (n, v) in [&mut ro, &mut ro_token_viewer].into_iter().enumerate() {
            v.input(&format!("echo RO{n}json\r")).await;
            v.send(Message::Text(format!("echo RO{n}text\r").into()))
                .await;
            v.send(Message::Binary(
                format!("echo RO{n}binary\r").into_bytes().into(),
            ))
            .await;
            v.ping().await; // the daemon has handled the three inputs
        }
        a.input("echo hi\r").await;
        for v in [&mut a, &mut b, &mut ro, &mut ro_token_viewer] {
            v.until_data("hi and the next prompt", |s| {
                s.contains("\r\nhi\r\nprompt> ")
            })
            .await;
        }
        b.input("echo done\r").await;
        for v in [&mut a, &mut b, &mut ro, &mut ro_token_viewer] {
            v.until_data("done and the next prompt", |s| {
                s.contains("\r\ndone\r\nprompt> ")
            })
            .await;
        }
        assert!(
            !a.data.contains("RO"),
            "read-only input reached the program: {:?}",
            a.data
        );
        assert_eq!(a.data, b.data, "two viewers got different streams");
        assert_eq!(
            a.data, ro.data,
            "the read-only viewer got a different stream"
        );
        assert_eq!(
            a.data, ro_token_viewer.data,
            "the read-only-token viewer got a different stream"
        );
        let screen = api.screen("s", false).await;
        let text = screen["text"].as_str().unwrap_or("");
        assert!(
            text.contains("hi") && !text.contains("RO"),
            "screen: {text}"
        );
    });
}

/// A program that asks the terminal DA1, XTVERSION, CPR and OSC 11, then counts the replies it
/// reads until the test's `Z`, and prints the counts.
const QUERY_PROGRAM: &str = r#"
import os, re, sys, termios, time, tty, select
sys.stdin.readline()
fd = sys.stdin.fileno()
old = termios.tcgetattr(fd)
tty.setraw(fd)
os.write(1, b"QUERIES:\x1b[c\x1b[>0q\x1b[6n\x1b]11;?\x1b\\\r\n")
got = b""
end = time.time() + 60
while b"Z" not in got and time.time() < end:
    r, _, _ = select.select([fd], [], [], 1)
    if r:
        got += os.read(fd, 4096)
termios.tcsetattr(fd, termios.TCSADRAIN, old)
counts = (
    len(re.findall(rb"\x1b\[\?[0-9;]*c", got)),
    got.count(b"\x1bP>|"),
    len(re.findall(rb"\x1b\[[0-9]+;[0-9]+R", got)),
    got.count(b"\x1b]11;"),
)
print("COUNTS DA1=%d XTVERSION=%d CPR=%d OSC11=%d END" % counts)
sys.stdin.readline()
"#;

#[test]
fn terminal_queries_are_answered_once_with_three_viewers() {
    let d = Daemon::in_process();
    let program = d.dir().join("queries.py");
    std::fs::write(&program, QUERY_PROGRAM).expect("write program");
    block_on(async {
        let api = Api::new(&d);
        api.create(
            json!({"id": "q", "command": "python3", "args": [program.display().to_string()]}),
        )
        .await;
        let mut viewers = Vec::new();
        for i in 0..3 {
            let mut v = Viewer::attach(&d, "/pty/q").await;
            v.name = format!("viewer {i}");
            viewers.push(v);
        }
        viewers[0].input("\r").await;
        // Each viewer answers like xterm.js does, as soon as it sees the queries.
        let mut tasks = Vec::new();
        for mut v in viewers {
            tasks.push(tokio::spawn(async move {
                v.until_data("the queries", |s| s.contains("QUERIES:\x1b[c")).await;
                v.input("\x1b[?1;2c\x1bP>|xterm.js(5.5.0)\x1b\\\x1b[1;9R\x1b]11;rgb:0000/0000/0000\x1b\\").await;
                v.ping().await; // the daemon has handled the replies
                v
            }));
        }
        let mut viewers = Vec::new();
        for t in tasks {
            viewers.push(t.await.expect("viewer task"));
        }
        viewers[1].input("Z").await;
        for v in &mut viewers {
            v.until_data("the counts", |s| s.contains(" END")).await;
        }
        let line = viewers[0]
            .data
            .lines()
            .find(|l| l.starts_with("COUNTS"))
            .unwrap_or("")
            .to_string();
        assert_eq!(
            line.trim_end(),
            "COUNTS DA1=1 XTVERSION=1 CPR=1 OSC11=1 END",
            "replies the program got"
        );
    });
}

/// `?binary=1`: output arrives as binary frames holding exactly the bytes a JSON viewer gets
/// in its `data` frames; everything else (screen, state, exit) stays JSON.
#[test]
fn a_binary_viewer_gets_the_same_output_as_raw_frames() {
    let d = Daemon::in_process();
    block_on(async {
        let api = Api::new(&d);
        shell_slot(&api, "bin").await;
        let mut json_viewer = Viewer::attach(&d, "/pty/bin").await;
        let mut binary_viewer = Viewer::attach(&d, "/pty/bin?binary=1").await;
        json_viewer
            .input("printf '\\033[31mrot\\033[0m é€😀 %s\\n' $(seq 1 2000 | tr -d '\\n' | cut -c1-3000)\r")
            .await;
        for v in [&mut json_viewer, &mut binary_viewer] {
            v.until_data("the line and the next prompt", |s| {
                s.contains("\x1b[0m é€😀 123") && s.ends_with("prompt> ")
            })
            .await;
        }
        assert_eq!(json_viewer.data, binary_viewer.data);
        let kinds = |v: &Viewer| -> Vec<String> {
            v.frames
                .iter()
                .map(|f| f["type"].as_str().unwrap_or("").to_string())
                .collect()
        };
        let binary_kinds = kinds(&binary_viewer);
        assert!(
            binary_kinds.iter().any(|k| k == "binary"),
            "{binary_kinds:?}"
        );
        assert!(
            !binary_kinds.iter().any(|k| k == "data"),
            "{binary_kinds:?}"
        );
        assert!(!kinds(&json_viewer).iter().any(|k| k == "binary"));

        binary_viewer.input("exit\r").await;
        let exit = binary_viewer.until_type("exit").await;
        assert_eq!(exit["code"], 0, "{exit}");
        assert_eq!(binary_viewer.close_code().await, Some(4003));

        shell_slot(&api, "bin2").await;
        assert_eq!(
            close_code_of(&d, "/pty/bin2?binary=maybe").await,
            Some(4000)
        );
        // A mode that is not `ro` or `rw` is refused, not taken as read-write.
        assert_eq!(close_code_of(&d, "/pty/bin2?mode=r0").await, Some(4000));
    });
}

/// A viewer that attaches after the program printed 300 lines into a 24-row screen gets them
/// all: the screen frame starts with the scrollback, so its terminal can scroll back through
/// what happened before it came, and still ends on exactly the slot's screen.
#[test]
fn a_late_viewer_gets_the_scrollback_before_the_screen() {
    let d = Daemon::in_process();
    block_on(async {
        let api = Api::new(&d);
        api.create(json!({
            "id": "history", "command": "sh", "cols": 80, "rows": 24, "scrollback": 500,
            "args": ["-c", "i=1; while [ $i -le 300 ]; do printf '\\033[3%dmline %d\\033[0m\\n' $((i % 7)) $i; i=$((i+1)); done; printf 'done> '; read x"],
        }))
        .await;
        api.wait_screen("history", "the last line", |t| t.contains("done> "))
            .await;

        let v = Viewer::attach(&d, "/pty/history").await;
        let frame = &v.frames[0];
        let data = frame["data"].as_str().expect("screen data");
        let mut copy = vt100::Parser::new(24, 80, 1000);
        copy.process(data.as_bytes());
        let screen = copy.screen_mut();
        assert!(
            screen.contents().trim_end().ends_with("done>"),
            "the screen after the history: {:?}",
            screen.contents()
        );
        screen.set_scrollback(usize::MAX);
        let kept = screen.scrollback();
        let mut lines = Vec::new();
        let mut offset = kept;
        while offset > 0 {
            screen.set_scrollback(offset);
            let take = offset.min(24);
            lines.extend(screen.rows(0, 80).take(take));
            offset -= take;
        }
        let expected: Vec<String> = (1..=277).map(|i| format!("line {i}")).collect();
        assert_eq!(
            lines
                .iter()
                .map(|l| l.trim_end().to_string())
                .collect::<Vec<_>>(),
            expected,
            "the copy's scrollback should hold lines 1-277, in order (278-300 are on screen)"
        );
        screen.set_scrollback(kept);
        let colour = screen.cell(0, 0).map(|c| c.fgcolor());
        assert_eq!(
            colour,
            Some(vt100::Color::Idx(1)),
            "line 1 keeps its colour"
        );
        // The snapshot stays exact: the screen part is the slot's screen, cell for cell.
        screen.set_scrollback(0);
        let live = api.screen("history", true).await;
        let expected = parse(24, 80, live["text"].as_str().expect("ansi"));
        assert_same_screen("screen after the history", expected.screen(), copy.screen());
    });
}

#[test]
fn output_split_inside_a_character_arrives_intact() {
    let d = Daemon::in_process();
    // Half a character, a pause (so the reader sees it alone), the rest; then a 4-byte one in
    // three pieces.
    let script = "read x; printf 'A\\342'; sleep 0.3; printf '\\202\\254B'; sleep 0.3; \
                  printf '\\360\\237'; sleep 0.3; printf '\\230'; sleep 0.3; printf '\\200C\\n'; read y";
    block_on(async {
        let api = Api::new(&d);
        api.create(json!({"id": "u", "command": "sh", "args": ["-c", script]}))
            .await;
        let mut v = Viewer::attach(&d, "/pty/u").await;
        v.input("\r").await;
        v.until_data("the end of the output", |s| s.contains("C\r\n"))
            .await;
        assert!(
            v.data.contains("A€B😀C"),
            "characters were not reassembled: {:?}",
            v.data
        );
        for f in &v.frames {
            let text = f["data"].as_str().unwrap_or("");
            assert!(
                !text.contains('\u{FFFD}'),
                "a frame holds a replacement character: {f}"
            );
        }
        api.wait_screen("u", "the characters", |t| t.contains("A€B😀C"))
            .await;
    });
}

#[test]
fn resize_from_a_writable_viewer_reaches_the_program_and_every_viewer() {
    let d = Daemon::in_process();
    block_on(async {
        let api = Api::new(&d);
        shell_slot(&api, "r").await;
        let mut a = Viewer::attach(&d, "/pty/r").await;
        let mut b = Viewer::attach(&d, "/pty/r").await;
        let mut ro = Viewer::attach(&d, "/pty/r?mode=ro").await;

        // With other viewers attached, only an explicit fit resizes the slot.
        a.send_json(json!({"type": "resize", "cols": 100, "rows": 30, "force": true}))
            .await;
        for v in [&mut a, &mut b, &mut ro] {
            let m = v.until_type("resize").await;
            assert_eq!(
                (m["cols"].as_u64(), m["rows"].as_u64()),
                (Some(100), Some(30)),
                "{}: {m}",
                v.name
            );
        }
        a.input("stty size\r").await;
        a.until_data("stty's answer", |s| s.contains("\r\n30 100\r\n"))
            .await;
        let screen = api.screen("r", false).await;
        assert_eq!(
            (screen["cols"].as_u64(), screen["rows"].as_u64()),
            (Some(100), Some(30))
        );

        // A read-only viewer's resize is ignored; a bad size gets an error and nothing else.
        ro.send_json(json!({"type": "resize", "cols": 50, "rows": 10}))
            .await;
        ro.ping().await;
        a.send_json(json!({"type": "resize", "cols": 0, "rows": 0, "force": true}))
            .await;
        let err = a.until_type("error").await;
        assert!(
            err["message"].as_str().unwrap_or("").contains("size"),
            "{err}"
        );
        a.input("stty size\r").await;
        // Typed ahead of sh's prompt, the echo comes first and the answer follows the prompt:
        // count the answers, not what precedes them.
        a.until_data("stty's second answer", |s| {
            s.matches("30 100\r\n").count() == 2
        })
        .await;
        let resizes: Vec<_> = a.frames.iter().filter(|f| f["type"] == "resize").collect();
        assert_eq!(resizes.len(), 1, "only one resize happened: {resizes:?}");
    });
}

/// Viewers never fight over the size: a viewer's own resize applies only while it is the slot's
/// only viewer; with others attached it is answered with the real size, and only `force` (the
/// viewer's "Fit") resizes the program for everyone.
#[test]
fn a_second_viewer_does_not_resize_the_slot_unless_it_asks_to_fit() {
    let d = Daemon::in_process();
    block_on(async {
        let api = Api::new(&d);
        shell_slot(&api, "fit").await;
        let mut desk = Viewer::attach(&d, "/pty/fit").await;
        // Alone: its resize applies.
        desk.send_json(json!({"type": "resize", "cols": 150, "rows": 45}))
            .await;
        let m = desk.until_type("resize").await;
        assert_eq!(
            (m["cols"].as_u64(), m["rows"].as_u64()),
            (Some(150), Some(45))
        );

        // A phone-sized viewer joins and proposes its size: the slot keeps its size, the phone
        // is told the real one, the desktop hears of no resize.
        let mut phone = Viewer::attach(&d, "/pty/fit").await;
        phone
            .send_json(json!({"type": "resize", "cols": 44, "rows": 20}))
            .await;
        let m = phone.until_type("resize").await;
        assert_eq!(
            (m["cols"].as_u64(), m["rows"].as_u64()),
            (Some(150), Some(45)),
            "{m}"
        );
        desk.input("stty size\r").await;
        desk.until_data("stty's answer", |s| s.contains("\r\n45 150\r\n"))
            .await;
        let info = api.slot("fit").await;
        assert_eq!(
            (info["cols"].as_u64(), info["rows"].as_u64()),
            (Some(150), Some(45))
        );
        assert_eq!(
            desk.frames.iter().filter(|f| f["type"] == "resize").count(),
            1,
            "the desktop saw only its own resize"
        );

        // "Fit to this window" on the phone: an explicit action resizes it for everyone.
        phone
            .send_json(json!({"type": "resize", "cols": 44, "rows": 20, "force": true}))
            .await;
        let m = desk.until_type("resize").await;
        assert_eq!(
            (m["cols"].as_u64(), m["rows"].as_u64()),
            (Some(44), Some(20)),
            "{m}"
        );
        let (_, audit) = api
            .call(reqwest::Method::GET, "/api/audit?slot=fit", None)
            .await;
        let resizes: Vec<&Value> = audit
            .as_array()
            .map(|a| a.iter().filter(|e| e["action"] == "resize").collect())
            .unwrap_or_default();
        assert_eq!(
            resizes.len(),
            2,
            "the refused resize is not recorded: {audit}"
        );
    });
}

#[test]
fn close_codes_name_what_went_wrong() {
    let d = Daemon::in_process();
    block_on(async {
        let api = Api::new(&d);
        api.create(json!({"id": "gate", "command": "sh", "args": ["-c", "read x; exit 7"]}))
            .await;
        api.create(json!({"id": "done", "command": "true"})).await;
        api.create(json!({"id": "idle", "command": "sh", "autostart": false}))
            .await;
        let long = "x".repeat(65);
        for path in [
            "/pty",
            "/pty/",
            "/pty/a/b",
            "/pty/bad%20id",
            "/pty/a%2Fb",
            "/pty/d%C3%A9j%C3%A0",
            &format!("/pty/{long}"),
        ] {
            assert_eq!(close_code_of(&d, path).await, Some(4000), "{path}");
        }
        assert_eq!(
            close_code_of(&d, "/pty/nosuch").await,
            Some(4001),
            "unknown slot"
        );
        assert_eq!(
            close_code_of(&d, "/pty/idle").await,
            Some(4001),
            "never started slot"
        );
        api.wait_slot("done", "exited", |s| s["status"] == "exited")
            .await;
        assert_eq!(
            close_code_of(&d, "/pty/done").await,
            Some(4001),
            "exited slot"
        );

        let mut v = Viewer::attach(&d, "/pty/gate").await;
        v.input("\r").await;
        let exit = v.until_type("exit").await;
        assert_eq!(exit["code"], 7, "{exit}");
        assert_eq!(v.close_code().await, Some(4003), "close after the exit");
    });
}

#[test]
fn token_and_origin_are_checked_before_the_upgrade() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "allowed_origins = [\"https://app.example\"]".into(),
        in_process: true,
        ..Default::default()
    });
    block_on(async {
        let api = Api::new(&d);
        shell_slot(&api, "s").await;
        let bare = format!("{}/pty/s", ws_base(&d));
        let good = with_token(&d, "/pty/s");
        let own = format!("http://{}", authority(&d));
        let port = authority(&d).rsplit(':').next().unwrap_or("").to_string();

        assert_eq!(refused_status(&bare, &[]).await, 401, "no token");
        assert_eq!(
            refused_status(&format!("{bare}?token=wrong"), &[]).await,
            401,
            "wrong query token"
        );
        assert_eq!(
            refused_status(&bare, &[("authorization", "Bearer wrong")]).await,
            401,
            "wrong bearer"
        );
        assert_eq!(
            refused_status(&bare, &[("origin", &own)]).await,
            401,
            "own origin, no token"
        );

        for origin in [
            "http://evil.example",
            "http://127.0.0.1:1234",
            "null",
            "https://app.example.evil",
        ] {
            assert_eq!(
                refused_status(&good, &[("origin", origin)]).await,
                403,
                "origin {origin}"
            );
        }
        // DNS rebinding: the page's origin equals the Host header, but it is not the daemon's name.
        let rebound = format!("evil.example:{port}");
        assert_eq!(
            refused_status(
                &good,
                &[("origin", &format!("http://{rebound}")), ("host", &rebound)]
            )
            .await,
            403,
            "rebinding origin"
        );

        let bearer = format!("Bearer {}", d.token);
        type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
        let accepted: [Case; 4] = [
            ("no origin, query token", &good, vec![]),
            ("own origin", &good, vec![("origin", own.as_str())]),
            (
                "allow-listed origin",
                &good,
                vec![("origin", "https://app.example")],
            ),
            (
                "no origin, bearer token",
                &bare,
                vec![("authorization", bearer.as_str())],
            ),
        ];
        for (what, url, headers) in accepted {
            let ws = connect(url, &headers)
                .await
                .unwrap_or_else(|e| panic!("{what}: refused: {e}"));
            let mut v = Viewer::opened(ws, what).await;
            v.ping().await;
        }
    });
}

#[test]
fn viewer_cap_refuses_with_4002_and_frees_places() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "max_viewers = 3".into(),
        in_process: true,
        ..Default::default()
    });
    block_on(async {
        let api = Api::new(&d);
        shell_slot(&api, "c").await;
        let mut viewers = Vec::new();
        for _ in 0..3 {
            viewers.push(Viewer::attach(&d, "/pty/c").await);
        }
        let code = close_code_of(&d, "/pty/c").await;
        assert_eq!(code, Some(4002), "the fourth viewer");
        let closing = viewers.pop().expect("a viewer");
        drop(closing);
        api.wait_slot("c", "down to 2 viewers", |s| s["viewers"] == 2)
            .await;
        let mut again = Viewer::attach(&d, "/pty/c").await;
        again.ping().await;
    });
}

#[test]
fn bad_frames_many_connections_and_many_viewers_leave_the_daemon_serving() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "max_viewers = 200".into(),
        ..Default::default()
    });
    block_on(async {
        let api = Api::new(&d);
        // `cat` echoes every line it gets, so what reached the program is visible.
        api.create(json!({"id": "cat", "command": "cat"})).await;
        let mut v = Viewer::attach(&d, "/pty/cat").await;

        // Not JSON objects: raw input, as the protocol says.
        for raw in [
            "{\"type\":\"input\",\"data\":\"par",
            "{type:input}",
            "[1,2]",
            "42",
        ] {
            v.send(Message::Text(raw.into())).await;
        }
        v.send(Message::Text(String::new().into())).await;
        v.send(Message::Binary(Vec::new().into())).await;
        v.input("|raw done\r").await;
        v.until_data("the raw input echoed", |s| {
            s.contains("{\"type\":\"input\",\"data\":\"par{type:input}[1,2]42|raw done")
        })
        .await;

        // JSON objects the protocol does not know: an error each, and the connection stays.
        for bad in [
            json!({"type": "bogus"}),
            json!({"type": "input"}),
            json!({"type": "input", "data": 5}),
            json!({"type": "resize", "cols": -1, "rows": 2}),
            json!({}),
        ] {
            v.send_json(bad.clone()).await;
            let err = v.until_type("error").await;
            assert!(
                !err["message"].as_str().unwrap_or("").is_empty(),
                "{bad}: {err}"
            );
        }
        v.ping().await;

        // Over 1 MiB: that connection closes with 1009, nothing else happens.
        let big = "x".repeat(2 * 1024 * 1024);
        let mut text_big = Viewer::attach(&d, "/pty/cat").await;
        text_big.send(Message::Text(big.clone().into())).await;
        assert_eq!(text_big.close_code().await, Some(1009), "2 MB text frame");
        let mut binary_big = Viewer::attach(&d, "/pty/cat").await;
        binary_big
            .send(Message::Binary(big.into_bytes().into()))
            .await;
        assert_eq!(
            binary_big.close_code().await,
            Some(1009),
            "2 MB binary frame"
        );
        v.input("still here\r").await;
        v.until_data("the echo after the big frames", |s| {
            s.contains("still here\r\nstill here\r\n")
        })
        .await;
        assert!(
            !v.data.contains("xxxx"),
            "the oversized frame reached the program"
        );

        // 200 rapid connects and disconnects, in three manners.
        for i in 0..200 {
            let ws = connect(&with_token(&d, "/pty/cat"), &[])
                .await
                .expect("connect");
            match i % 3 {
                0 => drop(ws), // TCP gone, no close frame
                1 => {
                    let mut viewer = Viewer::opened(ws, "rapid").await;
                    viewer.send(Message::Close(None)).await;
                }
                _ => {
                    let mut ws = ws;
                    let _ = ws.close(None).await;
                }
            }
        }

        // 100 viewers at once, all live.
        let attaches = (0..100).map(|_| Viewer::attach(&d, "/pty/cat"));
        let mut many = futures_util::future::join_all(attaches).await;
        v.input("hundred\r").await;
        let reads = many
            .iter_mut()
            .map(|m| m.until_data("the echo", |s| s.contains("hundred\r\n")));
        futures_util::future::join_all(reads).await;
        drop(many);

        let mut last = Viewer::attach(&d, "/pty/cat").await;
        last.ping().await;
        v.ping().await;
        // Every place taken above was given back: only `v` and `last` remain.
        api.wait_slot("cat", "down to 2 viewers", |s| s["viewers"] == 2)
            .await;
        let (status, _) = api.call(reqwest::Method::GET, "/health", None).await;
        assert_eq!(status, 200);
    });
}

// ---------------------------------------------------------------------------------------------
// Slow viewer

/// Megabytes the slow-viewer test prints: `MISSIOND_FLOOD_MB`, default 200 (the issue's
/// figure; about 20-40 s here).
fn flood_mb() -> u64 {
    std::env::var("MISSIOND_FLOOD_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

const FLOOD_TAIL: &str = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Checks the flood's numbered lines as they arrive: every line, in order, exactly once.
struct LineCheck {
    partial: String,
    next: u64,
    done: bool,
}

impl LineCheck {
    fn new() -> LineCheck {
        LineCheck {
            partial: String::new(),
            next: 1,
            done: false,
        }
    }

    fn feed(&mut self, chunk: &str) {
        self.partial.push_str(chunk);
        let mut consumed = 0;
        // A char pattern searches with memchr: the check must outrun the daemon.
        while let Some(pos) = self.partial[consumed..].find('\n') {
            let line = &self.partial[consumed..consumed + pos];
            consumed += pos + 1;
            let line = line
                .strip_suffix('\r')
                .unwrap_or_else(|| panic!("line without CR: {line:?}"));
            if line == "FLOOD-DONE" {
                self.done = true;
            } else if let Some(number) = line.strip_suffix(FLOOD_TAIL) {
                let n: u64 = number
                    .parse()
                    .unwrap_or_else(|_| panic!("garbled line {line:?}"));
                assert_eq!(n, self.next, "line out of order or missing (line {line:?})");
                self.next += 1;
            } else {
                assert!(
                    self.next == 1 && line.is_empty(),
                    "unexpected line {line:?} after line {}",
                    self.next - 1
                );
            }
        }
        self.partial.drain(..consumed);
    }
}

/// The reading viewer's frames, decoded without building a `serde_json::Value`.
#[derive(serde::Deserialize)]
struct FloodFrame {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    data: String,
}

/// Issue 2 and 3: a viewer that never reads while the slot prints [`flood_mb`] megabytes: the
/// slot finishes, a reading viewer gets every byte in order (never a resync), the daemon's
/// memory stays bounded, and the stuck viewer, once it reads again, gets a screen equal to the
/// final one.
///
/// The daemon's stuck-viewer timeout is raised for this test so that it outlasts the flood
/// however busy the machine is; closing a stuck viewer has its own test below.
#[test]
fn a_stuck_viewer_slows_nothing_and_gets_a_fresh_screen() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "stuck_viewer_secs = 600".into(),
        ..DaemonOptions::default()
    });
    let line_len = 8 + FLOOD_TAIL.len() as u64 + 2; // typical number width, tail, CRLF
    let lines = flood_mb() * 1_000_000 / line_len;
    let script = format!("read x; seq -f '%.0f{FLOOD_TAIL}' 1 {lines}; echo FLOOD-DONE; read y");
    block_on(async {
        let api = Api::new(&d);
        api.create(json!({"id": "flood", "command": "sh", "args": ["-c", script]}))
            .await;
        let baseline = vm_rss_kib(d.pid);
        let mut stuck = Viewer::attach(&d, "/pty/flood").await;
        let mut reader = Viewer::attach(&d, "/pty/flood").await;

        // RSS is sampled as the flood progresses: once the ring, the socket buffers and the
        // scrollback are full (well within the first quarter), it must stop growing.
        let flood_bytes = lines * line_len;
        let mut next_sample = 0u64;
        let (mut early_peak, mut peak) = (0u64, 0u64);
        let started = Instant::now();
        reader.input("\r").await;
        let mut check = LineCheck::new();
        let mut received = 0u64;
        while !check.done {
            match tokio::time::timeout(STEP, reader.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: FloodFrame = serde_json::from_str(&text).expect("json frame");
                    match frame.ty.as_str() {
                        "data" => {
                            received += frame.data.len() as u64;
                            check.feed(&frame.data);
                        }
                        "screen" => panic!(
                            "the reading viewer fell a ring behind and was resynchronised at line {} after {:?}",
                            check.next,
                            started.elapsed()
                        ),
                        _ => {}
                    }
                }
                Ok(Some(Ok(_))) => {}
                other => panic!(
                    "reader: stream ended or stalled at line {}: {other:?}",
                    check.next
                ),
            }
            if received >= next_sample {
                let rss = vm_rss_kib(d.pid);
                peak = peak.max(rss);
                if received <= flood_bytes / 4 {
                    early_peak = peak;
                }
                next_sample = received + 256 * 1024;
            }
        }
        let flood_time = started.elapsed();
        assert_eq!(check.next - 1, lines, "the last line arrived");
        eprintln!(
            "flood: {lines} lines, {:.1} MB received in {flood_time:?}, no resync of the reader; daemon RSS {} MiB before, {} MiB after the first quarter, peak {} MiB",
            received as f64 / 1e6,
            baseline / 1024,
            early_peak / 1024,
            peak / 1024
        );
        // Bounded: no growth with the flood once the bounded buffers are full, and never near
        // the flood's size.
        let allowance = (flood_bytes / 4 / 1024).max(8 * 1024);
        assert!(
            peak <= early_peak + allowance,
            "daemon RSS kept growing with the flood: {early_peak} KiB after a quarter, {peak} KiB at the end"
        );
        assert!(peak < 200 * 1024, "daemon RSS reached {peak} KiB");

        // The final screen, then the stuck viewer wakes up.
        let final_text = api
            .wait_screen("flood", "FLOOD-DONE", |t| t.contains("FLOOD-DONE"))
            .await;
        let final_ansi = api.screen("flood", true).await;
        let expected = parse(40, 120, final_ansi["text"].as_str().expect("ansi"));
        assert_eq!(
            expected.screen().contents(),
            final_text["text"].as_str().unwrap_or("")
        );
        let mut resynced = None;
        let deadline = Instant::now() + STEP;
        loop {
            assert!(
                Instant::now() < deadline,
                "the stuck viewer never got the final screen"
            );
            match stuck.next().await {
                Ev::Msg(m) if m["type"] == "screen" => resynced = Some(parse_screen_frame(&m)),
                Ev::Msg(m) if m["type"] == "data" => {
                    if let Some(p) = resynced.as_mut() {
                        p.process(m["data"].as_str().unwrap_or("").as_bytes());
                    }
                }
                Ev::Msg(_) => {}
                other => panic!(
                    "the stuck viewer was closed after {:?} ({} frames read): {other:?}; a 1008 here means the \
                     flood outlasted the daemon's 30 s stuck timeout (see flood_mb)",
                    started.elapsed(),
                    stuck.frames.len()
                ),
            }
            if let Some(p) = &resynced {
                if p.screen().contents() == expected.screen().contents() {
                    assert_same_screen(
                        "stuck viewer's fresh screen",
                        expected.screen(),
                        p.screen(),
                    );
                    break;
                }
            }
        }
        let screens = stuck
            .frames
            .iter()
            .filter(|f| f["type"] == "screen")
            .count();
        assert!(
            screens >= 2,
            "the stuck viewer should have lagged and got a fresh screen"
        );
    });
}

/// A viewer that takes nothing for `[server] stuck_viewer_secs` is let go: its place is freed,
/// the program goes on, and what was in flight is followed by the end of the connection.
#[test]
fn a_viewer_stuck_past_the_timeout_is_closed() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "stuck_viewer_secs = 1".into(),
        in_process: true,
        ..DaemonOptions::default()
    });
    block_on(async {
        let api = Api::new(&d);
        api.create(json!({
            "id": "yes", "command": "sh", "args": ["-c", "read x; exec yes 'a stuck viewer'"]
        }))
        .await;
        let mut stuck = Viewer::attach(&d, "/pty/yes").await;
        stuck.input("\r").await;
        // From here on it reads nothing: the socket buffers fill and the daemon's send waits.
        api.wait_slot("yes", "the stuck viewer to be let go", |s| {
            s["viewers"] == 0
        })
        .await;
        let slot = api.slot("yes").await;
        assert_eq!(slot["status"], "running", "the program goes on: {slot}");
        let end = loop {
            match stuck.next().await {
                Ev::Msg(_) | Ev::Pong(_) => {}
                end => break end,
            }
        };
        match end {
            // The close frame gets through when the buffers had room for it.
            Ev::Close(code, _) => assert_eq!(code, Some(1008), "closed as stuck"),
            Ev::Gone(_) => {}
            other => panic!("unexpected end: {other:?}"),
        }
        assert!(
            stuck.data.contains("a stuck viewer"),
            "the output in flight arrived first"
        );
    });
}

/// `format=` and `state=` are typed query parameters: a value outside their set is a 400 that
/// names what is accepted, and a missing required one is a 400 too.
#[test]
fn unknown_query_values_are_refused_with_what_is_accepted() {
    let d = Daemon::in_process();
    block_on(async {
        let api = Api::new(&d);
        shell_slot(&api, "q").await;
        let get = |path: &'static str| api.call(reqwest::Method::GET, path, None);
        let (status, body) = get("/api/slots/q/screen?format=html").await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"]["message"], "unknown format 'html': use text or ansi",
            "{body}"
        );
        let (status, body) = get("/api/slots/q/screen?format=text").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = get("/api/slots/q/wait?state=sleeping&timeoutMs=10").await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"]["message"], "unknown state 'sleeping'",
            "{body}"
        );
        let (status, body) = get("/api/slots/q/wait?timeoutMs=10").await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = get("/api/slots/q/wait?state=idle&timeoutMs=5000").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "idle", "{body}");
    });
}

/// Bytes of one frame of [`SPINNER`].
const SPINNER_FRAME: u64 = "\x1b[4;1H✶ Thinking… (0000)".len() as u64;
/// A Claude Code-like busy screen: a spinner frame every 40 ms above a prompt box.
const SPINNER: &str = "import sys, time\n\
    sys.stdout.write('\\x1b[2J\\x1b[H\\n\\n\\n\\n\\n' + '─' * 120 + '\\r\\n❯ \\r\\n' + '─' * 120)\n\
    for i in range(5000):\n\
    \x20   sys.stdout.write('\\x1b[4;1H' + '✶✻✽✢'[i % 4] + ' Thinking… (%04d)' % i); sys.stdout.flush()\n\
    \x20   time.sleep(0.04)\n";

/// A viewer in a browser tab nobody looks at (`visibility`, hidden) counts as nobody watching:
/// a busy slot is then read once a second, and the viewer gets the spinner's frames gathered,
/// many to a message; back in view, about a message a frame. (Without the message's effect the
/// hidden viewer keeps getting a message a frame, and the first wait below fails.)
#[test]
fn a_hidden_viewer_gets_a_busy_slot_s_frames_gathered() {
    let d = Daemon::in_process();
    block_on(async {
        let api = Api::new(&d);
        api.create(json!({
            "id": "busy", "command": "python3", "args": ["-c", SPINNER],
            "profile": "claude-code", "cols": 120, "rows": 40,
        }))
        .await;
        api.wait_slot("busy", "thinking", |s| s["state"] == "thinking")
            .await;
        let mut v = Viewer::attach(&d, "/pty/busy?binary=1").await;
        let output = async |v: &mut Viewer| -> u64 {
            loop {
                match v.next_within(Duration::from_secs(20)).await {
                    Ev::Msg(m) if m["type"] == "binary" => {
                        return m["bytes"].as_u64().expect("a size");
                    }
                    Ev::Msg(_) => continue,
                    other => panic!("the viewer's output ended: {other:?}"),
                }
            }
        };
        v.send_json(json!({"type": "visibility", "hidden": true}))
            .await;
        let deadline = tokio::time::Instant::now() + STEP;
        while output(&mut v).await < 5 * SPINNER_FRAME {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a hidden viewer still gets a message per frame"
            );
        }
        v.send_json(json!({"type": "visibility", "hidden": false}))
            .await;
        // The gathered frames and the first live ones, then 40 frames live.
        for _ in 0..3 {
            output(&mut v).await;
        }
        let (mut bytes, mut messages) = (0, 0);
        while bytes < 40 * SPINNER_FRAME {
            bytes += output(&mut v).await;
            messages += 1;
        }
        assert!(
            messages >= 13,
            "40 frames in view came in only {messages} messages"
        );
    });
}
