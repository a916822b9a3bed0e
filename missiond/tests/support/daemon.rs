//! The real daemon for tests and the bench: `missiond serve` on 127.0.0.1 with a port chosen
//! by the kernel, its own token and state/claude/home directories in a temp dir, stopped on
//! drop; or the same daemon in-process ([`Daemon::in_process`], missiond-core's `Daemon` on
//! a runtime of its own), for tests that only speak HTTP and WebSocket to it (and run the
//! CLI against it) and need no process of its own to watch, kill or upgrade. Its slots inherit
//! the test runner's environment, so a real Claude Code runs under a daemon process (whose
//! environment [`isolate`] cleans).
//! Plus: running the CLI against it, raw HTTP calls, polling with a deadline, and /proc
//! inspection (children, zombies, open file descriptors).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use missiond_core::protocol::{ScreenText, SlotInfo};

/// The missiond binary under test (the bench, which has no such variable, passes its own).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_missiond") {
    Some(bin) => bin,
    None => "missiond",
};

/// Generous: two cores are shared with parallel builds and other tests.
pub const STEP: Duration = Duration::from_secs(30);

/// Environment variables of the test runner that must not leak into the daemon or the CLI.
const CLEARED: &[&str] = &[
    "MISSIOND_TOKEN",
    "MISSIOND_URL",
    "MISSIOND_READONLY_TOKEN",
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "CLAUDE_CONFIG_DIR",
    "RUST_LOG",
];

/// Options for [`Daemon::start_with`].
#[derive(Clone, Default)]
pub struct DaemonOptions {
    /// Extra lines for the config's `[server]` table (e.g. `kill_grace_secs = 2`).
    pub server_toml: String,
    /// Anything after the `[server]` table (e.g. `[[slots]]`).
    pub extra_toml: String,
    /// Soft and hard limit on the daemon's open files (it cannot raise it past this).
    pub fd_limit: Option<u64>,
    /// The missiond binary to run (default [`BIN`]).
    pub bin: Option<PathBuf>,
    /// Run the daemon inside this process ([`Daemon::in_process`]).
    pub in_process: bool,
}

/// A running daemon; stopped (as SIGTERM would) on drop.
pub struct Daemon {
    running: Option<Running>,
    pub url: String,
    pub token: String,
    /// The token that may watch but not type (the daemon's `token-ro` file).
    pub read_only_token: String,
    /// The daemon's process: this test's own when it runs in-process.
    pub pid: u32,
    dir: tempfile::TempDir,
    pub options: DaemonOptions,
}

enum Running {
    Process(Child),
    InProcess(InProcess),
}

/// missiond-core's daemon on a thread and runtime of its own.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// In a mutex only so that the harness is `Sync` (tests share it between threads).
    done: std::sync::Mutex<mpsc::Receiver<()>>,
}

impl InProcess {
    /// Waits (at most [`STEP`]) for the daemon's thread to end; false if it did not.
    fn ended(&self) -> bool {
        self.done
            .lock()
            .map(|done| done.recv_timeout(STEP).is_ok())
            .unwrap_or(false)
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(DaemonOptions::default())
    }

    /// The daemon inside this test process: starts in milliseconds, and a failure shows the
    /// daemon's own frames in the test's backtrace.
    pub fn in_process() -> Daemon {
        Daemon::start_with(DaemonOptions {
            in_process: true,
            ..DaemonOptions::default()
        })
    }

    pub fn start_with(options: DaemonOptions) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let token = format!("test-token-{}", std::process::id());
        let mut daemon = Daemon {
            running: None,
            url: String::new(),
            token,
            read_only_token: String::new(),
            pid: 0,
            dir,
            options,
        };
        daemon.spawn();
        daemon
    }

    /// Starts the daemon again in the same directories (state, claude, home), as after a stop,
    /// a crash or a reboot. The previous daemon must be gone ([`Daemon::stop`],
    /// [`Daemon::kill_hard`]). Its log is appended to.
    pub fn start_again(&mut self) {
        assert!(self.running.is_none(), "the previous daemon still runs");
        self.spawn();
    }

    /// Stops the daemon as SIGTERM does and waits for it to end (it ends its slots first).
    pub fn stop(&mut self) {
        let stopped = match self.running.take() {
            None => return,
            Some(Running::Process(mut child)) => {
                // SAFETY: signalling our own child process.
                unsafe {
                    libc::kill(child.id() as i32, libc::SIGTERM);
                }
                poll(STEP, || child.try_wait().ok().flatten()).is_some()
            }
            Some(Running::InProcess(mut daemon)) => {
                daemon.stop.take().map(|stop| stop.send(()));
                daemon.ended()
            }
        };
        assert!(stopped, "the daemon did not stop");
    }

    fn spawn(&mut self) {
        if self.options.in_process {
            self.spawn_in_process();
        } else {
            self.spawn_process();
        }
        self.read_only_token =
            std::fs::read_to_string(self.dir.path().join("state/missiond/token-ro"))
                .map(|t| t.trim().to_string())
                .unwrap_or_default();
    }

    fn spawn_process(&mut self) {
        let (dir, options, token) = (self.dir.path(), &self.options, &self.token);
        let config = write_config(dir, options);
        let mut cmd = Command::new(self.bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config);
        isolate(&mut cmd, dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))
            .expect("log file");
        cmd.env("MISSIOND_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Some(limit) = options.fd_limit {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and only reads `limit`.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn missiond serve");
        let pid = child.id();
        let stdout = child.stdout.take().expect("daemon stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the "listening" line, then keeps draining stdout so the daemon never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("missiond listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        self.running = Some(Running::Process(child));
        self.pid = pid;
        match rx.recv_timeout(STEP) {
            Ok(url) => self.url = url,
            Err(_) => panic!("the daemon did not print its address; log:\n{}", self.log()),
        }
    }

    /// What `missiond serve` does, minus the process: the same config file, the token from
    /// the harness, the state directory where the process's XDG_STATE_HOME would put it.
    fn spawn_in_process(&mut self) {
        assert!(
            self.options.fd_limit.is_none(),
            "an fd limit needs a daemon process of its own"
        );
        let dir = self.dir.path();
        let path = write_config(dir, &self.options);
        let text = std::fs::read_to_string(&path).expect("config");
        let config = missiond_core::config::Config::parse(&text, &path).expect("config parses");
        let state_dir = dir.join("state/missiond");
        std::fs::create_dir_all(&state_dir).expect("state dir");
        let mut options = missiond_core::server::DaemonOptions::new(&self.token, &state_dir);
        options.hook_exe = Some(self.bin().to_path_buf());
        // As the daemon's own token files are: for their owner only.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(state_dir.join("token-ro"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, options.read_only_token.as_bytes()))
            .expect("token-ro");
        let log_path = dir.join("daemon.log");
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let daemon = match missiond_core::server::Daemon::start(config, options).await {
                    Ok(daemon) => daemon,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let notices: String = daemon
                    .notices()
                    .iter()
                    .map(|n| format!("missiond: {n}\n"))
                    .collect();
                let _ = std::fs::write(&log_path, notices);
                let _ = addr_tx.send(Ok(daemon.local_addr()));
                let _ = daemon
                    .serve(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
            // The runtime's own drop ends what the daemon left running.
            drop(runtime);
            let _ = done_tx.send(());
        });
        self.running = Some(Running::InProcess(InProcess {
            stop: Some(stop_tx),
            done: std::sync::Mutex::new(done_rx),
        }));
        self.pid = std::process::id();
        match addr_rx.recv_timeout(STEP) {
            Ok(Ok(addr)) => self.url = format!("http://{addr}"),
            Ok(Err(e)) => panic!("the in-process daemon did not start: {e}"),
            Err(_) => panic!("the in-process daemon did not start in time"),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The missiond binary this daemon and its CLI run.
    pub fn bin(&self) -> &Path {
        self.options.bin.as_deref().unwrap_or(Path::new(BIN))
    }

    /// What the daemon wrote to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// The CLI as a user runs it against this daemon (URL and token from the environment).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin());
        cmd.args(args);
        isolate(&mut cmd, self.dir.path());
        cmd.env("MISSIOND_URL", &self.url)
            .env("MISSIOND_TOKEN", &self.token)
            .stdin(Stdio::null());
        cmd
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run the missiond CLI")
    }

    /// Runs the CLI, requires success, returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "`missiond {}` failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the CLI, requires failure, returns stderr.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "`missiond {}` should have failed:\nstdout: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `missiond ls --json`.
    pub fn slots(&self) -> Vec<SlotInfo> {
        let out = self.cli_ok(&["ls", "--json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ls --json is not [SlotInfo]: {e}\n{out}"))
    }

    pub fn slot(&self, id: &str) -> SlotInfo {
        self.slots()
            .into_iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("slot {id} is not listed"))
    }

    /// `missiond screen ID --json`.
    pub fn screen(&self, id: &str) -> ScreenText {
        let out = self.cli_ok(&["screen", id, "--json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("screen --json is not ScreenText: {e}\n{out}"))
    }

    /// Polls `missiond screen ID` until `pred` holds for its text; returns that text.
    pub fn wait_screen(&self, id: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = poll(STEP, || {
            last = self.screen(id).text;
            pred(&last).then(|| last.clone())
        });
        found.unwrap_or_else(|| panic!("screen of {id} never showed {what}; last screen:\n{last}"))
    }

    /// Polls `missiond ls --json` until `pred` holds for the slot.
    pub fn wait_slot(&self, id: &str, what: &str, pred: impl Fn(&SlotInfo) -> bool) -> SlotInfo {
        let mut last = None;
        let found = poll(STEP, || {
            let s = self.slot(id);
            let ok = pred(&s);
            last = Some(s.clone());
            ok.then_some(s)
        });
        found.unwrap_or_else(|| panic!("slot {id} never became {what}; last: {last:?}"))
    }

    /// A raw HTTP request to the daemon: `(status, body)`. `token` None sends no Authorization.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, String) {
        http(&self.url, method, path, token, body)
    }

    /// SIGKILL, no cleanup: what the orphan guard is for.
    pub fn kill_hard(&mut self) {
        match self.running.take() {
            Some(Running::Process(mut child)) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Some(Running::InProcess(_)) => panic!("an in-process daemon cannot be killed"),
            None => {}
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        match self.running.take() {
            Some(Running::Process(mut child)) => {
                // SAFETY: signalling our own child process.
                unsafe {
                    libc::kill(child.id() as i32, libc::SIGTERM);
                }
                if poll(STEP, || child.try_wait().ok().flatten()).is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            Some(Running::InProcess(mut daemon)) => {
                daemon.stop.take().map(|stop| stop.send(()));
                daemon.ended();
            }
            None => {}
        }
    }
}

/// The config file every test daemon reads: loopback, the claude dir inside the temp dir.
fn write_config(dir: &Path, options: &DaemonOptions) -> PathBuf {
    let claude = dir.join("claude");
    std::fs::create_dir_all(&claude).expect("claude dir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}\n\n[claude]\nconfig_dir = {:?}\n\n{}\n",
        options.server_toml,
        claude.display().to_string(),
        options.extra_toml
    );
    let path = dir.join("missiond.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Points every directory the daemon or CLI might touch into `dir`, and clears the runner's
/// own missiond settings.
pub fn isolate(cmd: &mut Command, dir: &Path) {
    // The runner's own Claude Code settings must not reach Claude Code in a slot either.
    for var in CLEARED.iter().chain(super::claude_env::VARS_TO_CLEAR) {
        cmd.env_remove(var);
    }
    let home = dir.join("home");
    let _ = std::fs::create_dir_all(&home);
    cmd.env("HOME", &home)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("CLAUDE_CONFIG_DIR", dir.join("claude"));
}

/// One HTTP request with reqwest on a throwaway runtime.
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String) {
    http_with_headers(base, method, path, token, &[], body)
}

/// [`http`] with extra request headers (`X-Missiond-Client`, `User-Agent`, `Origin` …).
pub fn http_with_headers(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    })
}

/// Calls `f` every 50 ms until it returns `Some`, or `None` after `timeout`.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The resident set size of a process in KiB (0 if it is gone).
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `(state, ppid)` of a process from /proc/<pid>/stat, or None if it does not exist.
pub fn proc_stat(pid: u32) -> Option<(char, u32)> {
    missiond_core::procfs::stat(pid).map(|s| (s.state, s.ppid))
}

/// A process is alive when it exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if state != 'Z')
}

/// Every process whose parent is `pid`, with its state.
pub fn children(pid: u32) -> Vec<(u32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| match proc_stat(p) {
            Some((state, ppid)) if ppid == pid => Some((p, state)),
            _ => None,
        })
        .collect()
}

/// `pid` and all its descendants that are alive.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(
            children(p)
                .into_iter()
                .filter(|(_, s)| *s != 'Z')
                .map(|(c, _)| c),
        );
        i += 1;
    }
    out
}

pub fn zombie_children(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|(_, s)| *s == 'Z')
        .map(|(p, _)| p)
        .collect()
}

/// What /proc/<pid>/fd holds: `(count, targets)`.
pub fn open_fds(pid: u32) -> (usize, Vec<String>) {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return (0, Vec::new());
    };
    let targets: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| {
            std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    (targets.len(), targets)
}
