//! A slot's emulated terminal: the vt100 parser, its window title, snapshots, and the answers
//! to the terminal queries a program sends.
//!
//! The daemon answers queries (device attributes, cursor position, colours, version) from this
//! emulator, exactly once, whoever is watching; viewers' own answers are dropped by
//! [`strip_query_replies`]. That is the only way a program gets one answer with ten viewers
//! attached and one answer with none.

use crate::protocol::ScreenText;

/// Primary device attributes, as xterm.js reports them (VT100 with advanced video).
const DA1_REPLY: &[u8] = b"\x1b[?1;2c";
/// Secondary device attributes, as xterm.js reports them.
const DA2_REPLY: &[u8] = b"\x1b[>0;276;0c";
/// Default colours reported for OSC 10/11/12 queries: a dark terminal.
const FOREGROUND: &str = "rgb:e5e5/e5e5/e5e5";
const BACKGROUND: &str = "rgb:1e1e/1e1e/1e1e";

/// vt100 callbacks: remember the title, collect replies to queries.
#[derive(Debug, Default)]
pub struct Answers {
    title: String,
    replies: Vec<u8>,
}

impl vt100::Callbacks for Answers {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.title = String::from_utf8_lossy(title).into_owned();
    }

    fn set_window_icon_name(&mut self, _: &mut vt100::Screen, name: &[u8]) {
        // OSC 0 sets both; vt100 reports it through both callbacks.
        self.title = String::from_utf8_lossy(name).into_owned();
    }

    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params.first().and_then(|p| p.first()).copied().unwrap_or(0);
        match (i1, c) {
            (None, 'c') if first == 0 => self.replies.extend_from_slice(DA1_REPLY),
            (Some(b'>'), 'c') if first == 0 => self.replies.extend_from_slice(DA2_REPLY),
            (Some(b'>'), 'q') => {
                let reply = format!("\x1bP>|missiond({})\x1b\\", crate::VERSION);
                self.replies.extend_from_slice(reply.as_bytes());
            }
            (None, 'n') if first == 5 => self.replies.extend_from_slice(b"\x1b[0n"),
            (None, 'n') if first == 6 => {
                let (row, col) = screen.cursor_position();
                let reply = format!("\x1b[{};{}R", row + 1, col + 1);
                self.replies.extend_from_slice(reply.as_bytes());
            }
            // `CSI ? u` asks for the kitty keyboard protocol. The viewers (xterm.js) do not
            // speak it, so like them we stay silent and the program falls back to legacy keys.
            _ => {}
        }
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        let colour = match params {
            [b"10", b"?"] => Some(("10", FOREGROUND)),
            [b"11", b"?"] => Some(("11", BACKGROUND)),
            [b"12", b"?"] => Some(("12", FOREGROUND)),
            _ => None,
        };
        if let Some((which, rgb)) = colour {
            let reply = format!("\x1b]{which};{rgb}\x1b\\");
            self.replies.extend_from_slice(reply.as_bytes());
        }
    }
}

/// The emulated terminal of one slot.
pub struct Screen {
    parser: vt100::Parser<Answers>,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, cols) = self.parser.screen().size();
        f.debug_struct("Screen")
            .field("cols", &cols)
            .field("rows", &rows)
            .finish()
    }
}

impl Screen {
    pub fn new(cols: u16, rows: u16, scrollback: usize) -> Screen {
        Screen {
            parser: vt100::Parser::new_with_callbacks(rows, cols, scrollback, Answers::default()),
        }
    }

    /// Feeds program output. Returns the replies owed to the program for queries in `bytes`.
    pub fn process(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.parser.process(bytes);
        std::mem::take(&mut self.parser.callbacks_mut().replies)
    }

    /// Stores the lines that scrolled off since the last call compactly (vendor/README.md):
    /// a full 2000-line scrollback shrinks from 7.8 MiB to well under one. Nothing anyone
    /// can see changes. Returns how many lines it compacted; costs about as much as parsing
    /// them did, so it is for a slot that has gone quiet.
    pub fn compact_scrollback(&mut self) -> usize {
        self.parser.screen_mut().compact_scrollback()
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.parser.screen_mut().set_size(rows, cols);
    }

    pub fn vt(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// The last title set with OSC 0 or 2.
    pub fn title(&self) -> &str {
        &self.parser.callbacks().title
    }

    /// `(cols, rows)`.
    pub fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.parser.screen().size();
        (cols, rows)
    }

    /// The visible screen as plain text, rows joined by newlines, trailing blanks trimmed.
    pub fn text(&self) -> ScreenText {
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let (crow, ccol) = screen.cursor_position();
        ScreenText {
            cols,
            rows,
            cursor: [crow, ccol],
            text: screen.contents(),
            title: self.title().to_string(),
        }
    }

    /// The scrollback, oldest line first, as lines a freshly reset terminal of the same size
    /// scrolls off its top into its own scrollback, followed by enough newlines to scroll the
    /// last of them off too. Sent before [`Screen::ansi`], it lets a viewer that attaches late
    /// scroll back through what the program printed before. Lines the program wrapped arrive as
    /// separate lines. Empty on the alternate screen, which keeps no history.
    pub fn history_ansi(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let (cols, rows) = self.size();
        let lines = self.visit_history(|screen, take| {
            for line in screen.rows_formatted(0, cols).take(take) {
                out.extend_from_slice(&line);
                out.extend_from_slice(b"\x1b[m\r\n");
            }
        });
        if lines > 0 {
            out.extend(std::iter::repeat_n(
                b'\n',
                usize::from(rows).saturating_sub(1),
            ));
        }
        out
    }

    /// The scrollback as plain text, oldest line first, one line per row, each ending in a
    /// newline and without trailing blanks. Empty on the alternate screen.
    pub fn history_text(&mut self) -> String {
        let mut out = String::new();
        let cols = self.size().0;
        self.visit_history(|screen, take| {
            for line in screen.rows(0, cols).take(take) {
                out.push_str(line.trim_end());
                out.push('\n');
            }
        });
        out
    }

    /// Shows `visit` the scrollback a window at a time, oldest first: the screen scrolled so
    /// that its first `take` rows are the window. Returns the number of history lines. vt100
    /// shows history only through its view offset, which is put back afterwards.
    fn visit_history(&mut self, mut visit: impl FnMut(&vt100::Screen, usize)) -> usize {
        let screen = self.parser.screen_mut();
        if screen.alternate_screen() {
            return 0;
        }
        let rows = usize::from(screen.size().0);
        let view = screen.scrollback();
        screen.set_scrollback(usize::MAX); // clamped to the scrollback's length
        let len = screen.scrollback();
        let mut done = 0;
        while done < len {
            // With the view `len - done` lines up, the first row is history line `done`.
            screen.set_scrollback(len - done);
            let take = (len - done).min(rows);
            visit(screen, take);
            done += take;
        }
        screen.set_scrollback(view);
        len
    }

    /// The scrollback and then the visible rows down to the last one with text, each as a line
    /// with its colours ending in `ESC[m CR LF`: what a slot keeps of its last screen when the
    /// daemon stops (see [`Screen::restore_lines`]).
    pub fn lines_ansi(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let cols = self.size().0;
        self.visit_history(|screen, take| {
            for line in screen.rows_formatted(0, cols).take(take) {
                out.extend_from_slice(&line);
                out.extend_from_slice(b"\x1b[m\r\n");
            }
        });
        let screen = self.parser.screen();
        let used = screen
            .rows(0, cols)
            .enumerate()
            .filter(|(_, row)| !row.trim_end().is_empty())
            .map(|(i, _)| i + 1)
            .last()
            .unwrap_or(0);
        for line in screen.rows_formatted(0, cols).take(used) {
            out.extend_from_slice(&line);
            out.extend_from_slice(b"\x1b[m\r\n");
        }
        out
    }

    /// Puts `lines` (from [`Screen::lines_ansi`] of an earlier run) and a note into the
    /// scrollback of this fresh screen and leaves the screen blank, cursor home, for the new
    /// run's output: a user scrolling back sees what the slot showed before.
    pub fn restore_lines(&mut self, lines: &[u8], note: &str) {
        if lines.is_empty() {
            return;
        }
        let rows = usize::from(self.size().1);
        self.parser.process(b"\x1b[m\x1b[H\x1b[2J");
        self.parser.process(lines);
        self.parser
            .process(format!("\x1b[m\x1b[2m{note}\x1b[m\r\n").as_bytes());
        // From the bottom row, every newline scrolls one row into the scrollback.
        self.parser.process(format!("\x1b[{rows};1H").as_bytes());
        self.parser.process("\n".repeat(rows).as_bytes());
        self.parser.process(b"\x1b[H\x1b[m");
        self.parser.callbacks_mut().replies.clear();
    }

    /// Escape sequences that make a freshly reset terminal of the same size show exactly this
    /// screen: alternate screen, contents, attributes, cursor position and visibility, input
    /// modes (application keys, bracketed paste, mouse) and the title.
    pub fn ansi(&self) -> Vec<u8> {
        let screen = self.parser.screen();
        let mut out = Vec::with_capacity(8 * 1024);
        if screen.alternate_screen() {
            out.extend_from_slice(b"\x1b[?1049h");
        }
        out.extend_from_slice(&screen.state_formatted());
        let title = self.title();
        if !title.is_empty() {
            let clean: String = title.chars().filter(|c| !c.is_control()).collect();
            out.extend_from_slice(format!("\x1b]2;{clean}\x1b\\").as_bytes());
        }
        out
    }
}

/// Removes from viewer input the replies a terminal sends to queries (device attributes,
/// version, colours, kitty flags): the daemon already answered the program itself.
///
/// Cursor position reports (`CSI row;col R`) are kept unless `drop_cursor_reports`, because
/// the same bytes are a modified F3 key in xterm; the caller passes true only while a cursor
/// position query is recent.
pub fn strip_query_replies(input: &[u8], drop_cursor_reports: bool) -> std::borrow::Cow<'_, [u8]> {
    if !input.contains(&0x1b) {
        return std::borrow::Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match reply_len(&input[i..], drop_cursor_reports) {
            Some(n) => i += n,
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// If `s` starts with a query reply, its length.
fn reply_len(s: &[u8], drop_cursor_reports: bool) -> Option<usize> {
    if s.len() < 3 || s[0] != 0x1b {
        return None;
    }
    match s[1] {
        b'[' => {
            // CSI ? ... c | CSI > ... c | CSI ? ... u | CSI ... R | CSI 0 n
            let prefix = s.get(2).copied()?;
            let body_start = if prefix == b'?' || prefix == b'>' {
                3
            } else {
                2
            };
            let end = s[body_start..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b';'))?;
            let fin = s[body_start + end];
            let len = body_start + end + 1;
            let is_reply = match (prefix, fin) {
                (b'?' | b'>', b'c') => true,
                (b'?', b'u') => true,
                (_, b'R') if body_start == 2 => drop_cursor_reports && end > 0,
                (_, b'n') if body_start == 2 => &s[2..2 + end] == b"0",
                _ => false,
            };
            is_reply.then_some(len)
        }
        // DCS >| ... ST (XTVERSION)
        b'P' if s.get(2) == Some(&b'>') && s.get(3) == Some(&b'|') => string_end(s, 4),
        // OSC 10/11/12/4 ; rgb:... (BEL | ST)
        b']' => {
            let rest = &s[2..];
            let colour = [&b"10;rgb:"[..], b"11;rgb:", b"12;rgb:", b"4;"]
                .iter()
                .any(|p| rest.starts_with(p));
            if colour {
                string_end(s, 2)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// End of a string sequence started at `from`: after BEL or ESC \.
fn string_end(s: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < s.len() {
        match s[i] {
            0x07 => return Some(i + 1),
            0x1b if s.get(i + 1) == Some(&b'\\') => return Some(i + 2),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_lines_are_in_the_scrollback_and_the_screen_is_blank() {
        let mut before = Screen::new(40, 5, 100);
        for i in 0..8 {
            before.process(format!("\x1b[1mline {i}\x1b[m\r\n").as_bytes());
        }
        before.process(b"$ last");
        let lines = before.lines_ansi();
        let mut after = Screen::new(40, 5, 100);
        after.restore_lines(&lines, "-- restored --");
        assert_eq!(
            after.text().text.trim(),
            "",
            "the new run starts on a blank screen"
        );
        assert_eq!(after.text().cursor, [0, 0]);
        let history = after.history_text();
        let kept: Vec<&str> = history.lines().filter(|l| !l.is_empty()).collect();
        let mut want: Vec<String> = (0..8).map(|i| format!("line {i}")).collect();
        want.push("$ last".into());
        want.push("-- restored --".into());
        assert_eq!(kept, want);
        after.process(b"new output");
        assert!(after.text().text.starts_with("new output"));
    }

    #[test]
    fn answers_queries_once() {
        let mut screen = Screen::new(80, 24, 0);
        let replies = screen.process(b"hi\x1b[c\x1b[>0q\x1b[?u\x1b[6n\x1b]11;?\x1b\\");
        let text = String::from_utf8_lossy(&replies).into_owned();
        assert!(text.starts_with("\x1b[?1;2c"), "{text:?}");
        assert!(text.contains("\x1bP>|missiond("), "{text:?}");
        assert!(text.contains("\x1b[1;3R"), "{text:?}");
        assert!(text.contains("\x1b]11;rgb:"), "{text:?}");
        assert!(screen.process(b"more").is_empty());
    }

    #[test]
    fn title_is_tracked() {
        let mut screen = Screen::new(80, 24, 0);
        screen.process(b"\x1b]0;\xe2\x9c\xb3 Claude Code\x07");
        assert_eq!(screen.title(), "✳ Claude Code");
    }

    /// `copy` shows what `screen` shows: contents, attributes and cursor.
    fn assert_same_screen(copy: &vt100::Screen, screen: &Screen) {
        assert_eq!(copy.contents_formatted(), screen.vt().contents_formatted());
        assert_eq!(copy.cursor_position(), screen.vt().cursor_position());
    }

    #[test]
    fn snapshot_reproduces_screen() {
        let mut screen = Screen::new(40, 10, 0);
        screen.process(b"\x1b[31mred\x1b[0m plain\r\n\x1b[1;4mbold\x1b[5;7H@\x1b[?1h\x1b[?2004h");
        let mut copy = vt100::Parser::new(10, 40, 0);
        copy.process(&screen.ansi());
        assert_same_screen(copy.screen(), &screen);
        assert!(copy.screen().application_cursor());
        assert!(copy.screen().bracketed_paste());
    }

    /// Every row of a view `offset` lines up into the scrollback, as text.
    fn view(screen: &mut vt100::Screen, offset: usize) -> Vec<String> {
        screen.set_scrollback(offset);
        let cols = screen.size().1;
        let rows = screen.rows(0, cols).collect();
        screen.set_scrollback(0);
        rows
    }

    /// Prints `count` lines of three kinds: red text, a bold blue word, and a line that wraps.
    fn print_coloured_lines(screen: &mut Screen, count: usize) {
        for i in 0..count {
            let line = match i % 3 {
                0 => format!("\x1b[31mline {i}\x1b[0m red"),
                1 => format!("line {i} \x1b[44;1mblue\x1b[0m"),
                _ => format!("line {i} {}", "w".repeat(45)), // wraps
            };
            screen.process(format!("{line}\r\n").as_bytes());
        }
    }

    #[test]
    fn compacting_the_scrollback_changes_nothing_served() {
        let mut screen = Screen::new(40, 10, 100);
        print_coloured_lines(&mut screen, 120);
        for i in 0..30 {
            screen.process(format!("wide {i}: é 漢字 \x1b[7m😀\x1b[0m\r\n").as_bytes());
        }
        let (history, text, ansi) = (screen.history_ansi(), screen.history_text(), screen.ansi());
        let full = screen.parser.screen().clone();

        assert_eq!(
            screen.compact_scrollback(),
            100,
            "the whole scrollback was full rows"
        );
        assert_eq!(screen.history_ansi(), history);
        assert_eq!(screen.history_text(), text);
        assert_eq!(screen.ansi(), ansi);
        let mut compacted = screen.parser.screen().clone();
        let mut full = full;
        for offset in 1..=100 {
            assert_eq!(
                view(&mut compacted, offset),
                view(&mut full, offset),
                "offset {offset}"
            );
        }
        assert_eq!(screen.compact_scrollback(), 0, "nothing new scrolled off");

        // New lines scroll on top of compacted ones and are compacted in their turn.
        screen.process(format!("one more\r\n{}", "filler\r\n".repeat(11)).as_bytes());
        assert_eq!(screen.compact_scrollback(), 12);
        let text = screen.history_text();
        assert_eq!(text.lines().count(), 100);
        assert!(text.ends_with("one more\nfiller\nfiller\n"), "{text}");
    }

    #[test]
    fn history_then_snapshot_rebuild_scrollback_and_screen() {
        let mut screen = Screen::new(40, 10, 100);
        print_coloured_lines(&mut screen, 35);
        screen.process(b"$ ");
        let mut copy = vt100::Parser::new(10, 40, 100);
        copy.process(&screen.history_ansi());
        copy.process(&screen.ansi());

        assert_same_screen(copy.screen(), &screen);
        let mut original = screen.parser.screen().clone();
        original.set_scrollback(usize::MAX);
        let len = original.scrollback();
        assert_eq!(
            len,
            35 + 11 - 9,
            "35 lines, 11 of them wrapped, 9 still on screen"
        );
        let copied = copy.screen_mut();
        copied.set_scrollback(usize::MAX);
        assert_eq!(copied.scrollback(), len, "the copy keeps as many lines");
        for offset in 1..=len {
            assert_eq!(
                view(copied, offset),
                view(&mut original, offset),
                "offset {offset}"
            );
        }
        // Colours survive, and none bleeds into the next line. (A wrapped line arrives as two
        // lines, so compare cells, not formatted rows.)
        copied.set_scrollback(len);
        let red = copied.cell(0, 0).map(|c| (c.contents(), c.fgcolor()));
        assert_eq!(red, Some(("l", vt100::Color::Idx(1))));
        let blue = copied
            .cell(1, 7)
            .map(|c| (c.contents(), c.bgcolor(), c.bold()));
        assert_eq!(blue, Some(("b", vt100::Color::Idx(4), true)));
        let after = copied.cell(1, 12).map(|c| c.bgcolor());
        assert_eq!(
            after,
            Some(vt100::Color::Default),
            "the blue ends with its line"
        );
        let next = copied.cell(2, 0).map(|c| (c.bgcolor(), c.bold()));
        assert_eq!(next, Some((vt100::Color::Default, false)));
        assert_eq!(
            screen.vt().scrollback(),
            0,
            "the slot's view is left as it was"
        );

        let text = screen.history_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), len);
        assert_eq!(lines[0], "line 0 red");
        assert_eq!(lines[1], "line 1 blue");
        assert_eq!(lines[2], format!("line 2 {}", "w".repeat(33)));
        assert_eq!(lines[3], "w".repeat(12));
        assert_eq!(screen.vt().scrollback(), 0);
    }

    #[test]
    fn no_history_without_scrollback_or_on_the_alternate_screen() {
        let mut screen = Screen::new(40, 10, 0);
        screen.process("x\r\n".repeat(30).as_bytes());
        assert!(screen.history_ansi().is_empty());
        let mut alt = Screen::new(40, 10, 100);
        alt.process("x\r\n".repeat(30).as_bytes());
        assert!(!alt.history_ansi().is_empty());
        alt.process(b"\x1b[?1049h");
        assert!(alt.history_ansi().is_empty());
    }

    #[test]
    fn strips_viewer_replies_only() {
        let input = b"a\x1b[?1;2cb\x1b[>0;276;0c\x1bP>|xterm.js(5.5.0)\x1b\\\x1b]11;rgb:0000/0000/0000\x07c\x1b[A\x1b[1;2R";
        assert_eq!(&*strip_query_replies(input, false), b"abc\x1b[A\x1b[1;2R");
        assert_eq!(&*strip_query_replies(input, true), b"abc\x1b[A");
        assert_eq!(&*strip_query_replies(b"plain \x1b", false), b"plain \x1b");
    }
}
