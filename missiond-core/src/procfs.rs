//! `/proc/<pid>/stat`, read in one place: whether a process lives, its parent and session, and
//! what it costs (CPU time, resident memory).

use std::io;

/// The fields of `/proc/<pid>/stat` missiond uses (proc(5) numbers them from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead) …
    pub state: char,
    /// Field 4.
    pub ppid: u32,
    /// Field 6: the session id (the pid of the session leader).
    pub session: u32,
    /// Fields 14 and 15: CPU time in user and system mode, in clock ticks.
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    /// Field 24: resident set size, in pages.
    pub rss_pages: u64,
}

impl ProcStat {
    /// Running or sleeping: a zombie waiting to be reaped counts as dead.
    pub fn is_alive(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }

    pub fn cpu_ticks(&self) -> u64 {
        self.utime_ticks + self.stime_ticks
    }

    pub fn cpu_seconds(&self) -> f64 {
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        self.cpu_ticks() as f64 / hz.max(1) as f64
    }

    pub fn rss_bytes(&self) -> u64 {
        // SAFETY: sysconf only reads a configuration value.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        self.rss_pages * page.max(1) as u64
    }
}

/// The process's stat, or the error reading it (`NotFound` when there is no such process).
pub fn read(pid: u32) -> io::Result<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable stat line"))
}

/// [`read`], with every error as "no such process".
pub fn stat(pid: u32) -> Option<ProcStat> {
    read(pid).ok()
}

/// `pid (comm) S ppid …`: comm may contain spaces and parentheses, so fields are counted after
/// the last `)`.
pub fn parse(text: &str) -> Option<ProcStat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is field 3 of proc(5).
    let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: u32::try_from(number(4)?).ok()?,
        session: u32::try_from(number(6)?).ok()?,
        utime_ticks: number(14)?,
        stime_ticks: number(15)?,
        rss_pages: number(24)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_skipped() {
        let line =
            "12 (a b) c) S 1 12 12 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 500 1000 250 rest";
        let stat = parse(line).expect("parsed");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.session, 12);
        assert_eq!(stat.cpu_ticks(), 10);
        assert_eq!(stat.rss_pages, 250);
        assert!(parse("12 (x) S 1").is_none());
    }

    #[test]
    fn the_own_process_is_alive_and_costs_something() {
        let me = read(std::process::id()).expect("own stat");
        assert!(me.is_alive());
        assert!(me.ppid > 0);
        assert!(me.rss_bytes() > 0);
        assert_eq!(
            read(0).map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::NotFound)
        );
    }
}
