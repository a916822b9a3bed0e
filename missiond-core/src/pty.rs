//! One program in a pseudo-terminal: spawn, read pump, input writer, resize, signals, exit.
//!
//! The program is started as the leader of its own session and process group, with the
//! terminal as its controlling terminal, so a signal to the session reaches its children too.
//! Everything that blocks (reading, writing, waiting for the exit) runs on a dedicated thread,
//! never on the async runtime.
//!
//! portable-pty opens the terminal; the program is started here with `std::process::Command`
//! rather than portable-pty's `spawn_command`, whose pre-exec hook closes every descriptor,
//! std's exec-error pipe included: a program that could not be executed (an environment
//! value over the kernel's 128 KiB, a script whose interpreter is missing) was reported as
//! started and then aborted in the child. Here `spawn` returns the exec error itself.

use bytes::Bytes;
use portable_pty::{native_pty_system, MasterPty, PtySize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Bytes read from the terminal in one go. PTYs hand out at most about 4 KiB per read; the
/// larger buffer lets a burst that is already buffered come out as one chunk.
const READ_BUFFER: usize = 16 * 1024;
/// Input messages queued for a program that is not reading its terminal.
const INPUT_QUEUE: usize = 1024;
/// Stack size of the per-slot threads: they hold small buffers only.
const THREAD_STACK: usize = 256 * 1024;
/// Stack size of the reader thread, which also hands each chunk to the screen and the
/// classifier (vt100, the rules' regexes) before it reads on.
const READER_STACK: usize = 512 * 1024;

/// Each message is whole on its own (the daemon prints errors by `Display`); `source()` keeps
/// the cause for callers that look at it.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error("cannot open a pseudo-terminal: {0}")]
    Open(#[source] std::io::Error),
    #[error("cannot start {command:?}: {message}")]
    Spawn { command: String, message: String },
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("resize failed: {0}")]
    Resize(#[source] std::io::Error),
    #[error("the program's input queue is full (it is not reading its terminal)")]
    InputFull,
    #[error("the program has exited")]
    Gone,
}

/// The input queue of a program; `try_send` never blocks.
pub type InputSender = mpsc::SyncSender<Bytes>;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    pub command: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Added to the daemon's own environment.
    pub env: BTreeMap<String, String>,
    pub cols: u16,
    pub rows: u16,
}

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// The exit code, when the program exited by itself.
    pub code: Option<i32>,
    /// The signal's name (`Killed`, `Terminated`, ...), when a signal ended it.
    pub signal: Option<String>,
}

/// Receives everything a running program produces. Called from the pump threads.
pub trait PtyEvents: Send + Sync + 'static {
    /// A chunk of output that never ends inside a UTF-8 character. `more_waiting`: the read
    /// filled its buffer, so more output is likely queued behind it (a flood).
    fn output(&self, chunk: Bytes, more_waiting: bool);
    /// How long the reader may wait before reading again after a read of `last_read` bytes,
    /// when nobody needs the output at once (a busy slot nobody watches): the output gathers
    /// in the terminal meanwhile and is read in one go. [`PtyProcess::nudge_reading`] ends
    /// the wait.
    fn read_beat(&self, _last_read: usize) -> Option<std::time::Duration> {
        None
    }
    /// The terminal reached end of file (every holder of the slave side closed it).
    fn output_closed(&self);
    /// The program was reaped.
    fn exited(&self, exit: ExitInfo);
}

/// Handle on a running program: write, resize, signal. Dropping it closes the terminal.
pub struct PtyProcess {
    pid: u32,
    master: Mutex<Master>,
    input: mpsc::SyncSender<Bytes>,
    /// Closed with the handle: tells the reader thread to stop even while a process that left
    /// the session (`setsid`) still holds the terminal open, so no thread outlives the slot.
    _stop_reader: std::os::fd::OwnedFd,
    reading: Arc<ReaderControl>,
    events: Arc<dyn PtyEvents>,
    flushes: Arc<Flushes>,
}

/// Counts the flush markers (empty chunks) the writer thread has passed: everything queued
/// before a marker was written to the terminal.
#[derive(Default)]
struct Flushes {
    passed: Mutex<u64>,
    changed: std::sync::Condvar,
}

/// The terminal's master side: opened here, or handed over by the daemon this process was
/// before an upgrade (a bare descriptor).
enum Master {
    Opened(Box<dyn MasterPty + Send>),
    Handed(std::os::fd::OwnedFd),
}

impl Master {
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Master::Opened(m) => m.as_raw_fd(),
            Master::Handed(fd) => Some(fd.as_raw_fd()),
        }
    }
}

/// Lets an upgrade stop the reader thread at a chunk boundary (see [`PtyProcess::pause_reading`]).
struct ReaderControl {
    pause_rx: std::os::fd::OwnedFd,
    pause_tx: std::os::fd::OwnedFd,
    /// A byte here ends the reader's wait between beats (non-blocking both ends).
    nudge_rx: std::os::fd::OwnedFd,
    nudge_tx: std::os::fd::OwnedFd,
    /// The reader thread has returned: everything it read was handed out.
    stopped: Mutex<bool>,
    changed: std::sync::Condvar,
    stop_rx: std::os::fd::OwnedFd,
}

impl ReaderControl {
    fn new(stop_rx: std::os::fd::OwnedFd) -> std::io::Result<Arc<ReaderControl>> {
        let (pause_rx, pause_tx) = stop_pipe()?;
        let (nudge_rx, nudge_tx) = pipe(libc::O_CLOEXEC | libc::O_NONBLOCK)?;
        Ok(Arc::new(ReaderControl {
            pause_rx,
            pause_tx,
            nudge_rx,
            nudge_tx,
            stopped: Mutex::new(false),
            changed: std::sync::Condvar::new(),
            stop_rx,
        }))
    }

    /// Ends the reader's wait between beats, if it waits (see [`PtyProcess::nudge_reading`]).
    fn nudge(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: writing one byte from a valid buffer to our own non-blocking pipe; a full
        // pipe (EAGAIN) already holds a nudge.
        unsafe {
            libc::write(self.nudge_tx.as_raw_fd(), [1u8].as_ptr().cast(), 1);
        }
    }

    fn set_stopped(&self, stopped: bool) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = stopped;
        self.changed.notify_all();
    }
}

impl std::fmt::Debug for PtyProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyProcess")
            .field("pid", &self.pid)
            .finish()
    }
}

/// A program's side of its terminal, once started or adopted.
struct Ends {
    pid: u32,
    reader: std::fs::File,
    writer: Box<dyn Write + Send>,
    master: Master,
}

impl PtyProcess {
    /// Starts `req` and its reader, writer and waiter threads, which report to `events`.
    pub fn spawn(req: &SpawnRequest, events: Arc<dyn PtyEvents>) -> Result<PtyProcess, PtyError> {
        let pair = native_pty_system()
            .openpty(pty_size(req.cols, req.rows))
            .map_err(|e| PtyError::Open(std::io::Error::other(e)))?;
        let spawn_err = |message: String| PtyError::Spawn {
            command: req.command.clone(),
            message,
        };
        let mut child = spawn_in_terminal(req, pair.master.as_ref())
            .map_err(|e| spawn_err(describe_spawn_error(&e)))?;
        // Our copy of the slave side must go, or the reader would never see end of file.
        drop(pair.slave);
        let pid = child.id();
        let reader = reader_of(pair.master.as_ref()).map_err(|e| spawn_err(e.to_string()))?;
        let writer = pair
            .master
            .take_writer()
            .map_err(|e| spawn_err(e.to_string()))?;
        let wait = move || match child.wait() {
            Ok(status) => exit_info(&portable_pty::ExitStatus::from(status)),
            Err(e) => {
                tracing::warn!(pid, "waiting for the program failed: {e}");
                ExitInfo {
                    code: None,
                    signal: None,
                }
            }
        };
        let ends = Ends {
            pid,
            reader,
            writer,
            master: Master::Opened(pair.master),
        };
        PtyProcess::wire(ends, events, wait, |e| spawn_err(e.to_string()))
    }

    /// Carries on a program this process started before it executed a new missiond binary
    /// (an upgrade): `master` is the terminal's master side it kept open across `execve`, and
    /// the program is still its child, so it is waited for as before.
    pub fn adopt(
        pid: u32,
        master: std::os::fd::OwnedFd,
        events: Arc<dyn PtyEvents>,
    ) -> Result<PtyProcess, PtyError> {
        use std::os::fd::AsRawFd;
        let open_err = PtyError::Open;
        set_cloexec(master.as_raw_fd(), true).map_err(open_err)?;
        let reader = dup_file(master.as_raw_fd()).map_err(open_err)?;
        let writer: Box<dyn Write + Send> =
            Box::new(dup_file(master.as_raw_fd()).map_err(open_err)?);
        let ends = Ends {
            pid,
            reader,
            writer,
            master: Master::Handed(master),
        };
        PtyProcess::wire(ends, events, move || wait_for_child(pid), open_err)
    }

    /// The threads around a program's terminal, started or adopted: the reader (output to
    /// `events`), the writer (queued input) and the waiter (`wait`, then `events.exited`).
    fn wire(
        ends: Ends,
        events: Arc<dyn PtyEvents>,
        wait: impl FnOnce() -> ExitInfo + Send + 'static,
        error: impl Fn(std::io::Error) -> PtyError,
    ) -> Result<PtyProcess, PtyError> {
        let Ends {
            pid,
            reader,
            writer,
            master,
        } = ends;
        let (input_tx, input_rx) = mpsc::sync_channel::<Bytes>(INPUT_QUEUE);
        let (stop_rx, stop_tx) = stop_pipe().map_err(&error)?;
        let reading = ReaderControl::new(stop_rx).map_err(&error)?;
        spawn_reader(pid, reader, &reading, &events)?;
        let flushes = Arc::new(Flushes::default());
        let flushed = flushes.clone();
        spawn_thread(format!("pty-write-{pid}"), move || {
            write_pump(writer, input_rx, &flushed)
        })?;
        let (waiter_events, waiter_reading) = (events.clone(), reading.clone());
        spawn_thread(format!("pty-wait-{pid}"), move || {
            let exit = wait();
            // The last output is read now, not a beat later: the exit is told after it.
            waiter_reading.nudge();
            waiter_events.exited(exit)
        })?;
        Ok(PtyProcess {
            pid,
            master: Mutex::new(master),
            input: input_tx,
            _stop_reader: stop_tx,
            reading,
            events,
            flushes,
        })
    }

    /// Stops reading the program's output at a chunk boundary, everything read so far handed
    /// to the events; the output the program writes from now on waits in the terminal. For an
    /// upgrade: the screen as of now is the screen of every byte read. False if the reader did
    /// not stop within `timeout`.
    pub fn pause_reading(&self, timeout: std::time::Duration) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: writing one byte from a valid buffer to our own pipe.
        unsafe {
            libc::write(self.reading.pause_tx.as_raw_fd(), [1u8].as_ptr().cast(), 1);
        }
        let stopped = self
            .reading
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (stopped, _) = self
            .reading
            .changed
            .wait_timeout_while(stopped, timeout, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *stopped
    }

    /// Waits until every input queued so far was written to the terminal (for an upgrade:
    /// no key is left in this process's memory). False after `timeout`.
    pub fn flush_input(&self, timeout: std::time::Duration) -> bool {
        let before = *self
            .flushes
            .passed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match self.input.try_send(Bytes::new()) {
            Ok(()) => {}
            // The program is not reading its terminal: its keys would wait here.
            Err(mpsc::TrySendError::Full(_)) => return false,
            // The writer is gone with the program: nothing waits.
            Err(mpsc::TrySendError::Disconnected(_)) => return true,
        }
        let passed = self
            .flushes
            .passed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (passed, _) = self
            .flushes
            .changed
            .wait_timeout_while(passed, timeout, |passed| *passed <= before)
            .unwrap_or_else(|p| p.into_inner());
        *passed > before
    }

    /// Ends the reader's wait between beats ([`PtyEvents::read_beat`]): input, a viewer or a
    /// hook wants the output read now. Never blocks; a reader that is not waiting reads on
    /// without a wait after its next read.
    pub fn nudge_reading(&self) {
        self.reading.nudge();
    }

    /// Reads again after [`PtyProcess::pause_reading`] (an upgrade that failed).
    pub fn resume_reading(&self) -> Result<(), PtyError> {
        let mut pending = [0u8; 16];
        // The pause request is still in its pipe: take it, reading only while poll says a
        // byte waits (the pipe blocks).
        // SAFETY: poll on one valid pollfd; read into a valid buffer of its length.
        unsafe {
            let mut poll = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&self.reading.pause_rx),
                events: libc::POLLIN,
                revents: 0,
            };
            while libc::poll(&mut poll, 1, 0) > 0 && poll.revents & libc::POLLIN != 0 {
                libc::read(poll.fd, pending.as_mut_ptr().cast(), pending.len());
            }
        }
        let raw = self
            .master
            .lock()
            .map_err(|_| PtyError::Open(std::io::Error::other("lock poisoned")))?
            .raw_fd()
            .ok_or_else(|| {
                PtyError::Open(std::io::Error::other("the terminal has no descriptor"))
            })?;
        let reader = dup_file(raw).map_err(PtyError::Open)?;
        self.reading.set_stopped(false);
        spawn_reader(self.pid, reader, &self.reading, &self.events)
    }

    /// The terminal's master descriptor, to keep open across `execve` in an upgrade.
    pub fn master_fd(&self) -> Option<std::os::fd::RawFd> {
        self.master.lock().ok()?.raw_fd()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Another handle on the input queue (the emulator uses it to answer queries).
    pub fn input(&self) -> InputSender {
        self.input.clone()
    }

    /// Queues bytes for the program's input. Never blocks: a program that stopped reading
    /// its terminal gets an error instead of stalling the caller.
    pub fn write(&self, data: Bytes) -> Result<(), PtyError> {
        if data.is_empty() {
            // (An empty chunk is the writer's flush marker, see `flush_input`.)
            return Ok(());
        }
        self.input.try_send(data).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => PtyError::InputFull,
            mpsc::TrySendError::Disconnected(_) => PtyError::Gone,
        })
    }

    /// Sets the terminal size; the kernel sends SIGWINCH to the program.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), PtyError> {
        let master = self
            .master
            .lock()
            .map_err(|_| PtyError::Resize(std::io::Error::other("lock poisoned")))?;
        match &*master {
            Master::Opened(m) => m
                .resize(pty_size(cols, rows))
                .map_err(|e| PtyError::Resize(std::io::Error::other(e))),
            Master::Handed(fd) => {
                use std::os::fd::AsRawFd;
                let size = libc::winsize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
                if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
                    return Err(PtyError::Resize(std::io::Error::last_os_error()));
                }
                Ok(())
            }
        }
    }

    /// Sends `signal` to the program and everything else in its session.
    pub fn signal(&self, signal: libc::c_int) {
        signal_session(self.pid, signal);
    }
}

/// The soft limit on open files the daemon started with: its programs get it back (the daemon
/// raises its own, see `server::connections::raise_fd_limit`). 0: leave it as it is.
static CHILD_FD_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Programs started from now on get `soft` as their soft limit on open files.
pub fn set_child_fd_limit(soft: u64) {
    CHILD_FD_LIMIT.store(soft, std::sync::atomic::Ordering::Relaxed);
}

/// Starts `req` with the terminal of `master` as its stdin, stdout, stderr and controlling
/// terminal, in a session of its own.
fn spawn_in_terminal(
    req: &SpawnRequest,
    master: &(dyn MasterPty + Send),
) -> std::io::Result<std::process::Child> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    let tty = master
        .tty_name()
        .ok_or_else(|| std::io::Error::other("the terminal has no name"))?;
    // std opens it close-on-exec; the child gets it as 0, 1 and 2 only.
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&tty)?;
    let mut cmd = std::process::Command::new(&req.command);
    cmd.args(&req.args)
        .current_dir(&req.cwd)
        .env("TERM", "xterm-256color")
        .env("COLORTERM", "truecolor")
        .envs(&req.env)
        .stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave);
    let fd_limit = CHILD_FD_LIMIT.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: the hook runs in the forked child and calls only async-signal-safe functions
    // (signal, sigprocmask, setsid, ioctl, getrlimit, setrlimit); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Dispositions and the mask survive exec: start from the defaults.
            for signal in [
                libc::SIGCHLD,
                libc::SIGHUP,
                libc::SIGINT,
                libc::SIGQUIT,
                libc::SIGTERM,
                libc::SIGALRM,
            ] {
                libc::signal(signal, libc::SIG_DFL);
            }
            let empty: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // Without a controlling terminal there is no SIGWINCH on resize and no job control.
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if fd_limit > 0 {
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                    && fd_limit < limit.rlim_cur
                {
                    limit.rlim_cur = fd_limit;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// The error of a failed start, with what usually causes it.
fn describe_spawn_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::E2BIG) => format!(
            "{e}: the arguments and environment are too large to execute (one value may hold at most 128 KiB)"
        ),
        Some(libc::ENOENT) => format!(
            "{e}: no such program on PATH or at that path (or a script whose interpreter is missing)"
        ),
        Some(libc::EACCES) => format!("{e}: the program is not executable"),
        Some(libc::ENOEXEC) => format!("{e}: not a program the system can execute"),
        _ => e.to_string(),
    }
}

/// Sends `signal` to every process of session `sid`: the slot's program leads its session, and
/// an interactive shell puts each job in a process group of its own, so a group signal alone
/// would miss them. Returns how many processes were signalled.
pub fn signal_session(sid: u32, signal: libc::c_int) -> usize {
    if sid <= 1 {
        return 0;
    }
    let mut count = 0;
    for pid in session_members(sid) {
        // SAFETY: kill has no memory effects; a process that is already gone yields ESRCH.
        if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 {
            count += 1;
        }
    }
    count
}

/// How often [`end_session`] looks whether the session is empty yet.
const SESSION_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// SIGKILL cannot be refused; this only bounds the wait for the kernel to carry it out.
const AFTER_SIGKILL: std::time::Duration = std::time::Duration::from_secs(5);

/// Ends everything in session `sid`: SIGHUP and SIGTERM, SIGKILL to whatever is left after
/// `grace`, then waits for them to go. Blocks (run it on a thread of its own or with
/// `spawn_blocking`); returns true once the session is empty. A program that exits may leave
/// children in its session (a `nohup cmd &`, a job that ignores SIGHUP) that hold its terminal
/// open; they must not outlive the slot.
pub fn end_session(sid: u32, grace: std::time::Duration) -> bool {
    let wait_empty = |limit: std::time::Duration| {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if session_members(sid).is_empty() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(SESSION_POLL);
        }
    };
    if sid <= 1 || session_members(sid).is_empty() {
        return true;
    }
    signal_session(sid, libc::SIGHUP);
    signal_session(sid, libc::SIGTERM);
    if wait_empty(grace) {
        return true;
    }
    let killed = signal_session(sid, libc::SIGKILL);
    tracing::info!(
        sid,
        "{killed} process(es) of the session ignored SIGTERM: killed"
    );
    wait_empty(AFTER_SIGKILL)
}

/// Live processes (not zombies) whose session id is `sid`.
pub fn session_members(sid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(
            |pid| matches!(crate::procfs::stat(*pid), Some(stat) if stat.session == sid && stat.state != 'Z'),
        )
        .collect()
}

fn pty_size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

fn spawn_thread(name: String, f: impl FnOnce() + Send + 'static) -> Result<(), PtyError> {
    spawn_thread_with_stack(name, THREAD_STACK, f)
}

fn spawn_thread_with_stack(
    name: String,
    stack: usize,
    f: impl FnOnce() + Send + 'static,
) -> Result<(), PtyError> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(stack)
        .spawn(f)?;
    Ok(())
}

fn exit_info(status: &portable_pty::ExitStatus) -> ExitInfo {
    match status.signal() {
        Some(signal) => ExitInfo {
            code: None,
            signal: Some(signal.to_string()),
        },
        None => ExitInfo {
            code: Some(status.exit_code() as i32),
            signal: None,
        },
    }
}

/// Reads until end of file, handing out chunks that end on a UTF-8 character boundary.
/// Our own descriptor of the terminal's master side, so the pump can ask whether more output
/// is waiting without blocking.
fn reader_of(master: &(dyn MasterPty + Send)) -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    let raw = master
        .as_raw_fd()
        .ok_or_else(|| std::io::Error::other("the terminal has no descriptor"))?;
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own (or -1), closed by the File.
    let fd = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// True when a read of `file` would not block.
fn readable_now(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & libc::POLLIN != 0
}

/// A pipe whose write end, once closed, wakes the reader: `(read end, write end)`.
fn stop_pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    pipe(libc::O_CLOEXEC)
}

/// A new pipe with `flags` (`pipe2`): `(read end, write end)`.
fn pipe(flags: libc::c_int) -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two new descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// What woke the reader.
enum Wake {
    Readable,
    Stop,
    Pause,
}

/// Waits until `file` can be read (or has hung up), `stop` is closed or a pause is asked.
fn wait_readable(
    file: &std::fs::File,
    stop: &std::os::fd::OwnedFd,
    pause: &std::os::fd::OwnedFd,
) -> Wake {
    use std::os::fd::AsRawFd;
    let mut polls =
        [file.as_raw_fd(), stop.as_raw_fd(), pause.as_raw_fd()].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
    loop {
        // SAFETY: three valid pollfds, no timeout.
        let ready = unsafe { libc::poll(polls.as_mut_ptr(), 3, -1) };
        if ready >= 0 {
            if polls[1].revents != 0 {
                return Wake::Stop;
            }
            if polls[2].revents != 0 {
                return Wake::Pause;
            }
            return Wake::Readable;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // Let the read itself block or fail.
            return Wake::Readable;
        }
    }
}

/// Waits out a beat of [`PtyEvents::read_beat`]: until `beat` has passed, a nudge came (taken
/// here), `stop` is closed or a pause is asked. Never reports the terminal: it is not watched.
fn wait_beat(control: &ReaderControl, beat: std::time::Duration) -> Wake {
    use std::os::fd::AsRawFd;
    let mut polls = [
        control.stop_rx.as_raw_fd(),
        control.pause_rx.as_raw_fd(),
        control.nudge_rx.as_raw_fd(),
    ]
    .map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let timeout = beat.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: three valid pollfds. An interrupted wait ends the beat early, which is harmless.
    let ready = unsafe { libc::poll(polls.as_mut_ptr(), 3, timeout) };
    if ready > 0 {
        if polls[0].revents != 0 {
            return Wake::Stop;
        }
        if polls[1].revents != 0 {
            return Wake::Pause;
        }
    }
    // Take every nudge waiting, the ones sent while the reader was busy too: each asked for
    // a read, and this read answers them all.
    let mut drained = [0u8; 64];
    // SAFETY: reading into a valid buffer of its length from our own non-blocking pipe.
    while unsafe { libc::read(polls[2].fd, drained.as_mut_ptr().cast(), drained.len()) } > 0 {}
    Wake::Readable
}

fn spawn_reader(
    pid: u32,
    reader: std::fs::File,
    control: &Arc<ReaderControl>,
    events: &Arc<dyn PtyEvents>,
) -> Result<(), PtyError> {
    let (control, events) = (control.clone(), events.clone());
    spawn_thread_with_stack(format!("pty-read-{pid}"), READER_STACK, move || {
        let paused = read_pump(reader, &control, events.as_ref());
        if !paused {
            events.output_closed();
        }
        control.set_stopped(true);
    })
}

/// Reads until end of file (false) or a pause (true).
fn read_pump(mut reader: std::fs::File, control: &ReaderControl, events: &dyn PtyEvents) -> bool {
    let mut buf = vec![0u8; READ_BUFFER];
    // Bytes of a character split by the previous read; at most 3.
    let mut carry = 0usize;
    let mut paused = false;
    loop {
        match wait_readable(&reader, &control.stop_rx, &control.pause_rx) {
            Wake::Readable => {}
            Wake::Stop => break,
            Wake::Pause => {
                paused = true;
                break;
            }
        }
        match reader.read(&mut buf[carry..]) {
            Ok(0) => break,
            Ok(n) => {
                let mut filled = carry + n;
                // A program writing line by line hands over a line per read; take whatever
                // else is already waiting, so a flood travels as few large chunks.
                while filled < buf.len() && readable_now(&reader) {
                    match reader.read(&mut buf[filled..]) {
                        Ok(n) if n > 0 => filled += n,
                        _ => break,
                    }
                }
                let complete = utf8_complete_len(&buf[..filled]);
                if complete > 0 {
                    let more_waiting = filled == buf.len() && readable_now(&reader);
                    events.output(Bytes::copy_from_slice(&buf[..complete]), more_waiting);
                }
                buf.copy_within(complete..filled, 0);
                carry = filled - complete;
                // Nobody needs the output at once: let the next reads gather.
                if let Some(beat) = events.read_beat(filled) {
                    match wait_beat(control, beat) {
                        Wake::Readable => {}
                        Wake::Stop => break,
                        Wake::Pause => {
                            paused = true;
                            break;
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Linux reports EIO once the last slave descriptor is closed: that is end of file.
            Err(_) => break,
        }
    }
    if carry > 0 {
        events.output(Bytes::copy_from_slice(&buf[..carry]), false);
    }
    paused
}

/// Waits for the exit of child `pid` (one this process started, possibly as the daemon it was
/// before an upgrade).
fn wait_for_child(pid: u32) -> ExitInfo {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waitpid writes the status into a valid int.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        if r == pid as libc::pid_t {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // Reaped by the previous image during the upgrade: how it ended is lost.
            return ExitInfo {
                code: None,
                signal: None,
            };
        }
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        ExitInfo {
            code: None,
            signal: Some(signal_name(signal)),
        }
    } else {
        ExitInfo {
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
        }
    }
}

/// The name portable-pty gives a signal (`Killed`, `Terminated`, ...).
fn signal_name(signal: libc::c_int) -> String {
    // SAFETY: strsignal returns a pointer to a static (or thread-local) string, or null.
    let name = unsafe { libc::strsignal(signal) };
    if name.is_null() {
        return format!("Signal {signal}");
    }
    // SAFETY: a non-null strsignal result is a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

/// A new descriptor of `raw` (close-on-exec) as a file.
fn dup_file(raw: std::os::fd::RawFd) -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own (or -1), closed by the File.
    let fd = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Sets or clears close-on-exec on `fd`: an upgrade keeps some descriptors across `execve`.
pub fn set_cloexec(fd: std::os::fd::RawFd, on: bool) -> std::io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only read and set the descriptor's flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let flags = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        if libc::fcntl(fd, libc::F_SETFD, flags) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn write_pump(mut writer: Box<dyn Write + Send>, input: mpsc::Receiver<Bytes>, flushes: &Flushes) {
    while let Ok(data) = input.recv() {
        if data.is_empty() {
            *flushes.passed.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            flushes.changed.notify_all();
            continue;
        }
        if writer
            .write_all(&data)
            .and_then(|_| writer.flush())
            .is_err()
        {
            break;
        }
    }
}

/// Length of the longest prefix of `buf` that does not end inside a UTF-8 character.
///
/// Only a genuinely incomplete sequence at the very end is held back; invalid bytes pass
/// through (they are the program's business), so this never holds more than 3 bytes.
pub fn utf8_complete_len(buf: &[u8]) -> usize {
    let len = buf.len();
    // Look at most 3 bytes back for the lead byte of a multi-byte character.
    for back in 1..=len.min(3) {
        let byte = buf[len - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte: keep looking for the lead
        }
        let needed = if byte >= 0b1111_1000 {
            1 // 0xF8-0xFF never start a character: invalid, pass it through
        } else if byte >= 0b1111_0000 {
            4
        } else if byte >= 0b1110_0000 {
            3
        } else if byte >= 0b1100_0000 {
            2
        } else {
            1
        };
        return if needed > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_boundaries() {
        let s = "aé€😀".as_bytes(); // 1 + 2 + 3 + 4 bytes
        assert_eq!(utf8_complete_len(s), s.len());
        for cut in 0..=s.len() {
            let prefix = &s[..cut];
            let n = utf8_complete_len(prefix);
            assert!(std::str::from_utf8(&prefix[..n]).is_ok(), "cut {cut}");
            assert!(cut - n <= 3);
        }
        assert_eq!(utf8_complete_len(&s[..2]), 1); // half of é held back
        assert_eq!(utf8_complete_len(b"\xff\xfe"), 2); // invalid bytes pass
    }

    /// Output handed to a channel; after every small read the reader is told to wait an hour.
    struct SlowBeat(flume::Sender<Bytes>);
    impl PtyEvents for SlowBeat {
        fn output(&self, chunk: Bytes, _more_waiting: bool) {
            let _ = self.0.send(chunk);
        }
        fn read_beat(&self, _last_read: usize) -> Option<std::time::Duration> {
            Some(std::time::Duration::from_secs(3600))
        }
        fn output_closed(&self) {}
        fn exited(&self, _exit: ExitInfo) {}
    }

    /// Reads `rx` until its text holds `needle`; false after 20 s.
    fn read_until(rx: &flume::Receiver<Bytes>, text: &mut String, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !text.contains(needle) {
            match rx.recv_deadline(deadline) {
                Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => return false,
            }
        }
        true
    }

    /// A reader waiting between beats reads again as soon as it is nudged, and ends its wait
    /// when the process handle goes (without the nudge this test waits its 20 s and fails).
    #[test]
    fn a_nudge_ends_the_wait_between_beats() {
        let (tx, rx) = flume::unbounded();
        let req = SpawnRequest {
            command: "sh".into(),
            args: vec!["-c".into(), "printf first; read x; echo got-$x".into()],
            cwd: std::env::temp_dir(),
            env: Default::default(),
            cols: 80,
            rows: 24,
        };
        let process = PtyProcess::spawn(&req, Arc::new(SlowBeat(tx))).expect("sh starts");
        let mut text = String::new();
        assert!(
            read_until(&rx, &mut text, "first"),
            "first output: {text:?}"
        );
        // The reader now waits its hour: the echo of this input gathers in the terminal.
        process
            .write(Bytes::from_static(b"nudged\n"))
            .expect("input");
        process.nudge_reading();
        assert!(
            read_until(&rx, &mut text, "nudged"),
            "read after the nudge: {text:?}"
        );
        // Every holder of the events (the reader thread among them) lets go of them.
        drop(process);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match rx.recv_deadline(deadline) {
                Ok(_) => continue,
                Err(flume::RecvTimeoutError::Disconnected) => break,
                Err(flume::RecvTimeoutError::Timeout) => {
                    panic!("the reader thread still waits its beat after the handle went")
                }
            }
        }
    }
}
