//! The user's own terminal during `attach`: raw mode, its size, and putting everything back.
//!
//! [`RawTerminal`] is a guard: dropping it restores the saved termios and resets the modes a
//! slot's program may have switched on through our output (alternate screen, mouse reporting,
//! bracketed paste, ...), so every exit path, including an early return or a panic, leaves the
//! shell usable.

use std::io::Write;
use std::os::fd::RawFd;

const STDIN: RawFd = libc::STDIN_FILENO;
const STDOUT: RawFd = libc::STDOUT_FILENO;

/// Sent on the way out: undo what a program in the slot may have turned on in our terminal.
const RESET_MODES: &str = concat!(
    "\x1b[0m",                                                            // attributes
    "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l", // mouse reporting
    "\x1b[?1004l",                                                        // focus events
    "\x1b[?2004l",                                                        // bracketed paste
    "\x1b[?1l\x1b>", // application cursor keys, application keypad
    "\x1b[<u",       // pop kitty keyboard flags
    "\x1b[r",        // scroll region
    "\x1b[?25h",     // cursor visible
    "\x1b[?1049l",   // back to the main screen (we entered the alternate one)
);

pub fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn stdin_is_tty() -> bool {
    is_tty(STDIN)
}

/// Columns and rows of the terminal on stdout (or stdin), if there is one.
pub fn size() -> Option<(u16, u16)> {
    for fd in [STDOUT, STDIN] {
        // SAFETY: TIOCGWINSZ writes a winsize into the struct we own.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0
            && ws.ws_col > 0
            && ws.ws_row > 0
        {
            return Some((ws.ws_col, ws.ws_row));
        }
    }
    None
}

/// The terminal in raw mode on the alternate screen; restored on drop.
pub struct RawTerminal {
    saved: libc::termios,
}

impl RawTerminal {
    /// Switch stdin's terminal to raw mode (cfmakeraw) and enter the alternate screen.
    pub fn enter() -> std::io::Result<RawTerminal> {
        // SAFETY: tcgetattr fills the termios we own; cfmakeraw and tcsetattr read it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(STDIN, &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut raw = saved;
        unsafe { libc::cfmakeraw(&mut raw) };
        // TCSANOW, not TCSAFLUSH: keys typed while attach was connecting still reach the slot.
        if unsafe { libc::tcsetattr(STDIN, libc::TCSANOW, &raw) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let guard = RawTerminal { saved };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\x1b[?1049h\x1b[H\x1b[2J");
        let _ = out.flush();
        Ok(guard)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(RESET_MODES.as_bytes());
        let _ = out.flush();
        // SAFETY: restores the termios saved in `enter`.
        unsafe {
            libc::tcsetattr(STDIN, libc::TCSADRAIN, &self.saved);
        }
    }
}
