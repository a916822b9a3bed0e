//! `missiond attach ID`: this terminal becomes a window onto a slot, over `/pty/ID`.
//!
//! The first frame is the slot's screen; then output streams in. Every byte typed goes to the
//! program as `{type:"input"}` (raw mode, so Ctrl-C is a byte for the program, not a signal for
//! us), SIGWINCH becomes `{type:"resize"}`, and the detach key ends the session. However the
//! session ends, the [`RawTerminal`] guard is dropped first and one line says why.

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use std::io::{Read, Write};
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{encode, Client, Failure, Socket};
use crate::output::exit_text;
use crate::terminal::{self, RawTerminal};
use missiond_core::protocol::{PtyClientMsg, PtyServerMsg, SlotInfo, SlotStatus};

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Slot id.
    pub id: String,
    /// Watch only: nothing typed reaches the program, and Ctrl-C detaches too.
    #[arg(long)]
    pub read_only: bool,
    /// Key that detaches: ctrl-A .. ctrl-Z, ctrl-\, ctrl-], ctrl-^, ctrl-_, or none.
    #[arg(long, default_value = "ctrl-]", value_name = "KEY", value_parser = DetachKey::parse)]
    pub detach_key: DetachKey,
}

/// The detach key as the byte a terminal sends for it, plus the kitty keyboard protocol form
/// (`CSI codepoint;5u`) in case the program switched that protocol on in our terminal.
#[derive(Debug, Clone)]
pub struct DetachKey {
    byte: Option<u8>,
    kitty: Option<Vec<u8>>,
}

impl DetachKey {
    pub fn parse(s: &str) -> Result<DetachKey, String> {
        let lower = s.to_ascii_lowercase();
        if lower == "none" {
            return Ok(DetachKey {
                byte: None,
                kitty: None,
            });
        }
        let key = lower
            .strip_prefix("ctrl-")
            .or_else(|| lower.strip_prefix("ctrl+"))
            .or_else(|| lower.strip_prefix("c-"))
            .or_else(|| lower.strip_prefix('^'))
            .filter(|k| k.chars().count() == 1)
            .and_then(|k| k.chars().next())
            .ok_or_else(|| format!("'{s}' is not a detach key; write e.g. ctrl-] or ctrl-b"))?;
        let (byte, kitty_code) = match key {
            'a'..='z' if key != 'm' && key != 'i' && key != 'h' => (key as u8 - b'a' + 1, Some(key as u32)),
            '\\' => (0x1c, Some('\\' as u32)),
            ']' => (0x1d, Some(']' as u32)),
            '^' => (0x1e, None),
            '_' => (0x1f, None),
            _ => {
                return Err(format!(
                    "'{s}' cannot detach: use ctrl-a .. ctrl-z (not ctrl-h, ctrl-i, ctrl-m), ctrl-\\, ctrl-], ctrl-^ or ctrl-_"
                ))
            }
        };
        Ok(DetachKey {
            byte: Some(byte),
            kitty: kitty_code.map(|c| format!("\x1b[{c};5u").into_bytes()),
        })
    }

    /// Where the key starts in `input`, and how many bytes it takes.
    fn find(&self, input: &[u8]) -> Option<(usize, usize)> {
        let byte = self
            .byte
            .and_then(|b| input.iter().position(|&x| x == b).map(|i| (i, 1)));
        let kitty = self.kitty.as_ref().and_then(|seq| {
            input
                .windows(seq.len())
                .position(|w| w == seq.as_slice())
                .map(|i| (i, seq.len()))
        });
        match (byte, kitty) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// How an attach session ended.
enum End {
    Detached,
    ReadOnlyInterrupt,
    Exited {
        code: Option<i32>,
        signal: Option<String>,
    },
    Closed {
        code: u16,
        reason: String,
    },
    Lost(String),
    Signal(&'static str),
    Output(std::io::Error),
}

pub async fn run(client: &Client, args: AttachArgs) -> Result<ExitCode, Failure> {
    let id = args.id.clone();
    // Ask over REST first: an unknown or exited slot gets a clear answer before the terminal changes.
    let info: SlotInfo = client.get(&format!("/api/slots/{}", encode(&id))).await?;
    if info.status == SlotStatus::Exited {
        return Err(Failure::new(format!(
            "slot '{id}' has exited ({}); `missiond restart {id}` starts it again",
            exit_text(info.exit_code, info.exit_signal.as_deref())
        )));
    }
    let tty = terminal::stdin_is_tty();
    if !tty && !args.read_only {
        return Err(Failure::new(
            "attach needs a terminal on stdin (use --read-only to watch, or `send`/`screen` from scripts)",
        ));
    }
    // Output as binary frames: the program's bytes exactly, with nothing to decode.
    let path = if args.read_only {
        format!("/pty/{}?binary=1&mode=ro", encode(&id))
    } else {
        format!("/pty/{}?binary=1", encode(&id))
    };
    let socket = client.websocket(&path).await?;

    let end = {
        let _raw = if tty {
            Some(RawTerminal::enter().map_err(|e| {
                Failure::new(format!("cannot switch the terminal to raw mode: {e}"))
            })?)
        } else {
            None
        };
        let mut input = if tty {
            Some(spawn_stdin_reader())
        } else {
            None
        };
        let mut socket = socket;
        loop {
            match session(socket, &mut input, &args).await {
                // The daemon upgrades itself: the slot runs on, so attach again.
                End::Closed {
                    code: CLOSE_RESTARTING,
                    ..
                } => match client.reconnect(&path).await {
                    Some(again) => socket = again,
                    None => {
                        break End::Lost("the daemon did not come back from its upgrade".into())
                    }
                },
                end => break end,
            }
        }
        // `_raw` drops here: the terminal is restored before anything is printed.
    };

    match end {
        End::Detached => {
            eprintln!(
                "missiond: detached from {id} (it keeps running; `missiond attach {id}` to return)"
            );
            Ok(ExitCode::SUCCESS)
        }
        End::ReadOnlyInterrupt => {
            eprintln!("missiond: stopped watching {id}");
            Ok(ExitCode::SUCCESS)
        }
        End::Exited { code, signal } => {
            eprintln!(
                "missiond: {id} exited ({})",
                exit_text(code, signal.as_deref())
            );
            Ok(ExitCode::SUCCESS)
        }
        End::Closed { code, reason } => Err(Failure::new(close_text(&id, code, &reason))),
        End::Lost(why) => Err(Failure::new(format!(
            "lost the connection to the daemon at {} ({why})",
            client.base()
        ))),
        End::Signal(name) => Err(Failure::new(format!("detached from {id}: received {name}"))),
        End::Output(e) => Err(Failure::new(format!("cannot write to the terminal: {e}"))),
    }
}

fn close_text(id: &str, code: u16, reason: &str) -> String {
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    match code {
        4000 => format!("the daemon refused the slot id '{id}'{reason}"),
        4001 => format!("slot '{id}' was not found or has exited{reason}"),
        4002 => format!("cannot attach to '{id}'{reason}"),
        4003 => format!("{id} exited{reason}"),
        _ => format!("the daemon closed the connection (code {code}{reason})"),
    }
}

/// Stdin is read on a plain thread (a blocking read cannot be cancelled; the process exits
/// without waiting for it). Chunks arrive in order; the channel closes at end of input.
fn spawn_stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    rx
}

/// Close code of a viewer whose daemon is upgrading.
use missiond_core::protocol::codes::close::RESTARTING as CLOSE_RESTARTING;

async fn session(
    socket: Socket,
    input: &mut Option<mpsc::Receiver<Vec<u8>>>,
    args: &AttachArgs,
) -> End {
    let (mut sink, mut stream) = socket.split();
    let signals = (
        signal(SignalKind::window_change()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
    );
    let (mut winch, mut term, mut hup, mut int) = match signals {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        _ => return End::Lost("cannot install signal handlers".into()),
    };
    let mut encoder = InputEncoder::default();
    let mut exit: Option<(Option<i32>, Option<String>)> = None;

    if !args.read_only {
        if let Some((cols, rows)) = terminal::size() {
            if let Err(e) = send(
                &mut sink,
                &PtyClientMsg::Resize {
                    cols,
                    rows,
                    force: false,
                },
            )
            .await
            {
                return End::Lost(e);
            }
        }
    }

    loop {
        tokio::select! {
            frame = stream.next() => {
                let msg = match frame {
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => return exit_or(exit, End::Lost(e.to_string())),
                    None => return exit_or(exit, End::Lost("connection closed".into())),
                };
                match msg {
                    Message::Text(text) => {
                        match serde_json::from_str::<PtyServerMsg>(text.as_str()) {
                            Ok(PtyServerMsg::Screen { data, .. }) => {
                                if let Err(e) = write_out(&["\x1b[0m\x1b[H\x1b[2J", &data]) {
                                    return End::Output(e);
                                }
                            }
                            Ok(PtyServerMsg::Data { data }) => {
                                if let Err(e) = write_out(&[&data]) {
                                    return End::Output(e);
                                }
                            }
                            Ok(PtyServerMsg::Exit { code, signal }) => exit = Some((code, signal)),
                            // State, resize and error frames are for viewers with a status bar.
                            Ok(_) | Err(_) => {}
                        }
                    }
                    Message::Binary(bytes) => {
                        if let Err(e) = write_bytes(&bytes) {
                            return End::Output(e);
                        }
                    }
                    Message::Close(frame) => {
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((u16::from(CloseCode::Normal), String::new()));
                        if code == 4003 || exit.is_some() {
                            let (code, signal) = exit.unwrap_or((None, None));
                            return End::Exited { code, signal };
                        }
                        return End::Closed { code, reason };
                    }
                    _ => {}
                }
            }
            chunk = recv(input) => {
                let Some(chunk) = chunk else {
                    // End of input (the terminal went away): nothing more can be typed.
                    return End::Detached;
                };
                let (forward, detach) = match args.detach_key.find(&chunk) {
                    Some((at, _)) => (&chunk[..at], true),
                    None => (&chunk[..], false),
                };
                if args.read_only {
                    if detach {
                        return End::Detached;
                    }
                    if forward.contains(&0x03) {
                        return End::ReadOnlyInterrupt;
                    }
                    continue;
                }
                for msg in encoder.encode(forward) {
                    if let Err(e) = sink.send(msg).await {
                        return End::Lost(e.to_string());
                    }
                }
                if detach {
                    let _ = sink.send(Message::Close(None)).await;
                    return End::Detached;
                }
            }
            _ = winch.recv() => {
                if !args.read_only {
                    if let Some((cols, rows)) = terminal::size() {
                        if let Err(e) = send(&mut sink, &PtyClientMsg::Resize { cols, rows, force: false }).await {
                            return End::Lost(e);
                        }
                    }
                }
            }
            _ = term.recv() => return End::Signal("SIGTERM"),
            _ = hup.recv() => return End::Signal("SIGHUP"),
            _ = int.recv() => return End::Signal("SIGINT"),
        }
    }
}

/// After an `exit` frame, a dropped connection still means the slot exited.
fn exit_or(exit: Option<(Option<i32>, Option<String>)>, otherwise: End) -> End {
    match exit {
        Some((code, signal)) => End::Exited { code, signal },
        None => otherwise,
    }
}

async fn recv(input: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn send<S>(sink: &mut S, msg: &PtyClientMsg) -> Result<(), String>
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    let text = serde_json::to_string(msg).map_err(|e| e.to_string())?;
    sink.send(Message::text(text))
        .await
        .map_err(|e| e.to_string())
}

fn write_out(parts: &[&str]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for p in parts {
        out.write_all(p.as_bytes())?;
    }
    out.flush()
}

fn write_bytes(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Turns keystroke bytes into frames: UTF-8 text as `{type:"input"}`, with a character split
/// across two reads carried over; bytes that are not UTF-8 at all (e.g. Meta-sent 8-bit keys)
/// go as a binary frame, which the daemon treats as raw input.
#[derive(Default)]
struct InputEncoder {
    carry: Vec<u8>,
}

impl InputEncoder {
    fn encode(&mut self, bytes: &[u8]) -> Vec<Message> {
        self.carry.extend_from_slice(bytes);
        let mut out = Vec::new();
        match std::str::from_utf8(&self.carry) {
            Ok(text) => {
                if !text.is_empty() {
                    out.push(input_frame(text));
                }
                self.carry.clear();
            }
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                if valid > 0 {
                    let text = String::from_utf8_lossy(&self.carry[..valid]).into_owned();
                    out.push(input_frame(&text));
                }
                self.carry.drain(..valid);
            }
            Err(_) => {
                out.push(Message::binary(std::mem::take(&mut self.carry)));
            }
        }
        out
    }
}

fn input_frame(text: &str) -> Message {
    let msg = PtyClientMsg::Input {
        data: text.to_string(),
    };
    match serde_json::to_string(&msg) {
        Ok(json) => Message::text(json),
        Err(_) => Message::binary(text.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_to_control_bytes() {
        let k = DetachKey::parse("ctrl-]").map_err(|e| e.to_string());
        let Ok(k) = k else { panic!("{k:?}") };
        assert_eq!(k.byte, Some(0x1d));
        assert_eq!(k.find(b"ab\x1dcd"), Some((2, 1)));
        assert_eq!(k.find(b"x\x1b[93;5u"), Some((1, 7)));
        let b = DetachKey::parse("Ctrl-B").map_err(|e| e.to_string());
        assert_eq!(b.map(|k| k.byte), Ok(Some(2)));
        assert!(DetachKey::parse("ctrl-m").is_err());
        assert!(DetachKey::parse("x").is_err());
        let none = DetachKey::parse("none").map_err(|e| e.to_string());
        assert_eq!(none.map(|k| k.find(b"\x1d")), Ok(None));
    }

    fn texts(msgs: Vec<Message>) -> Vec<String> {
        msgs.into_iter()
            .map(|m| match m {
                Message::Text(t) => t.as_str().to_string(),
                Message::Binary(b) => format!("bin:{:?}", b.to_vec()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn input_keeps_characters_split_across_reads() {
        let mut enc = InputEncoder::default();
        let e = "é".as_bytes();
        assert_eq!(
            texts(enc.encode(&[b'a', e[0]])),
            vec![r#"{"type":"input","data":"a"}"#]
        );
        assert_eq!(
            texts(enc.encode(&[e[1]])),
            vec![r#"{"type":"input","data":"é"}"#]
        );
        assert_eq!(texts(enc.encode(&[0xff, b'x'])), vec!["bin:[255, 120]"]);
        assert_eq!(
            texts(enc.encode(b"\x03")),
            vec![r#"{"type":"input","data":"\u0003"}"#]
        );
    }
}
