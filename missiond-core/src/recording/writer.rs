//! Writes one run's recording on a thread of its own, so the slot never waits for the disk.
//!
//! The reader thread hands each output chunk over with [`Recorder::output`]: a clone of the
//! `Bytes` (a reference count) and one channel send. The writer thread JSON-escapes it straight
//! into its write buffer (valid UTF-8 is not copied first; the reader never splits a character)
//! and flushes at least every [`FLUSH_EVERY`], so a daemon crash loses about a second at most.
//! It takes what came in batches: woken by the first message after a quiet spell, it sleeps
//! until the flush, writes everything that came meanwhile, and sleeps on to the next flush for
//! as long as output keeps coming, so a program trickling output (a spinner) wakes it once a
//! flush rather than for every chunk; a flush period without output sends it back to waiting
//! on the channel. [`WAKE_AT`] bytes waiting, or the end of the run, wake it at once.
//! Output waiting for the writer is bounded by [`MAX_PENDING`] bytes: past it chunks are
//! dropped rather than slowing the slot, and the recording gets a `rec:dropped` marker saying
//! how many bytes are missing (the slot's screen and its viewers lose nothing).

use super::cast::{self, Header};
use super::Recordings;
use bytes::Bytes;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest the recording on disk lags behind the slot.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Output bytes handed over but not yet written, beyond which output is dropped (and said so).
pub const MAX_PENDING: u64 = 64 * 1024 * 1024;
/// Output bytes waiting that wake the writer before its flush is due (a flood).
const WAKE_AT: u64 = BUFFER as u64;
/// Written bytes between two checks of the disk limits.
const PRUNE_EVERY: u64 = 1024 * 1024;
/// The write buffer; a flood is written in pieces this big.
const BUFFER: usize = 256 * 1024;

enum Message {
    Output(f64, Bytes),
    Resize(f64, u16, u16),
    Marker(f64, String),
    Finish,
}

/// The slot's side of one run's recording. Cheap to call from any thread.
#[derive(Clone)]
pub struct Recorder {
    tx: flume::Sender<Message>,
    /// The writer thread, woken early by a flood or the end of the run.
    writer: std::thread::Thread,
    epoch: Instant,
    pending: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    run: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("run", &self.run).finish()
    }
}

impl Recorder {
    /// Starts the writer thread of a new recording at `path` (already created, header written).
    pub(super) fn start(
        store: Arc<Recordings>,
        slot: String,
        run: u64,
        path: PathBuf,
        file: File,
        header_len: u64,
    ) -> std::io::Result<Recorder> {
        let (tx, rx) = flume::unbounded();
        let pending = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            store,
            slot,
            run,
            path,
            file,
            buf: Vec::with_capacity(BUFFER),
            size: header_len,
            last_time: 0.0,
            pending: pending.clone(),
            dropped: dropped.clone(),
            limited: false,
            checked_at: header_len,
        };
        let thread = std::thread::Builder::new()
            .name(format!("slot-rec-{run}"))
            .stack_size(256 * 1024)
            .spawn(move || writer.run(rx))?;
        Ok(Recorder {
            tx,
            writer: thread.thread().clone(),
            epoch: Instant::now(),
            pending,
            dropped,
            run,
        })
    }

    /// The run's number within its slot.
    pub fn run(&self) -> u64 {
        self.run
    }

    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Output of the program, as read. Never blocks.
    pub fn output(&self, bytes: &Bytes) {
        let len = bytes.len() as u64;
        let before = self.pending.fetch_add(len, Ordering::Relaxed);
        if before + len > MAX_PENDING {
            self.pending.fetch_sub(len, Ordering::Relaxed);
            self.dropped.fetch_add(len, Ordering::Relaxed);
            return;
        }
        let _ = self.tx.send(Message::Output(self.now(), bytes.clone()));
        if before < WAKE_AT && before + len >= WAKE_AT {
            self.writer.unpark();
        }
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = self.tx.send(Message::Resize(self.now(), cols, rows));
    }

    /// A marker (docs/RECORDINGS.md lists the labels); line breaks become spaces.
    pub fn marker(&self, label: impl Into<String>) {
        let label: String = label.into();
        let label = if label.contains(['\n', '\r']) {
            label.replace(['\n', '\r'], " ")
        } else {
            label
        };
        let _ = self.tx.send(Message::Marker(self.now(), label));
    }

    /// The run ended: write what is left, close the file. Later calls are ignored.
    pub fn finish(&self) {
        let _ = self.tx.send(Message::Finish);
        self.writer.unpark();
    }
}

/// The writer thread's state.
struct Writer {
    store: Arc<Recordings>,
    slot: String,
    run: u64,
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// Bytes of the file, written or buffered.
    size: u64,
    /// Event times never go backwards, whichever thread stamped them.
    last_time: f64,
    pending: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    /// The slot's size limit was reached: output is no longer written.
    limited: bool,
    checked_at: u64,
}

impl Writer {
    fn run(mut self, rx: flume::Receiver<Message>) {
        yield_to_the_slot();
        // Quiet: wait for the first message, then the batches that follow it.
        while let Ok(first) = rx.recv() {
            if !self.take_batches(first, &rx) {
                break;
            }
        }
        self.note_dropped();
        self.flush();
        self.store.finished(&self.slot, self.run);
    }

    /// Handles `first` and whatever comes until the flush is due, then flushes, and so on
    /// until a flush period passes without output. Sleeps in between rather than waiting on
    /// the channel, so the senders wake nobody (see the module docs). Returns false when the
    /// recording is over.
    fn take_batches(&mut self, first: Message, rx: &flume::Receiver<Message>) -> bool {
        let mut flush_at = Instant::now() + FLUSH_EVERY;
        // Whether anything came since the last flush: a second without goes back to waiting
        // on the channel, so a slot that trickles all the time wakes the writer once a flush.
        let mut busy: bool;
        let mut msg = first;
        loop {
            if matches!(msg, Message::Finish) {
                return false;
            }
            busy = true;
            self.handle(msg);
            if self.buf.len() >= BUFFER {
                self.flush();
            }
            msg = loop {
                match rx.try_recv() {
                    Ok(next) => break next,
                    Err(flume::TryRecvError::Disconnected) => return false,
                    Err(flume::TryRecvError::Empty) => {
                        let now = Instant::now();
                        if now >= flush_at {
                            if !busy {
                                return true;
                            }
                            self.flush();
                            busy = false;
                            flush_at = now + FLUSH_EVERY;
                            continue;
                        }
                        std::thread::park_timeout(flush_at - now);
                    }
                }
            };
        }
    }

    fn handle(&mut self, msg: Message) {
        self.note_dropped();
        match msg {
            Message::Output(t, bytes) => {
                self.pending
                    .fetch_sub(bytes.len() as u64, Ordering::Relaxed);
                if self.limited {
                    return;
                }
                let t = self.time(t);
                if self.size + self.buf.len() as u64 >= self.store.config().max_slot_bytes {
                    // Alone over the slot's limit: the rest of the output is not kept.
                    tracing::warn!(slot = %self.slot, run = self.run, "recording stopped at record.max_slot_bytes");
                    self.limited = true;
                    self.marker_at(t, "rec:limit");
                    return;
                }
                cast::event_line(&mut self.buf, t, "o", &String::from_utf8_lossy(&bytes));
            }
            Message::Resize(t, cols, rows) => {
                let t = self.time(t);
                cast::event_line(&mut self.buf, t, "r", &format!("{cols}x{rows}"));
            }
            Message::Marker(t, label) => {
                let t = self.time(t);
                self.marker_at(t, &label);
            }
            Message::Finish => {}
        }
    }

    fn marker_at(&mut self, t: f64, label: &str) {
        cast::event_line(&mut self.buf, t, "m", label);
    }

    fn time(&mut self, t: f64) -> f64 {
        self.last_time = self.last_time.max(t);
        self.last_time
    }

    /// Output dropped since the last look (the writer fell behind): said in the recording.
    fn note_dropped(&mut self) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(slot = %self.slot, run = self.run, "recording fell behind: {dropped} output bytes not recorded");
            let t = self.last_time;
            self.marker_at(t, &format!("rec:dropped {dropped} bytes"));
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            tracing::warn!(path = %self.path.display(), "recording not written: {e}");
        }
        self.size += self.buf.len() as u64;
        self.buf.clear();
        if self.size - self.checked_at >= PRUNE_EVERY {
            self.checked_at = self.size;
            self.store.prune();
        }
    }
}

/// Lowers this thread's scheduling priority (nice 10): on a busy machine the slot's reader and
/// parser threads go first and the recording catches up when the output pauses (the backlog is
/// bounded by [`MAX_PENDING`]).
fn yield_to_the_slot() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; on Linux PRIO_PROCESS with a thread id
    // changes the nice value of that thread only.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0 {
            tracing::debug!(
                "recording thread keeps its priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Builds the header line of a new recording.
pub(super) fn header_line(header: &Header) -> Vec<u8> {
    let mut line = serde_json::to_vec(header).unwrap_or_default();
    line.push(b'\n');
    line
}
