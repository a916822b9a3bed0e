//! The orphan guard: a tiny helper process that outlives a daemon killed with SIGKILL just
//! long enough to end that daemon's slots.
//!
//! The daemon tells the guard on a pipe which sessions it runs (`+SID` / `-SID` lines). When
//! the pipe reaches end of file, the daemon is gone however it died, and the guard sends
//! SIGHUP, SIGTERM and finally SIGKILL to every process of the sessions still listed.

use crate::pty::{session_members, signal_session};
use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The hidden subcommand that runs [`run_guard`].
pub const GUARD_SUBCOMMAND: &str = "__orphan-guard";

/// The daemon's end of the guard.
#[derive(Debug)]
pub struct OrphanGuard {
    pipe: Mutex<std::fs::File>,
    /// `None` when handed over by the image before an upgrade (then only `pid` is known).
    child: Mutex<Option<Child>>,
    pid: u32,
}

impl OrphanGuard {
    /// Starts `exe __orphan-guard` (the missiond binary).
    pub fn spawn(exe: &Path) -> std::io::Result<OrphanGuard> {
        let mut child = Command::new(exe)
            .arg(GUARD_SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let pipe = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no pipe to the guard"))?;
        Ok(OrphanGuard {
            pipe: Mutex::new(std::fs::File::from(std::os::fd::OwnedFd::from(pipe))),
            pid: child.id(),
            child: Mutex::new(Some(child)),
        })
    }

    /// The guard the image before an upgrade started: its pipe (kept open across `execve`)
    /// and process id. The guard never saw the pipe close, so it still watches every slot.
    pub fn adopt(pipe: std::os::fd::OwnedFd, pid: u32) -> OrphanGuard {
        use std::os::fd::AsRawFd;
        let _ = crate::pty::set_cloexec(pipe.as_raw_fd(), true);
        OrphanGuard {
            pipe: Mutex::new(std::fs::File::from(pipe)),
            child: Mutex::new(None),
            pid,
        }
    }

    /// The pipe's descriptor and the guard's pid, to hand over in an upgrade.
    pub fn handover_parts(&self) -> Option<(std::os::fd::RawFd, u32)> {
        use std::os::fd::AsRawFd;
        Some((self.pipe.lock().ok()?.as_raw_fd(), self.pid))
    }

    pub fn watch(&self, sid: u32) {
        self.send(&format!("+{sid}\n"));
    }

    pub fn forget(&self, sid: u32) {
        self.send(&format!("-{sid}\n"));
    }

    fn send(&self, line: &str) {
        if let Ok(mut pipe) = self.pipe.lock() {
            if let Err(e) = pipe.write_all(line.as_bytes()) {
                tracing::warn!("orphan guard is gone: {e}");
            }
        }
    }
}

impl Drop for OrphanGuard {
    fn drop(&mut self) {
        // A clean shutdown already ended every slot: let the guard go.
        if let Ok(mut child) = self.child.lock() {
            match child.as_mut() {
                Some(child) => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                // SAFETY: signalling and reaping our own child process (started by this
                // process before an upgrade's execve).
                None => unsafe {
                    libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
                    libc::waitpid(self.pid as libc::pid_t, std::ptr::null_mut(), 0);
                },
            }
        }
    }
}

/// Body of the guard process. Returns when the daemon is gone and its slots are ended.
pub fn run_guard() {
    // The terminal's Ctrl-C is for the daemon, which cleans up itself; the guard stays.
    // SAFETY: setting a signal disposition to SIG_IGN has no memory effects.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let mut sessions = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (op, sid) = line.split_at(line.len().min(1));
        let Ok(sid) = sid.trim().parse::<u32>() else {
            continue;
        };
        match op {
            "+" => sessions.insert(sid),
            "-" => sessions.remove(&sid),
            _ => false,
        };
    }
    for signal in [libc::SIGHUP, libc::SIGTERM] {
        for sid in &sessions {
            signal_session(*sid, signal);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && sessions.iter().any(|sid| !session_members(*sid).is_empty())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for sid in &sessions {
        signal_session(*sid, libc::SIGKILL);
    }
}
