//! `/events` (every slot's lifecycle and state) and `/tasks` (Claude Code task lists).
//!
//! Both start with a snapshot and then forward a broadcast. A subscriber that falls behind
//! the ring gets a fresh snapshot instead of the events it missed. An upgrade closes them
//! with 1012: the client connects again and gets a fresh snapshot from the new daemon.

use super::AppState;
use crate::protocol::tasks::{TaskEvent, TasksClientMsg};
use crate::protocol::SlotEvent;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Control and JSON messages from stream clients are tiny.
const MAX_INBOUND: usize = 64 * 1024;

pub async fn events(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Response {
    ws.max_message_size(MAX_INBOUND)
        .read_buffer_size(super::pty_ws::READ_BUFFER)
        .on_upgrade(move |socket| serve_events(socket, state))
}

async fn serve_events(socket: WebSocket, state: Arc<AppState>) {
    let stuck = state.supervisor.settings().stuck_viewer;
    let counters = state.supervisor.counters().clone();
    let (mut sink, mut stream) = socket.split();
    let mut rx = state.supervisor.subscribe();
    let mut upgrading = state.upgrading.subscribe();
    let snapshot = SlotEvent::Slots {
        slots: state.supervisor.list(),
    };
    if send(&mut sink, &snapshot, stuck, &counters.events_sent)
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            true = async { upgrading.wait_for(|up| *up).await.is_ok() } => {
                let _ = sink.send(super::pty_ws::restarting_close()).await;
                return;
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            event = rx.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => SlotEvent::Slots { slots: state.supervisor.list() },
                    Err(RecvError::Closed) => return,
                };
                if send(&mut sink, &event, stuck, &counters.events_sent).await.is_err() {
                    return;
                }
            }
        }
    }
}

pub async fn tasks(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Response {
    ws.max_message_size(MAX_INBOUND)
        .read_buffer_size(super::pty_ws::READ_BUFFER)
        .on_upgrade(move |socket| serve_tasks(socket, state))
}

async fn serve_tasks(socket: WebSocket, state: Arc<AppState>) {
    let stuck = state.supervisor.settings().stuck_viewer;
    let counters = state.supervisor.counters().clone();
    let (mut sink, mut stream) = socket.split();
    let hub = state.tasks.clone();
    // Atomically, so a change cannot land in both the overview and the stream.
    let (overview, mut rx) = hub.subscribe_with_overview();
    let mut upgrading = state.upgrading.subscribe();
    if send(
        &mut sink,
        &TaskEvent::CcTasksOverview(overview),
        stuck,
        &counters.task_events_sent,
    )
    .await
    .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            true = async { upgrading.wait_for(|up| *up).await.is_ok() } => {
                let _ = sink.send(super::pty_ws::restarting_close()).await;
                return;
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = match serde_json::from_str::<TasksClientMsg>(&text) {
                        Ok(TasksClientMsg::GetTasks) => serde_json::to_value(TaskEvent::CcTasksOverview(hub.overview())),
                        Err(e) => Ok(serde_json::json!({"type": "error", "message": format!("unknown or malformed message: {e}")})),
                    };
                    if let Ok(reply) = reply {
                        if send(&mut sink, &reply, stuck, &counters.task_events_sent).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            event = rx.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => TaskEvent::CcTasksOverview(hub.overview()),
                    Err(RecvError::Closed) => return,
                };
                if send(&mut sink, &event, stuck, &counters.task_events_sent).await.is_err() {
                    return;
                }
            }
        }
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Sends `msg` and counts it; a client that takes nothing for `stuck` is given up on.
async fn send(
    sink: &mut Sink,
    msg: &impl Serialize,
    stuck: Duration,
    counter: &AtomicU64,
) -> Result<(), ()> {
    let text = serde_json::to_string(msg).map_err(|_| ())?;
    match tokio::time::timeout(stuck, sink.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => {
            crate::metrics::add(counter, 1);
            Ok(())
        }
        _ => Err(()),
    }
}
