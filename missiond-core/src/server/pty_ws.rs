//! `/pty/<slot>`: one viewer of one slot's terminal.
//!
//! The viewer gets the screen, then live output coalesced into frames, state changes, resizes
//! and the exit. It may type and resize unless it is read-only; its resize applies only while
//! it is the slot's only viewer, or with `force` (viewers never fight over the size). Input
//! and applied resizes are written to the audit trail before they reach the program. A viewer that falls behind
//! the slot's fan-out ring loses its backlog and gets a fresh screen instead; one that stops
//! reading for `[server] stuck_viewer_secs` is closed. Nothing a viewer does can slow the program.

use super::actor::RequestActor;
use super::audit_api::{input_entry, record};
use super::auth::Access;
use super::error::Choice;
use super::AppState;
use crate::config::validate_slot_id;
use crate::protocol::audit::{Actor, AuditAction, AuditEntry};
use crate::protocol::framing::{json_escape, Chunk, DATA_FRAME_HEAD, DATA_FRAME_TAIL};
use crate::protocol::{PtyClientMsg, PtyServerMsg};
use crate::supervisor::{now_millis, ViewerToken};
use crate::supervisor::{FanoutReceiver, RecvError, TryRecvError};
use crate::supervisor::{Run, Snapshot, ViewerMsg};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub use crate::protocol::codes::close::{
    CANNOT_ATTACH as CLOSE_CANNOT_ATTACH, EXITED as CLOSE_EXITED, INVALID_URL as CLOSE_INVALID_URL,
    NOT_FOUND as CLOSE_NOT_FOUND, RESTARTING as CLOSE_RESTARTING, STUCK as CLOSE_STUCK,
};
/// Largest message a viewer may send; a larger one closes that connection with 1009.
pub const MAX_INBOUND: usize = 1024 * 1024;
/// A frame carries at most this much output, so one frame never holds a viewer up for long.
const FRAME_BYTES: usize = 64 * 1024;
/// The socket's read buffer. Viewers send keystrokes, and tungstenite clears the whole buffer
/// on every read attempt: the 128 KiB default cost more CPU than encoding the output.
pub const READ_BUFFER: usize = 4096;

#[derive(Debug, Deserialize)]
pub struct PtyQuery {
    /// `mode=ro`: watch only (`rw`, the default, types and resizes).
    #[serde(default)]
    mode: Option<Choice<ViewMode>>,
    /// `binary=1`: output as binary frames of raw bytes instead of `{"type":"data"}` JSON.
    #[serde(default)]
    binary: Option<Choice<Switch>>,
}

/// An on/off query parameter: `1` or `true`, `0` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub enum Switch {
    #[serde(rename = "1", alias = "true")]
    On,
    #[serde(rename = "0", alias = "false")]
    Off,
}

/// What a viewer may do: `mode=ro` or `mode=rw`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub enum ViewMode {
    #[serde(rename = "ro")]
    ReadOnly,
    #[serde(rename = "rw")]
    ReadWrite,
}

/// `/pty`, `/pty/`, `/pty/a/b`: upgrade, then close with 4000.
pub async fn invalid_url(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|socket| close(socket, CLOSE_INVALID_URL, INVALID_URL.to_string()))
}

pub async fn attach(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    Query(query): Query<PtyQuery>,
    Extension(access): Extension<Access>,
    RequestActor(actor): RequestActor,
) -> Response {
    // Allow transport frames a little above the limit so an oversized message is answered
    // with a clean 1009 close rather than a protocol error.
    let ws = ws
        .max_message_size(MAX_INBOUND * 8)
        .max_frame_size(MAX_INBOUND * 8)
        .read_buffer_size(READ_BUFFER);
    if path.contains('/') || validate_slot_id(&path).is_err() {
        return ws.on_upgrade(|s| close(s, CLOSE_INVALID_URL, INVALID_URL.to_string()));
    }
    let binary = match query.binary {
        None | Some(Choice::Known(Switch::Off)) => false,
        Some(Choice::Known(Switch::On)) => true,
        Some(Choice::Unknown(other)) => {
            let reason = format!("invalid binary={other}: use binary=1 or leave it out");
            return ws.on_upgrade(move |s| close(s, CLOSE_INVALID_URL, reason));
        }
    };
    let read_only_mode = match query.mode {
        None | Some(Choice::Known(ViewMode::ReadWrite)) => false,
        Some(Choice::Known(ViewMode::ReadOnly)) => true,
        Some(Choice::Unknown(other)) => {
            let reason = format!("invalid mode={other}: use mode=ro or leave it out");
            return ws.on_upgrade(move |s| close(s, CLOSE_INVALID_URL, reason));
        }
    };
    let slot = match state.supervisor.get(&path) {
        Ok(slot) => slot,
        Err(e) => {
            let reason = e.to_string();
            return ws.on_upgrade(move |s| close(s, CLOSE_NOT_FOUND, reason));
        }
    };
    let run = match slot.live_run() {
        Ok(run) => run,
        Err(e) => {
            let reason = e.to_string();
            return ws.on_upgrade(move |s| close(s, CLOSE_NOT_FOUND, reason));
        }
    };
    let max = state.supervisor.settings().max_viewers;
    let stuck = state.supervisor.settings().stuck_viewer;
    let Some(token) = run.admit_viewer(max) else {
        let reason = format!("slot '{path}' already has {max} viewers");
        return ws.on_upgrade(move |s| close(s, CLOSE_CANNOT_ATTACH, reason));
    };
    let read_only = access == Access::ReadOnly || read_only_mode;
    let state_view = slot.state();
    ws.on_upgrade(move |socket| async move {
        let viewer = Viewer {
            token,
            run,
            slot,
            state: state.clone(),
            actor,
            read_only,
            binary,
            stuck_timeout: stuck,
        };
        viewer.serve(socket, state_view).await;
    })
}

const INVALID_URL: &str = "invalid URL: use /pty/<slot id>";
const RESTARTING_REASON: &str = "the daemon is upgrading; reconnect";

/// Tells a WebSocket client the daemon is upgrading: connect again (close code 1012).
pub(super) fn restarting_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CLOSE_RESTARTING,
        reason: RESTARTING_REASON.into(),
    }))
}

async fn close(mut socket: WebSocket, code: u16, reason: String) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(truncate(&reason, 120)),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Close reasons must fit a control frame (125 bytes).
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

struct Viewer {
    /// Keeps the viewer counted while it is served.
    token: ViewerToken,
    run: Arc<Run>,
    slot: Arc<crate::supervisor::Slot>,
    /// For the audit trail.
    state: Arc<AppState>,
    actor: Actor,
    read_only: bool,
    /// Output goes out as binary frames of raw bytes (`?binary=1`).
    binary: bool,
    /// `[server] stuck_viewer_secs`.
    stuck_timeout: Duration,
}

/// Why a viewer's session ended.
enum End {
    Exited,
    Restarting,
    Closed,
    Stuck,
    TooLarge,
}

impl Viewer {
    async fn serve(self, socket: WebSocket, state_view: crate::supervisor::StateView) {
        let (sink, mut stream) = socket.split();
        let mut sink = Sink {
            inner: sink,
            stuck: self.stuck_timeout,
            counters: self.state.supervisor.counters().clone(),
        };
        // An upgrade may pause the slot while this viewer is being admitted: it then waits
        // for the new image like the viewers already attached.
        let mut upgrading = self.state.upgrading.subscribe();
        let subscribed = tokio::select! {
            subscribed = self.run.subscribe() => subscribed,
            true = async { upgrading.wait_for(|up| *up).await.is_ok() } => {
                let _ = sink.inner.send(restarting_close()).await;
                return;
            }
        };
        let Some((mut rx, snapshot)) = subscribed else {
            let _ = sink
                .inner
                .send(Message::Close(Some(CloseFrame {
                    code: CLOSE_CANNOT_ATTACH,
                    reason: "slot is gone".into(),
                })))
                .await;
            return;
        };
        let mut skip_until = snapshot.end;
        let first = [
            screen_msg(&snapshot),
            PtyServerMsg::State {
                state: state_view.state,
                prev_state: None,
                detail: state_view.detail,
            },
        ];
        for msg in first {
            if send(&mut sink, &msg).await.is_err() {
                return;
            }
        }
        let end = loop {
            tokio::select! {
                true = async { upgrading.wait_for(|up| *up).await.is_ok() } => break End::Restarting,
                incoming = stream.next() => match incoming {
                    Some(Ok(msg)) => {
                        if let Some(end) = self.handle_client(msg, &mut sink).await {
                            break end;
                        }
                    }
                    _ => break End::Closed,
                },
                outgoing = rx.recv() => {
                    let result = match outgoing {
                        Ok(msg) => self.forward(msg, &mut rx, &mut skip_until, &mut sink).await,
                        Err(RecvError::Lagged) => self.resync(&mut rx, &mut skip_until, &mut sink).await,
                        Err(RecvError::Closed) => Err(End::Exited),
                    };
                    if let Err(end) = result {
                        break end;
                    }
                }
            }
        };
        let close = match end {
            End::Exited => Some((CLOSE_EXITED, "slot exited")),
            End::Restarting => Some((CLOSE_RESTARTING, RESTARTING_REASON)),
            End::Stuck => Some((CLOSE_STUCK, "viewer stopped reading")),
            End::TooLarge => Some((1009, "message too large (limit 1 MiB)")),
            End::Closed => None,
        };
        if let Some((code, reason)) = close {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                sink.inner.send(Message::Close(Some(frame))),
            )
            .await;
        }
    }

    /// Sends `first` and whatever output is already queued behind it, as one frame.
    async fn forward(
        &self,
        first: ViewerMsg,
        rx: &mut FanoutReceiver,
        skip_until: &mut u64,
        sink: &mut Sink,
    ) -> Result<(), End> {
        let mut frame = DataFrame::new(self.binary);
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                ViewerMsg::Output(chunk) => {
                    if chunk.end() > *skip_until {
                        // Part of it may already be in the viewer's snapshot.
                        let from = skip_until.saturating_sub(chunk.start) as usize;
                        frame.push(&chunk, from);
                        *skip_until = chunk.end();
                    }
                    if frame.raw_len < FRAME_BYTES {
                        next = match rx.try_recv() {
                            Ok(msg) => Some(msg),
                            Err(TryRecvError::Lagged) => {
                                frame.flush(sink).await?;
                                return self.resync(rx, skip_until, sink).await;
                            }
                            Err(_) => None,
                        };
                    }
                }
                other => {
                    frame.flush(sink).await?;
                    let exited = matches!(other, ViewerMsg::Exit(_));
                    if let Some(msg) = control_msg(other) {
                        send(sink, &msg).await?;
                    }
                    if exited {
                        return Err(End::Exited);
                    }
                }
            }
        }
        frame.flush(sink).await
    }

    /// The viewer fell behind the ring: drop its backlog, send the screen as it is now.
    ///
    /// It subscribes afresh, exactly as on attach, rather than keep the lagged receiver: that
    /// one resumes at the oldest chunk still in the ring, which a flood overwrites again while
    /// the snapshot waits its turn on the parser thread, so the viewer would get screen after
    /// screen and never the stream again until the flood stopped.
    async fn resync(
        &self,
        rx: &mut FanoutReceiver,
        skip_until: &mut u64,
        sink: &mut Sink,
    ) -> Result<(), End> {
        let Some((fresh, snapshot)) = self.run.subscribe().await else {
            return Err(End::Exited);
        };
        *rx = fresh;
        *skip_until = snapshot.end;
        send(sink, &screen_msg(&snapshot)).await?;
        // What the dropped backlog may have held besides output: the state, and the exit
        // (announced before the snapshot was taken, so the fresh receiver may never see it).
        let view = self.slot.state();
        send(
            sink,
            &PtyServerMsg::State {
                state: view.state,
                prev_state: None,
                detail: view.detail,
            },
        )
        .await?;
        if let Some(exit) = self.run.exit_info() {
            send(
                sink,
                &PtyServerMsg::Exit {
                    code: exit.code,
                    signal: exit.signal,
                },
            )
            .await?;
            return Err(End::Exited);
        }
        Ok(())
    }

    /// Handles one message from the viewer; `Some` ends the session.
    async fn handle_client(&self, msg: Message, sink: &mut Sink) -> Option<End> {
        let size = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        if size > MAX_INBOUND {
            return Some(End::TooLarge);
        }
        match msg {
            Message::Text(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(value) if value.is_object() => {
                    match serde_json::from_value::<PtyClientMsg>(value) {
                        Ok(PtyClientMsg::Input { data }) => self.input(data.as_bytes(), sink).await,
                        Ok(PtyClientMsg::Visibility { hidden }) => {
                            self.run.set_viewer_hidden(&self.token, hidden);
                            None
                        }
                        Ok(PtyClientMsg::Resize { cols, rows, force }) => {
                            if self.read_only {
                                return None;
                            }
                            // Viewers never fight over the size: with others watching, only an
                            // explicit fit resizes the program; this viewer renders the real size.
                            if !force && self.run.viewer_count() > 1 {
                                let info = self.slot.info();
                                let real = PtyServerMsg::Resize {
                                    cols: info.cols,
                                    rows: info.rows,
                                };
                                return send(sink, &real).await.err();
                            }
                            let mut entry = AuditEntry::new(
                                now_millis(),
                                self.slot.id(),
                                AuditAction::Resize,
                                self.actor.clone(),
                            );
                            (entry.cols, entry.rows) = (Some(cols), Some(rows));
                            if let Err(e) = record(&self.state, &entry) {
                                return error_reply(sink, &e.message).await;
                            }
                            if let Err(e) = self.slot.resize(cols, rows).await {
                                return error_reply(sink, &e.to_string()).await;
                            }
                            None
                        }
                        Err(e) => {
                            error_reply(sink, &format!("unknown or malformed message: {e}")).await
                        }
                    }
                }
                // Not a JSON object: raw input, as the wire protocol says.
                _ => self.input(text.as_bytes(), sink).await,
            },
            Message::Binary(bytes) => self.input(&bytes, sink).await,
            Message::Close(_) => Some(End::Closed),
            Message::Ping(_) | Message::Pong(_) => None,
        }
    }

    async fn input(&self, data: &[u8], sink: &mut Sink) -> Option<End> {
        if self.read_only || data.is_empty() {
            return None;
        }
        let entry = input_entry(self.slot.id(), data, self.actor.clone());
        if let Err(e) = record(&self.state, &entry) {
            return error_reply(sink, &e.message).await;
        }
        match self.run.write_from_viewer(data) {
            Ok(()) => None,
            Err(e) => error_reply(sink, &e.to_string()).await,
        }
    }
}

/// The viewer's outgoing half, and how long a send may wait before the viewer counts as stuck.
struct Sink {
    inner: futures_util::stream::SplitSink<WebSocket, Message>,
    stuck: Duration,
    counters: Arc<crate::metrics::Counters>,
}

async fn error_reply(sink: &mut Sink, message: &str) -> Option<End> {
    send(
        sink,
        &PtyServerMsg::Error {
            message: message.to_string(),
        },
    )
    .await
    .err()
}

fn screen_msg(snapshot: &Snapshot) -> PtyServerMsg {
    PtyServerMsg::Screen {
        data: String::from_utf8_lossy(&snapshot.ansi).into_owned(),
        cols: snapshot.cols,
        rows: snapshot.rows,
    }
}

fn control_msg(msg: ViewerMsg) -> Option<PtyServerMsg> {
    Some(match msg {
        ViewerMsg::State {
            state,
            prev,
            detail,
        } => PtyServerMsg::State {
            state,
            prev_state: Some(prev),
            detail,
        },
        ViewerMsg::Resize { cols, rows } => PtyServerMsg::Resize { cols, rows },
        ViewerMsg::Exit(exit) => PtyServerMsg::Exit {
            code: exit.code,
            signal: exit.signal,
        },
        ViewerMsg::Output(_) => return None,
    })
}

/// Output for one frame: a `{"type":"data"}` JSON text assembled from already escaped chunks
/// (the JSON is written by hand because serialising the same bytes once per viewer is the cost
/// that grows with viewers), or raw bytes for a binary viewer.
struct DataFrame {
    binary: bool,
    json: String,
    bytes: Vec<u8>,
    /// Output bytes in the frame, before escaping.
    raw_len: usize,
}

impl DataFrame {
    fn new(binary: bool) -> DataFrame {
        DataFrame {
            binary,
            json: String::new(),
            bytes: Vec::new(),
            raw_len: 0,
        }
    }

    /// Adds `chunk` from byte `from` on (the bytes before are in the viewer's snapshot).
    fn push(&mut self, chunk: &Chunk, from: usize) {
        let rest = &chunk.bytes[from.min(chunk.bytes.len())..];
        if rest.is_empty() {
            return;
        }
        self.raw_len += rest.len();
        if self.binary {
            self.bytes.extend_from_slice(rest);
            return;
        }
        if self.json.is_empty() {
            self.json.push_str(DATA_FRAME_HEAD);
        }
        if from == 0 {
            self.json.push_str(chunk.json_escaped());
        } else {
            self.json.push_str(&json_escape(rest));
        }
    }

    /// The finished frame, if any output was pushed; leaves the builder empty.
    fn take(&mut self) -> Option<Message> {
        if self.raw_len == 0 {
            return None;
        }
        self.raw_len = 0;
        if self.binary {
            return Some(Message::Binary(std::mem::take(&mut self.bytes).into()));
        }
        let mut json = std::mem::take(&mut self.json);
        json.push_str(DATA_FRAME_TAIL);
        Some(Message::Text(json.into()))
    }

    async fn flush(&mut self, sink: &mut Sink) -> Result<(), End> {
        match self.take() {
            Some(msg) => send_message(sink, msg).await,
            None => Ok(()),
        }
    }
}

async fn send(sink: &mut Sink, msg: &PtyServerMsg) -> Result<(), End> {
    let text = serde_json::to_string(msg).map_err(|_| End::Closed)?;
    send_message(sink, Message::Text(text.into())).await
}

async fn send_message(sink: &mut Sink, msg: Message) -> Result<(), End> {
    let len = match &msg {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    };
    crate::metrics::add(&sink.counters.viewer_bytes_sent, len as u64);
    match tokio::time::timeout(sink.stuck, sink.inner.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Closed),
        Err(_) => Err(End::Stuck),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTS: [&[u8]; 3] = [
        b"\x1b[31m\"quoted\"\\ ",
        "é€😀\r\n".as_bytes(),
        b"\x07tab\tend",
    ];

    /// The parts as chunks of one stream, each pushed from byte `from` of the first.
    fn frame_of(binary: bool, from: usize) -> DataFrame {
        let mut frame = DataFrame::new(binary);
        let mut start = 0;
        for (i, part) in PARTS.iter().enumerate() {
            let chunk = Chunk::new(start, bytes::Bytes::copy_from_slice(part));
            start = chunk.end();
            frame.push(&chunk, if i == 0 { from } else { 0 });
        }
        frame
    }

    #[test]
    fn frame_from_escaped_chunks_is_the_data_message() {
        for from in [0, 5] {
            let mut frame = frame_of(false, from);
            let Some(Message::Text(json)) = frame.take() else {
                panic!("a text frame")
            };
            let whole: Vec<u8> = PARTS.concat();
            let expected = PtyServerMsg::Data {
                data: String::from_utf8(whole[from..].to_vec()).unwrap(),
            };
            let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed, serde_json::to_value(&expected).unwrap());
            assert!(frame.take().is_none());
        }
    }

    #[test]
    fn binary_frame_is_the_raw_bytes() {
        let mut frame = frame_of(true, 5);
        let Some(Message::Binary(bytes)) = frame.take() else {
            panic!("a binary frame")
        };
        assert_eq!(&bytes[..], &PARTS.concat()[5..]);
        assert!(frame.take().is_none());
    }
}
