//! Process facts the hub needs: is a pid alive, and which supervised slot it runs under.

use super::SlotResolver;

/// Alive means running (or sleeping): a zombie waiting to be reaped counts as dead.
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match crate::procfs::read(pid) {
        Ok(stat) => stat.is_alive(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => kill_probe(pid),
    }
}

fn kill_probe(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn parent_pid(pid: u32) -> Option<u32> {
    crate::procfs::stat(pid).map(|s| s.ppid)
}

/// The slot of `pid` or of its nearest ancestor a slot owns: a slot's command may be a wrapper
/// (a shell, `npx`) that starts Claude Code as its child.
pub(crate) fn slot_for(resolver: &dyn SlotResolver, pid: u32) -> Option<String> {
    const MAX_DEPTH: usize = 8;
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        if let Some(slot) = resolver.slot_for_pid(current) {
            return Some(slot);
        }
        match parent_pid(current) {
            Some(parent) if parent > 1 && parent != current => current = parent,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_is_alive_and_parsed() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        let parent = parent_pid(std::process::id());
        assert!(parent.is_some_and(|p| p > 0));
    }
}
