//! One run of a slot's program: the process, its output pipeline and its viewers' broadcast.
//!
//! ```text
//! reader thread --(chunk)--> screen (vt100) + classifier -> states       (a trickle)
//!               \--(chunk)--> parser queue --> parser thread: the same   (a flood)
//!               \--(chunk)--> fan-out ring --> every viewer, each at its own pace
//! parser thread: also timers, inspections (snapshots), resizes, hooks, the exit
//! ```
//! The screen and the classifier ([`Pipeline`]) are shared by the reader and the parser thread
//! under one lock. A small chunk read alone (a spinner frame, an echo) is parsed on the reader
//! thread before it reads on, so it wakes one thread of the daemon rather than two; a flood
//! (reads that fill their buffer, or large ones) goes through the bounded parser queue, so
//! reading and parsing run side by side and the flood waits for the emulator, which must see
//! every byte. A chunk is parsed inline only when no queued chunk is still unparsed, so the
//! screen sees the output in order. A chunk is queued or parsed before it is broadcast: a viewer subscribes to the
//! broadcast first and then asks the parser thread for a snapshot through the same queue, so
//! the snapshot covers every chunk the viewer missed; chunks it got twice are skipped by their
//! byte offset. The fan-out is a ring bounded in bytes ([`super::fanout`]), so a slow viewer
//! falls behind alone and is healed with a fresh snapshot.
//!
//! Nobody needs a busy slot's spinner at once when no viewer watches it: while the screen
//! says busy ([`Classifier::busy_on_screen`]), no viewer is looked at (none attached, or all
//! in hidden browser tabs) and no input came for a few seconds, the reader reads at a beat of
//! [`READ_BEAT`] instead of at every frame, which is what such a slot mostly costs the daemon
//! (a wake-up per frame). Input, a viewer, a hook,
//! a resize, a task's news or the program's exit end the wait at once (`nudge`). Only a small
//! read (a spinner frame) is followed by a wait, so a flood is read as it comes; no output
//! waits longer than a beat, and every byte is read and parsed in order.
//!
//! A recorded run also hands each chunk to its [`Recorder`] (a reference-counted `Bytes`,
//! bounded in bytes, see [`crate::recording`]) before anything else, so the markers added for
//! states and dialogs always follow, in the file and in time, the output they were read from;
//! the exit closes the recording.

use super::fanout::{FanoutReceiver, FanoutSender};
/// Output framing lives with the wire ([`crate::protocol::framing`]); re-exported for the run's users.
pub use crate::protocol::framing::{json_escape, Chunk};
use crate::protocol::{SemanticState, StateDetail};
use crate::pty::{ExitInfo, PtyError, PtyEvents, PtyProcess, SpawnRequest};
use crate::recording::Recorder;
use crate::screen::Screen;
use crate::semantic::{Classifier, Rules, Transition};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Messages waiting for the parser thread; each output message is one read (<= 16 KiB).
const PARSER_QUEUE: usize = 256;
/// How long the exit waits for the last output to be read before it is announced.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// Parser work between two classifications while output floods in.
const CLASSIFY_EVERY: usize = 256 * 1024;
/// The largest chunk the reader thread parses itself (a spinner frame is about 50 bytes): a
/// larger one is likely part of a flood, whose parsing runs beside the reading.
const PARSE_INLINE_MAX: usize = 1024;
/// A slot whose output has been quiet this long has its scrollback compacted (checked at most
/// once a period, so it happens one to two periods after the last output).
const COMPACT_WHEN_QUIET: Duration = Duration::from_secs(2);
/// Compacting at least this many lines also hands the memory they held back to the system.
const RELEASE_AFTER_LINES: usize = 256;
/// The line between what an earlier run showed and the new run (a restored slot).
const EARLIER_RUN_NOTE: &str = "[missiond] above: the slot's screen before the daemon restarted";
/// A viewer's cursor-position report is dropped this long after the program asked for one.
const QUERY_WINDOW_MS: u64 = 2000;
/// How often the output of a busy slot nobody watches is read (see the module docs). Shorter
/// than [`COMPACT_WHEN_QUIET`] and the Claude Code rules' `idle_hold_ms`, so waiting for a
/// beat never looks like a pause.
const READ_BEAT: Duration = Duration::from_secs(1);
/// After input the output is read as it comes for this long: the echo, the answer's first
/// frames.
const LIVE_AFTER_INPUT_MS: u64 = 3000;

/// What viewers of a run receive, in order.
#[derive(Debug, Clone)]
pub enum ViewerMsg {
    Output(Arc<Chunk>),
    State {
        state: SemanticState,
        prev: SemanticState,
        detail: StateDetail,
    },
    Resize {
        cols: u16,
        rows: u16,
    },
    Exit(ExitInfo),
}

/// The screen as a fresh terminal needs it, and the output offset it covers.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The scrollback ([`Screen::history_ansi`]), then the screen ([`Screen::ansi`]).
    pub ansi: Vec<u8>,
    /// Every output byte before this offset is in the snapshot.
    pub end: u64,
    pub cols: u16,
    pub rows: u16,
}

/// A look at the screen, run on the parser thread: the screen and the output offset it covers.
type InspectJob = Box<dyn FnOnce(&mut Screen, u64) + Send>;

/// Work for the parser thread, in order.
enum ParserMsg {
    /// A chunk of a flood (see the module docs).
    Output(Arc<Chunk>),
    Inspect(InspectJob),
    Resize {
        cols: u16,
        rows: u16,
    },
    SessionBusy(bool),
    Hook(crate::semantic::hooks::HookSignal),
    Exited(ExitInfo),
    /// The reader thread set a timer earlier than the one the parser thread sleeps on.
    Rearm,
}

/// Where the parser thread reports state changes and the exit (implemented by the slot).
pub trait RunObserver: Send + Sync + 'static {
    fn state_changed(&self, transition: &Transition);
    fn exited(&self, exit: &ExitInfo);
    /// The output paused (a few seconds of quiet) or the program exited: a moment to keep the
    /// screen (see [`crate::registry`]). On the parser thread; leave the screen as found.
    fn screen_settled(&self, _screen: &mut Screen) {}
    /// The program wrote `bytes` more (on the reader thread: keep it to a counter).
    fn output_read(&self, _bytes: usize) {}
}

/// A running (or finished) program and its pipeline.
pub struct Run {
    process: PtyProcess,
    parser: flume::Sender<ParserMsg>,
    output: FanoutSender,
    exit: watch::Receiver<Option<ExitInfo>>,
    /// Milliseconds since `epoch` of the last query the program sent (for reply filtering).
    last_query: Arc<AtomicU64>,
    epoch: Instant,
    viewers: Arc<AtomicUsize>,
    /// Of `viewers`, those nobody looks at ([`Run::set_viewer_hidden`]).
    hidden_viewers: Arc<AtomicUsize>,
    /// Shared with the reader's side: when input last came (milliseconds since `epoch`, + 1).
    last_input: Arc<AtomicU64>,
    recorder: Option<Recorder>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("pid", &self.process.pid())
            .finish()
    }
}

impl Run {
    pub fn start(
        req: &SpawnRequest,
        scrollback: usize,
        rules: Arc<Rules>,
        observer: Arc<dyn RunObserver>,
        recorder: Option<Recorder>,
    ) -> Result<Arc<Run>, PtyError> {
        Run::start_after(req, scrollback, rules, observer, &[], recorder)
    }

    /// [`Run::start`] with the lines an earlier run showed (see [`Screen::restore_lines`])
    /// in the scrollback before the program's first byte.
    pub fn start_after(
        req: &SpawnRequest,
        scrollback: usize,
        rules: Arc<Rules>,
        observer: Arc<dyn RunObserver>,
        earlier: &[u8],
        recorder: Option<Recorder>,
    ) -> Result<Arc<Run>, PtyError> {
        let mut screen = Screen::new(req.cols, req.rows, scrollback);
        screen.restore_lines(earlier, EARLIER_RUN_NOTE);
        Run::assemble(screen, rules, observer, recorder, |events| {
            PtyProcess::spawn(req, events)
        })
    }

    /// Carries on the run of program `pid` after an upgrade: `master` is its terminal, kept
    /// open across `execve`; `screen` the ANSI snapshot (scrollback and screen) the previous
    /// image took once it had stopped reading, so the first byte read here follows it.
    pub fn adopt(
        (pid, master): (u32, std::os::fd::OwnedFd),
        (cols, rows): (u16, u16),
        screen_ansi: &[u8],
        scrollback: usize,
        rules: Arc<Rules>,
        observer: Arc<dyn RunObserver>,
        recorder: Option<Recorder>,
    ) -> Result<Arc<Run>, PtyError> {
        let mut screen = Screen::new(cols, rows, scrollback);
        // Replies to queries in a replayed screen were owed long ago, by the previous image.
        let _ = screen.process(screen_ansi);
        // The slot keeps the state the previous image read; the classifier reads on from the
        // program's next output. A recording starts with the screen as it was handed over.
        if let Some(recorder) = &recorder {
            recorder.output(&Bytes::copy_from_slice(screen_ansi));
        }
        Run::assemble(screen, rules, observer, recorder, |events| {
            PtyProcess::adopt(pid, master, events)
        })
    }

    /// Wires a process (started or adopted by `open`) to a parser thread over `screen`.
    fn assemble(
        screen: Screen,
        rules: Arc<Rules>,
        observer: Arc<dyn RunObserver>,
        recorder: Option<Recorder>,
        open: impl FnOnce(Arc<dyn PtyEvents>) -> Result<PtyProcess, PtyError>,
    ) -> Result<Arc<Run>, PtyError> {
        let (parser_tx, parser_rx) = flume::bounded(PARSER_QUEUE);
        let output = FanoutSender::new();
        let (exit_tx, exit_rx) = watch::channel(None);
        let (eof_tx, eof_rx) = flume::bounded(1);
        let last_query = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let pipeline = Arc::new(Mutex::new(Pipeline {
            screen,
            classifier: Classifier::new(rules),
            input: None,
            output: output.clone(),
            observer: observer.clone(),
            exit: exit_tx,
            last_query: last_query.clone(),
            epoch,
            parsed_end: 0,
            compact_at: None,
            armed: None,
            recorder: recorder.clone(),
            last_dialog: None,
        }));
        let queued = Arc::new(AtomicUsize::new(0));
        let viewers = Arc::new(AtomicUsize::new(0));
        let hidden_viewers = Arc::new(AtomicUsize::new(0));
        let last_input = Arc::new(AtomicU64::new(0));
        let events = Arc::new(PumpEvents {
            pipeline: pipeline.clone(),
            parser: parser_tx.clone(),
            queued: queued.clone(),
            output: output.clone(),
            offset: AtomicU64::new(0),
            eof_tx,
            eof_rx,
            last_query: last_query.clone(),
            epoch,
            recorder: recorder.clone(),
            observer,
            viewers: viewers.clone(),
            hidden_viewers: hidden_viewers.clone(),
            last_input: last_input.clone(),
        });
        // The reader thread starts inside `open` and waits here for the terminal's input side,
        // which the screen's replies to the program's queries need.
        let process = {
            let mut pipeline = lock(&pipeline);
            let process = open(events)?;
            pipeline.input = Some(process.input());
            process
        };
        std::thread::Builder::new()
            .name(format!("slot-parse-{}", process.pid()))
            .stack_size(512 * 1024)
            .spawn(move || Pipeline::run(&pipeline, parser_rx, &queued))?;
        Ok(Arc::new(Run {
            process,
            parser: parser_tx,
            output,
            exit: exit_rx,
            last_query,
            epoch,
            viewers,
            hidden_viewers,
            last_input,
            recorder,
        }))
    }

    /// The run's recording, when it is recorded.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// See [`PtyProcess::pause_reading`]; with [`Run::snapshot`] after it, the screen of
    /// every byte read.
    pub fn pause_reading(&self, timeout: Duration) -> bool {
        self.process.pause_reading(timeout)
    }

    /// See [`PtyProcess::flush_input`].
    pub fn flush_input(&self, timeout: Duration) -> bool {
        self.process.flush_input(timeout)
    }

    pub fn resume_reading(&self) -> Result<(), PtyError> {
        self.process.resume_reading()
    }

    pub fn master_fd(&self) -> Option<std::os::fd::RawFd> {
        self.process.master_fd()
    }

    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.exit.borrow().clone()
    }

    /// Resolves when the program has exited and its last output was handled.
    pub async fn exited(&self) -> ExitInfo {
        let mut exit = self.exit.clone();
        loop {
            if let Some(info) = exit.borrow_and_update().clone() {
                return info;
            }
            if exit.changed().await.is_err() {
                // The pipeline is gone without a word: treat it as an exit.
                return ExitInfo {
                    code: None,
                    signal: None,
                };
            }
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        self.process.signal(signal);
    }

    /// Input from the API or a trusted source, passed through as is.
    pub fn write(&self, data: Bytes) -> Result<(), PtyError> {
        self.input_came();
        self.process.write(data)
    }

    /// Input is on its way: the output is read as it comes for a while (see the module docs).
    fn input_came(&self) {
        self.last_input.store(self.millis() + 1, Ordering::Relaxed);
        self.process.nudge_reading();
    }

    /// Input typed in a viewer: its terminal's replies to queries are removed first, since
    /// the daemon answered them already.
    pub fn write_from_viewer(&self, data: &[u8]) -> Result<(), PtyError> {
        let recent = self
            .millis()
            .saturating_sub(self.last_query.load(Ordering::Relaxed))
            < QUERY_WINDOW_MS
            && self.last_query.load(Ordering::Relaxed) != 0;
        let clean = crate::screen::strip_query_replies(data, recent);
        if clean.is_empty() {
            return Ok(());
        }
        self.input_came();
        self.process.write(Bytes::copy_from_slice(&clean))
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), PtyError> {
        self.process.resize(cols, rows)?;
        self.process.nudge_reading();
        let _ = self
            .parser
            .send_async(ParserMsg::Resize { cols, rows })
            .await;
        self.output.send(ViewerMsg::Resize { cols, rows });
        if let Some(recorder) = &self.recorder {
            recorder.resize(cols, rows);
        }
        Ok(())
    }

    pub fn session_busy(&self, busy: bool) {
        let _ = self.parser.try_send(ParserMsg::SessionBusy(busy));
        self.process.nudge_reading();
    }

    /// One of Claude Code's hooks ran in this run (the classifier's second witness). The
    /// screen it speaks of is read at once: a turn's end or a dialog ends the busy state.
    pub fn hook(&self, signal: crate::semantic::hooks::HookSignal) {
        let _ = self.parser.try_send(ParserMsg::Hook(signal));
        self.process.nudge_reading();
    }

    /// Runs `f` on the parser thread with the screen as of every byte read so far. The screen
    /// is `&mut` only to move vt100's scrollback view; `f` must leave it as it found it.
    pub async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Screen, u64) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Box::new(move |screen: &mut Screen, end: u64| {
            let _ = tx.send(f(screen, end));
        });
        self.parser.send_async(ParserMsg::Inspect(job)).await.ok()?;
        rx.await.ok()
    }

    pub async fn snapshot(&self) -> Option<Snapshot> {
        self.inspect(|screen, end| {
            let (cols, rows) = screen.size();
            let mut ansi = screen.history_ansi();
            ansi.extend_from_slice(&screen.ansi());
            Snapshot {
                ansi,
                end,
                cols,
                rows,
            }
        })
        .await
    }

    /// Subscribes a viewer: a receiver first, then the snapshot (see the module docs).
    pub async fn subscribe(&self) -> Option<(FanoutReceiver, Snapshot)> {
        let rx = self.output.subscribe();
        let snapshot = self.snapshot().await?;
        Some((rx, snapshot))
    }

    /// Counts a viewer for as long as the returned token lives; `None` when `max` are attached.
    pub fn admit_viewer(&self, max: usize) -> Option<ViewerToken> {
        let admitted = self
            .viewers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            // Its first frames come live, not after a beat.
            self.process.nudge_reading();
        }
        admitted.then(|| ViewerToken {
            viewers: self.viewers.clone(),
            hidden_viewers: self.hidden_viewers.clone(),
            hidden: AtomicBool::new(false),
        })
    }

    /// Whether anyone looks at the viewer holding `token` (a browser tab in the background
    /// does not): a busy slot whose viewers are all hidden is read at the beat.
    pub fn set_viewer_hidden(&self, token: &ViewerToken, hidden: bool) {
        if token.hidden.swap(hidden, Ordering::AcqRel) == hidden {
            return;
        }
        // The token's own count: the run that admitted it, as its drop does.
        if hidden {
            token.hidden_viewers.fetch_add(1, Ordering::AcqRel);
        } else {
            token.hidden_viewers.fetch_sub(1, Ordering::AcqRel);
            self.process.nudge_reading();
        }
    }

    pub fn viewer_count(&self) -> usize {
        self.viewers.load(Ordering::Acquire)
    }
}

/// Keeps a viewer counted; dropping it releases the place.
#[derive(Debug)]
pub struct ViewerToken {
    viewers: Arc<AtomicUsize>,
    hidden_viewers: Arc<AtomicUsize>,
    hidden: AtomicBool,
}

impl Drop for ViewerToken {
    fn drop(&mut self) {
        if *self.hidden.get_mut() {
            self.hidden_viewers.fetch_sub(1, Ordering::AcqRel);
        }
        self.viewers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The pump threads' side: stamps chunks with offsets, parses them and fans them out.
struct PumpEvents {
    pipeline: Arc<Mutex<Pipeline>>,
    parser: flume::Sender<ParserMsg>,
    /// Output chunks queued for the parser thread and not parsed yet (shared with it).
    queued: Arc<AtomicUsize>,
    output: FanoutSender,
    /// Only the reader thread advances it.
    offset: AtomicU64,
    eof_tx: flume::Sender<()>,
    eof_rx: flume::Receiver<()>,
    /// Shared with [`Run`]: when the program last asked for the cursor position.
    last_query: Arc<AtomicU64>,
    epoch: Instant,
    recorder: Option<Recorder>,
    observer: Arc<dyn RunObserver>,
    /// Shared with [`Run`]: viewers attached, those of them hidden, when input last came.
    viewers: Arc<AtomicUsize>,
    hidden_viewers: Arc<AtomicUsize>,
    last_input: Arc<AtomicU64>,
}

impl PtyEvents for PumpEvents {
    fn output(&self, bytes: Bytes, more_waiting: bool) {
        let start = self.offset.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.observer.output_read(bytes.len());
        // A cursor position query is noted here, before any viewer can see it: the screen
        // notes it too, but later, and under load the viewers' own replies came back before
        // it did and reached the program (tests/pty_ws.rs, terminal queries test).
        if asks_cursor_position(&bytes) {
            let now = self.epoch.elapsed().as_millis() as u64;
            self.last_query.store(now.max(1), Ordering::Relaxed);
        }
        // Recorder first: states and dialogs are marked in the recording as they are read, and
        // a marker stamped before the output it was read from would seek the player to a
        // screen without it (the History view's "Next dialog" showed the screen before it).
        if let Some(recorder) = &self.recorder {
            recorder.output(&bytes);
        }
        let chunk = Arc::new(Chunk::new(start, bytes));
        if more_waiting
            || chunk.bytes.len() > PARSE_INLINE_MAX
            || self.queued.load(Ordering::Acquire) > 0
        {
            // A flood, or behind one: the parser thread takes it, in order.
            self.queued.fetch_add(1, Ordering::AcqRel);
            let _ = self.parser.send(ParserMsg::Output(chunk.clone()));
            self.output.send(ViewerMsg::Output(chunk));
            return;
        }
        let rearm = {
            let mut pipeline = lock(&self.pipeline);
            pipeline.feed(&chunk);
            // Parsed before it is broadcast (see the module docs), and broadcast before the
            // state read from it.
            self.output.send(ViewerMsg::Output(chunk));
            pipeline.classify_output();
            pipeline.needs_rearm()
        };
        if rearm {
            let _ = self.parser.try_send(ParserMsg::Rearm);
        }
    }

    fn read_beat(&self, last_read: usize) -> Option<Duration> {
        // After a flood's read, or while the parser thread still works through one, read on.
        if last_read > PARSE_INLINE_MAX || self.queued.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since_input = match self.last_input.load(Ordering::Relaxed) {
            0 => u64::MAX,
            at => (self.epoch.elapsed().as_millis() as u64).saturating_sub(at),
        };
        let busy_on_screen = lock(&self.pipeline).classifier.busy_on_screen();
        let watching = self
            .viewers
            .load(Ordering::Acquire)
            .saturating_sub(self.hidden_viewers.load(Ordering::Acquire));
        read_beat(busy_on_screen, watching, since_input)
    }

    fn output_closed(&self) {
        let _ = self.eof_tx.try_send(());
    }

    fn exited(&self, exit: ExitInfo) {
        // Announce the exit after the last output, unless a grandchild keeps the terminal open.
        let _ = self.eof_rx.recv_timeout(DRAIN_AFTER_EXIT);
        let _ = self.parser.send(ParserMsg::Exited(exit));
    }
}

/// The beat at which output is read (see the module docs): only while the screen says busy, no
/// viewer is looked at (`watching`: attached and not hidden) and the last input is
/// `since_input_ms` old enough.
fn read_beat(busy_on_screen: bool, watching: usize, since_input_ms: u64) -> Option<Duration> {
    (busy_on_screen && watching == 0 && since_input_ms >= LIVE_AFTER_INPUT_MS).then_some(READ_BEAT)
}

/// Whether `bytes` hold a cursor position query, `CSI 6 n` or `CSI ? 6 n`.
/// Runs on the reader thread for every chunk, so it looks for the rare `6n` (SIMD) rather than
/// stopping at every ESC of colourful output.
fn asks_cursor_position(bytes: &[u8]) -> bool {
    memchr::memmem::find_iter(bytes, b"6n").any(|i| {
        let before = &bytes[..i];
        before.ends_with(b"\x1b[") || before.ends_with(b"\x1b[?")
    })
}

/// The screen, the classifier and what they have seen: fed by the reader thread (a trickle) or
/// the parser thread (a flood), looked at and timed by the parser thread, one at a time (see
/// the module docs).
struct Pipeline {
    screen: Screen,
    classifier: Classifier,
    /// The terminal's input side, for the screen's replies to the program's queries (set as
    /// soon as the process is open, before any output is fed).
    input: Option<crate::pty::InputSender>,
    output: FanoutSender,
    observer: Arc<dyn RunObserver>,
    exit: watch::Sender<Option<ExitInfo>>,
    last_query: Arc<AtomicU64>,
    epoch: Instant,
    parsed_end: u64,
    /// When to compact the scrollback: [`COMPACT_WHEN_QUIET`] after the last output, pushed
    /// on by a period when the timer finds output came since ([`Pipeline::on_timers`]).
    compact_at: Option<Instant>,
    /// The timer the parser thread sleeps on; the reader wakes it only for an earlier one.
    armed: Option<Instant>,
    recorder: Option<Recorder>,
    /// The last dialog marked in the recording, so a redraw is not marked twice.
    last_dialog: Option<String>,
}

impl Pipeline {
    /// The parser thread: a flood's output, everything else that is not output, and the
    /// timers (the classifier's, and the scrollback's compaction once the output is quiet).
    fn run(pipeline: &Mutex<Pipeline>, queue: flume::Receiver<ParserMsg>, queued: &AtomicUsize) {
        loop {
            let deadline = {
                let mut p = lock(pipeline);
                p.armed = p.deadline();
                p.armed
            };
            let msg = match deadline {
                Some(deadline) => match queue.recv_deadline(deadline) {
                    Ok(msg) => Some(msg),
                    Err(flume::RecvTimeoutError::Timeout) => None,
                    Err(flume::RecvTimeoutError::Disconnected) => return,
                },
                None => match queue.recv() {
                    Ok(msg) => Some(msg),
                    Err(_) => return,
                },
            };
            let mut p = lock(pipeline);
            let Some(msg) = msg else {
                p.on_timers();
                continue;
            };
            // Take whatever else is queued before classifying: one look per batch.
            let mut fed = p.handle(msg, queued);
            while fed > 0 && fed < CLASSIFY_EVERY {
                match queue.try_recv() {
                    Ok(msg) => fed += p.handle(msg, queued),
                    Err(_) => break,
                }
            }
            if fed > 0 {
                p.classify_output();
            }
        }
    }

    /// The earliest timer: a classifier deadline or the compaction.
    fn deadline(&self) -> Option<Instant> {
        match (self.classifier.next_deadline(), self.compact_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the parser thread must wake for a timer set since it went to sleep (once per
    /// timer: the answer is noted as armed).
    fn needs_rearm(&mut self) -> bool {
        let deadline = self.deadline();
        let earlier = match (deadline, self.armed) {
            (Some(new), Some(armed)) => new < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            self.armed = deadline;
        }
        earlier
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        match self.compact_at {
            Some(at) if at <= now => {
                self.compact_at = None;
                self.compact_scrollback();
                self.observer.screen_settled(&mut self.screen);
            }
            // Not due: output came since it was set (or another timer woke the thread). Look
            // again a whole period from now, not at every read of a slot that never pauses.
            Some(at) => self.compact_at = Some(at.max(now + COMPACT_WHEN_QUIET)),
            None => {}
        }
        if self.classifier.next_deadline().is_some_and(|at| at <= now) {
            let t = self
                .classifier
                .on_tick(self.screen.vt(), self.screen.title(), now);
            self.publish(t);
        }
    }

    /// Output as read (on the reader thread) or as queued (a flood, on the parser thread).
    fn feed(&mut self, chunk: &Chunk) {
        let replies = self.screen.process(&chunk.bytes);
        self.parsed_end = chunk.end();
        if !replies.is_empty() {
            let now = self.epoch.elapsed().as_millis() as u64;
            self.last_query.store(now.max(1), Ordering::Relaxed);
            if let Some(input) = &self.input {
                let _ = input.try_send(Bytes::from(replies));
            }
        }
    }

    /// Reads the state from the screen as the output left it.
    fn classify_output(&mut self) {
        let now = Instant::now();
        let t = self
            .classifier
            .on_output(self.screen.vt(), self.screen.title(), now);
        self.publish(t);
        self.compact_at = Some(now + COMPACT_WHEN_QUIET);
    }

    /// Handles one message of the parser thread's queue; returns how many output bytes it fed
    /// to the screen (a resize counts as one: the screen changed).
    fn handle(&mut self, msg: ParserMsg, queued: &AtomicUsize) -> usize {
        match msg {
            ParserMsg::Output(chunk) => {
                self.feed(&chunk);
                queued.fetch_sub(1, Ordering::AcqRel);
                return chunk.bytes.len().max(1);
            }
            ParserMsg::Inspect(job) => job(&mut self.screen, self.parsed_end),
            ParserMsg::Resize { cols, rows } => {
                self.screen.resize(cols, rows);
                return 1;
            }
            ParserMsg::SessionBusy(busy) => {
                let t = self.classifier.on_session_status(busy, Instant::now());
                self.publish(t);
            }
            ParserMsg::Hook(signal) => {
                let t = self.classifier.on_hook(&signal, Instant::now());
                self.publish(t);
            }
            ParserMsg::Exited(exit) => {
                let t = self.classifier.on_exit();
                self.publish(t);
                self.observer.screen_settled(&mut self.screen);
                self.observer.exited(&exit);
                if let Some(recorder) = &self.recorder {
                    recorder.marker(match (&exit.code, &exit.signal) {
                        (_, Some(signal)) => format!("exit:signal {signal}"),
                        (Some(code), None) => format!("exit:code {code}"),
                        (None, None) => "exit:unknown".to_string(),
                    });
                    recorder.finish();
                }
                self.output.send(ViewerMsg::Exit(exit.clone()));
                let _ = self.exit.send(Some(exit));
            }
            ParserMsg::Rearm => {}
        }
        0
    }

    /// Markers of a state change in the recording: `state:`, `dialog:`, `error:`.
    fn mark(&mut self, t: &Transition) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        if t.state != t.prev {
            recorder.marker(format!("state:{}", t.state.as_str()));
        }
        let dialog = t
            .detail
            .dialog
            .as_ref()
            .filter(|_| t.state == SemanticState::Confirming)
            .map(crate::recording::dialog_label);
        if let Some(label) = &dialog {
            if self.last_dialog.as_ref() != Some(label) {
                recorder.marker(label.clone());
            }
        }
        self.last_dialog = dialog;
        if let (SemanticState::Error, Some(error)) = (t.state, &t.detail.error) {
            recorder.marker(format!("error:{}", error.reason));
        }
    }

    /// Compacts the lines that scrolled off while output flowed. Done once the slot is
    /// quiet, not as lines scroll: a flood scrolls hundreds of thousands of lines a second
    /// and all but the last 2000 leave the scrollback anyway.
    fn compact_scrollback(&mut self) {
        if self.screen.compact_scrollback() >= RELEASE_AFTER_LINES {
            release_freed_memory();
        }
    }

    fn publish(&mut self, transition: Option<Transition>) {
        let Some(t) = transition else { return };
        self.observer.state_changed(&t);
        self.mark(&t);
        self.output.send(ViewerMsg::State {
            state: t.state,
            prev: t.prev,
            detail: t.detail.clone(),
        });
    }
}

/// Hands memory the allocator holds free back to the system. glibc keeps what a thread
/// freed in that thread's arena: without this, a slot's compacted scrollback would leave its
/// 7.8 MiB of full rows counted against the daemon until other allocations reused them.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Shared view of the latest state, for REST and waiters.
#[derive(Debug, Clone)]
pub struct StateView {
    pub state: SemanticState,
    pub detail: StateDetail,
    /// Milliseconds since the Unix epoch.
    pub since: u64,
}

/// Tiny helper: a mutex that never poisons the daemon (a panicked holder is logged, not fatal).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::rules::RuleBook;
    use crate::supervisor::fanout::RecvError;

    /// `python3 -c script` in a 120x40 terminal.
    fn python_in_120x40(script: &str) -> SpawnRequest {
        SpawnRequest {
            command: "python3".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: Default::default(),
            cols: 120,
            rows: 40,
        }
    }

    struct Quiet;
    impl RunObserver for Quiet {
        fn state_changed(&self, _: &Transition) {}
        fn exited(&self, _: &ExitInfo) {}
    }

    /// Output that keeps switching between small chunks (parsed on the reader thread) and large
    /// ones (queued for the parser thread) reaches the screen complete and in order: the
    /// screen equals one fed the broadcast chunks in their order. (With the reader parsing a
    /// small chunk while a large one is still queued, this failed five runs out of five.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn output_switching_between_reader_and_parser_thread_is_parsed_in_order() {
        // A long colourful line (several reads, slow to parse), then soon after a short one
        // as a read of its own, which must wait for the long one's last piece.
        let script = "import sys, time\n\
            sys.stdin.readline()\n\
            for i in range(100):\n\
            \x20   sys.stdout.write('L%d:' % i + '\\x1b[31mx\\x1b[0m' * 3200 + '\\n'); sys.stdout.flush()\n\
            \x20   time.sleep(0.0005)\n\
            \x20   sys.stdout.write('S%d\\n' % i); sys.stdout.flush(); time.sleep(0.002)\n";
        let req = python_in_120x40(script);
        let rules = RuleBook::embedded().rules(crate::protocol::Profile::Shell);
        let run = Run::start(&req, 5000, rules, Arc::new(Quiet), None).expect("python3 starts");
        let (mut rx, snapshot) = run.subscribe().await.expect("subscribed");
        let mut mirror = Screen::new(120, 40, 5000);
        mirror.process(&snapshot.ansi);
        let mut end = snapshot.end;
        run.write(Bytes::from_static(b"go\n")).expect("input");
        let (mut small, mut large, mut switches, mut last_large) = (0, 0, 0, None);
        loop {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Ok(ViewerMsg::Output(chunk))) => {
                    if chunk.end() <= end {
                        continue;
                    }
                    let from = end.saturating_sub(chunk.start) as usize;
                    mirror.process(&chunk.bytes[from..]);
                    end = chunk.end();
                    let is_large = chunk.bytes.len() > PARSE_INLINE_MAX;
                    if is_large {
                        large += 1
                    } else {
                        small += 1
                    }
                    switches += usize::from(last_large.is_some_and(|was| was != is_large));
                    last_large = Some(is_large);
                }
                Ok(Ok(ViewerMsg::Exit(_))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Lagged)) => panic!("the viewer lagged"),
                Ok(Err(RecvError::Closed)) => break,
                Err(_) => panic!("no exit within 30 s"),
            }
        }
        assert!(
            small > 10 && large > 10 && switches > 20,
            "both paths taken: {small} small and {large} large chunks, {switches} switches"
        );
        let screen = run.snapshot().await.expect("a snapshot");
        assert_eq!(screen.end, end, "every byte parsed");
        let mut expected = mirror.history_ansi();
        expected.extend_from_slice(&mirror.ansi());
        assert!(
            screen.ansi == expected,
            "the slot's screen differs from the chunks fed in order"
        );
    }

    /// Counts reads and their bytes, and tells every state.
    struct Reads {
        reads: flume::Sender<usize>,
        states: flume::Sender<SemanticState>,
    }
    impl RunObserver for Reads {
        fn state_changed(&self, t: &Transition) {
            let _ = self.states.send(t.state);
        }
        fn exited(&self, _: &ExitInfo) {}
        fn output_read(&self, bytes: usize) {
            let _ = self.reads.send(bytes);
        }
    }

    /// Bytes of one spinner frame of the program below.
    const FRAME: usize = "\x1b[4;1H✶ Thinking… (0000)".len();

    /// Reads until `frames` frames' worth of bytes came; returns how many reads that took.
    fn reads_for(reads: &flume::Receiver<usize>, frames: usize) -> usize {
        let (mut bytes, mut count) = (0, 0);
        while bytes < frames * FRAME {
            bytes += reads
                .recv_timeout(Duration::from_secs(20))
                .expect("the spinner goes on");
            count += 1;
        }
        count
    }

    /// A Claude Code slot showing a spinner (a frame every 40 ms) is read at a beat while
    /// nobody watches it: many frames per read, and still `thinking`; a viewer (unless it is
    /// hidden), then input, bring back a read per frame or so.
    #[test]
    fn a_busy_slot_nobody_watches_is_read_at_a_beat() {
        let script = "import sys, time\n\
            sys.stdout.write('\\x1b[2J\\x1b[H\\n\\n\\n\\n\\n' + '─' * 120 + '\\r\\n❯ \\r\\n' + '─' * 120)\n\
            for i in range(2000):\n\
            \x20   sys.stdout.write('\\x1b[4;1H' + '✶✻✽✢'[i % 4] + ' Thinking… (%04d)' % i); sys.stdout.flush()\n\
            \x20   time.sleep(0.04)\n";
        let req = python_in_120x40(script);
        let rules = RuleBook::embedded().rules(crate::protocol::Profile::ClaudeCode);
        let (reads_tx, reads) = flume::unbounded();
        let (states_tx, states) = flume::unbounded();
        let observer = Arc::new(Reads {
            reads: reads_tx,
            states: states_tx,
        });
        let run = Run::start(&req, 100, rules, observer, None).expect("python3 starts");
        loop {
            let state = states
                .recv_timeout(Duration::from_secs(20))
                .expect("the spinner reads as thinking");
            if state == SemanticState::Thinking {
                break;
            }
        }
        // Unwatched: a read per beat (1 s, 25 frames), whatever the load.
        reads.drain();
        let unwatched = reads_for(&reads, 100);
        assert!(
            unwatched <= 20,
            "100 frames unwatched took {unwatched} reads"
        );
        // Watched: the viewer's admission ends the wait, and every frame is read as it comes.
        let viewer = run.admit_viewer(1).expect("a viewer");
        reads_for(&reads, 5);
        let watched = reads_for(&reads, 40);
        assert!(watched >= 13, "40 frames watched took only {watched} reads");
        // A viewer nobody looks at (a hidden tab) counts as none: gathered reads again
        // (the receive times out and fails if they never come), until it is looked at.
        run.set_viewer_hidden(&viewer, true);
        while reads.recv_timeout(Duration::from_secs(20)).expect("reads") < 5 * FRAME {}
        run.set_viewer_hidden(&viewer, false);
        reads_for(&reads, 5);
        let shown = reads_for(&reads, 40);
        assert!(shown >= 13, "40 frames shown again took only {shown} reads");
        // Unwatched again, then input: read as it comes for a while.
        drop(viewer);
        while reads.recv_timeout(Duration::from_secs(20)).expect("reads") < 5 * FRAME {}
        run.write(Bytes::from_static(b"x")).expect("input");
        reads_for(&reads, 5);
        let after_input = reads_for(&reads, 25);
        assert!(
            after_input >= 8,
            "25 frames after input took only {after_input} reads"
        );
        assert!(
            states.try_iter().all(|s| s == SemanticState::Thinking),
            "the state held through the beats"
        );
    }

    #[test]
    fn a_slot_is_read_at_a_beat_only_when_busy_unwatched_and_left_alone() {
        let long_ago = LIVE_AFTER_INPUT_MS;
        assert_eq!(read_beat(true, 0, long_ago), Some(READ_BEAT));
        assert_eq!(read_beat(false, 0, long_ago), None, "not busy");
        assert_eq!(read_beat(true, 1, long_ago), None, "watched");
        assert_eq!(read_beat(true, 0, long_ago - 1), None, "input just came");
    }

    #[test]
    fn cursor_position_queries_are_found_anywhere_in_a_chunk() {
        assert!(asks_cursor_position(b"\x1b[6n"));
        assert!(asks_cursor_position(
            b"text \x1b[1;32mok\x1b[0m \x1b[?6n more"
        ));
        assert!(!asks_cursor_position(b""));
        assert!(!asks_cursor_position(
            b"6n at the start, [6n without ESC, \x1b[16n"
        ));
        assert!(!asks_cursor_position(b"\x1b[5n \x1b[c"));
    }
}
