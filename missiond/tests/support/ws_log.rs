//! A daemon WebSocket (`/events`, `/tasks`) recorded on its own thread, for tests that look
//! through every frame.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::daemon::Daemon;

const STEP: Duration = Duration::from_secs(60);

/// A WebSocket of the daemon (`/events`, `/tasks`) read on its own thread; every text frame
/// is kept, parsed, for the test to look through.
pub struct WsLog {
    frames: Arc<(Mutex<Vec<Value>>, Condvar)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WsLog {
    /// Connects with `Authorization: Bearer` and returns once the first frame (the snapshot)
    /// arrived, so nothing after this call can be missed.
    pub fn connect(daemon: &Daemon, path: &str) -> WsLog {
        let url = format!("{}{path}", daemon.url.replacen("http://", "ws://", 1));
        let mut request = url
            .as_str()
            .into_client_request()
            .expect("WebSocket request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", daemon.token)
                .parse()
                .expect("header value"),
        );
        let frames: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let sink = frames.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let (mut ws, _) = match tokio_tungstenite::connect_async(request).await {
                    Ok(ok) => ok,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::pin!(stop_rx);
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => {
                            let _ = ws.close(None).await;
                            return;
                        }
                        msg = ws.next() => match msg {
                            Some(Ok(Message::Text(text))) => {
                                let value = serde_json::from_str(&text)
                                    .unwrap_or_else(|_| Value::String(text.to_string()));
                                let (lock, cvar) = &*sink;
                                lock.lock().unwrap_or_else(|p| p.into_inner()).push(value);
                                cvar.notify_all();
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => return,
                        }
                    }
                }
            });
        });
        match ready_rx.recv_timeout(STEP) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("connecting to {path}: {e}"),
            Err(_) => panic!("connecting to {path} timed out"),
        }
        let log = WsLog {
            frames,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        log.wait_for(&format!("the first frame of {path}"), |_| true);
        log
    }

    pub fn frames(&self) -> Vec<Value> {
        self.frames
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Blocks until a frame satisfies `pred` (looking at every frame so far); returns it.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STEP;
        let (lock, cvar) = &*self.frames;
        let mut frames = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(found) = frames.iter().find(|f| pred(f)) {
                return found.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("no frame with {what} within {STEP:?}; frames: {frames:#?}");
            }
            frames = cvar
                .wait_timeout(frames, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for WsLog {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
