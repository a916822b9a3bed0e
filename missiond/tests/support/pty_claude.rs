//! The real Claude Code in a PTY without the daemon, its output fed to a vt100 screen and kept
//! byte for byte, so a test can drive it as a user would and a recorder can save what it wrote
//! (with the states a person reads off the screen at known moments) as a fixture.
#![allow(dead_code)] // each test binary uses a different part of this helper

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

use super::claude_env::{ClaudeEnv, VARS_TO_CLEAR};

pub const COLS: u16 = 120;
pub const ROWS: u16 = 40;
/// Generous: two cores are shared by parallel builds and tests.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Claude Code in a PTY, its output fed to a vt100 screen by a reader thread. Nobody answers
/// the terminal queries it sends at start (DA1, XTVERSION, kitty keyboard, OSC): it does not
/// need answers.
pub struct PtyClaude {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    parser: Arc<Mutex<vt100::Parser>>,
    /// Every byte the program wrote, in order.
    output: Arc<Mutex<Vec<u8>>>,
    _master: Box<dyn MasterPty + Send>,
}

impl PtyClaude {
    pub fn spawn(env: &ClaudeEnv) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open pty");
        let mut cmd = CommandBuilder::new(&env.command);
        cmd.args(&env.args);
        cmd.cwd(&env.cwd);
        for var in VARS_TO_CLEAR {
            cmd.env_remove(var);
        }
        for (k, v) in &env.env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn claude");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let output = Arc::new(Mutex::new(Vec::new()));
        let (sink, log) = (parser.clone(), output.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        // Parse and log under one lock, so an offset always matches its screen.
                        let mut parser = sink.lock().unwrap_or_else(|p| p.into_inner());
                        parser.process(&buf[..n]);
                        log.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .extend_from_slice(&buf[..n]);
                    }
                }
            }
        });
        PtyClaude {
            child,
            writer,
            parser,
            output,
            _master: pair.master,
        }
    }

    /// The screen's text and the number of output bytes behind it, taken together.
    pub fn screen_at(&self) -> (String, usize) {
        let parser = self.parser.lock().unwrap_or_else(|p| p.into_inner());
        let offset = self.output.lock().unwrap_or_else(|p| p.into_inner()).len();
        (parser.screen().contents(), offset)
    }

    /// Every byte written so far.
    pub fn output(&self) -> Vec<u8> {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.process_id()
    }

    pub fn screen_text(&self) -> String {
        self.parser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .screen()
            .contents()
    }

    pub fn bracketed_paste(&self) -> bool {
        self.parser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .screen()
            .bracketed_paste()
    }

    /// Polls the screen until `pred` holds; fails the test with the screen after `STEP_TIMEOUT`.
    pub fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        match self.poll_screen(STEP_TIMEOUT, &pred) {
            Ok(text) => text,
            Err(text) => panic!("timed out waiting for {what}; screen:\n{text}"),
        }
    }

    /// Polls the screen until `pred` holds (`Ok(screen)`) or `timeout` passes (`Err(screen)`).
    pub fn poll_screen(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.screen_text();
            if pred(&text) {
                return Ok(text);
            }
            if Instant::now() >= deadline {
                return Err(text);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Answers the dialog on screen with `keys`, sending them again while the same dialog is
    /// still asking after a few seconds: Claude Code can draw a dialog before it reads keys
    /// for it, and drops an answer given that early (`missiond confirm` does the same).
    pub fn answer_dialog(&mut self, keys: &[u8], still_asking: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            self.send(keys);
            match self.poll_screen(Duration::from_secs(3), |s| !still_asking(s)) {
                Ok(_) => return,
                Err(text) => assert!(
                    Instant::now() < deadline,
                    "the dialog never took the answer; screen:\n{text}"
                ),
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to pty");
        self.writer.flush().expect("flush pty");
    }

    /// Types a prompt the way the daemon does: bracketed paste when enabled, then Enter once
    /// the text shows in the prompt box (an Enter that arrives with the paste is taken as part
    /// of it), again if the box still holds the text a few seconds later.
    pub fn submit_prompt(&mut self, text: &str) {
        if self.bracketed_paste() {
            self.send(format!("\x1b[200~{text}\x1b[201~").as_bytes());
        } else {
            self.send(text.as_bytes());
        }
        // In the prompt box (the `❯` row under a rule; the marker is followed by a no-break
        // space), not in the transcript, which keeps the prompt too.
        let in_box = |s: &str| {
            let lines: Vec<&str> = s.lines().collect();
            lines.windows(2).any(|w| {
                w[0].starts_with("────")
                    && w[1]
                        .strip_prefix('❯')
                        .is_some_and(|rest| rest.trim_start().starts_with(text))
            })
        };
        self.wait_screen("the typed prompt", in_box);
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            self.send(b"\r");
            if self
                .poll_screen(Duration::from_secs(3), |s| !in_box(s))
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the prompt was never submitted; screen:\n{}",
                self.screen_text()
            );
        }
    }

    pub fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait claude") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "claude did not exit; screen:\n{}",
                self.screen_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PtyClaude {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
