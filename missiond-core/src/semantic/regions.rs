//! Cuts a vt100 screen into the regions rules read (prompt box, the rows above it, footer,
//! dialog, cursor line), reading only the rows a rule needs.
//!
//! vt100 has no cheap random access to a cell (`Screen::cell` walks the rows) and
//! `Screen::rows` writes every cell of every row. Rows are read one at a time, when first needed,
//! with `Screen::contents_between` (which skips the rows before without writing them): finding
//! the prompt box from the bottom usually reads 3 or 4 rows.
//!
//! A row's text is kept from one screen to the next while the row's `Screen::row_stamp` (a
//! patch of the vendored vt100) stays the same: a busy Claude Code redraws one to three rows of
//! its spinner per chunk, and rules that read the whole screen would otherwise read all 40 rows
//! again after every chunk.

use super::dialog::option_number;
use super::rules::{Layout, Region};

/// Where the prompt box and a dialog are on the current screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// Rows of the top and bottom rule of the prompt box.
    pub prompt_box: Option<(u16, u16)>,
    /// With no prompt box: the row of the lowest rule that has text below it.
    pub dialog_rule: Option<u16>,
}

/// Is this row a horizontal rule: its first cells (up to 10) all `rule_char`?
fn is_rule(row: &str, cols: u16, rule_char: &str) -> bool {
    let Some(ch) = rule_char.chars().next() else {
        return false;
    };
    let n = usize::from(cols.min(10));
    n > 0 && row.chars().take(n).filter(|&c| c == ch).count() == n
}

fn is_blank(row: &str) -> bool {
    row.trim().is_empty()
}

/// Reads row `r` of the screen into `out` (trailing blanks trimmed) without writing other rows.
fn read_screen_row(screen: &vt100::Screen, r: u16, out: &mut String) {
    let (rows, cols) = screen.size();
    let text = if r + 1 < rows {
        // Row r in full, then nothing of row r + 1.
        screen.contents_between(r, 0, r + 1, 0)
    } else if r > 0 {
        // Nothing of row r - 1 (but its line break), then row r in full.
        let t = screen.contents_between(r - 1, cols, r, cols);
        t.strip_prefix('\n').map(str::to_string).unwrap_or(t)
    } else {
        screen.contents_between(r, 0, r, cols)
    };
    out.clear();
    out.push_str(text.trim_end());
}

/// One screen, read lazily: rows when first needed, region texts on first use. The buffers are
/// reused across screens.
#[derive(Debug, Default)]
pub(crate) struct RegionCache {
    full: Vec<String>,
    /// What each row of `full` was read from; its text is still right while the screen shows a
    /// row with the same stamp there (and the size is the same).
    stamps: Vec<Option<vt100::RowStamp>>,
    /// Whether row `i` has been checked against the current screen.
    have: Vec<bool>,
    rows: u16,
    cols: u16,
    cursor_row: u16,
    texts: Vec<String>,
    built: Vec<bool>,
    ranges: Vec<Option<(u16, u16)>>,
    /// The prompt box and dialog rule, once a region needed them: a shell's rules read only
    /// the cursor line, and a flood classifies often, so the search (every row, from the
    /// bottom) is not made for nothing.
    found: Option<Found>,
}

impl RegionCache {
    /// Takes a new screen; nothing is read from it yet.
    pub fn load(&mut self, screen: &vt100::Screen) {
        let (rows, cols) = screen.size();
        if (rows, cols) != (self.rows, self.cols) {
            // A row's text depends on the width it is read at.
            self.stamps.clear();
        }
        self.rows = rows;
        self.cols = cols;
        self.cursor_row = screen.cursor_position().0;
        self.full.resize_with(usize::from(rows), String::new);
        self.stamps.resize(usize::from(rows), None);
        self.have.clear();
        self.have.resize(usize::from(rows), false);
        let n = Region::ALL.len();
        self.texts.resize_with(n, String::new);
        self.built.clear();
        self.built.resize(n, false);
        self.ranges.clear();
        self.ranges.resize(n, None);
        self.found = None;
    }

    /// The prompt box (or, without one, the rule above a dialog), found on first use.
    fn found(&mut self, screen: &vt100::Screen, layout: &Layout) -> Found {
        if let Some(found) = self.found {
            return found;
        }
        let prompt_box = self.find_prompt_box(screen, layout);
        let dialog_rule = match prompt_box {
            Some(_) => None,
            None => self.find_dialog_rule(screen, layout),
        };
        let found = Found {
            prompt_box,
            dialog_rule,
        };
        self.found = Some(found);
        found
    }

    pub fn cols(&self) -> u16 {
        self.cols
    }

    /// Row `r` of the screen: kept from an earlier screen if that row has not changed, else
    /// read on first use.
    fn row(&mut self, screen: &vt100::Screen, r: u16) -> &str {
        let i = usize::from(r);
        if !self.have[i] {
            let stamp = screen.row_stamp(r);
            if stamp.is_none() || stamp != self.stamps[i] {
                read_screen_row(screen, r, &mut self.full[i]);
                self.stamps[i] = stamp;
            }
            self.have[i] = true;
        }
        &self.full[i]
    }

    /// The lowest prompt box: a `❯` row right under a rule, closed by another rule below.
    fn find_prompt_box(&mut self, screen: &vt100::Screen, layout: &Layout) -> Option<(u16, u16)> {
        let cols = self.cols;
        let mut rule_below: Option<u16> = None;
        for r in (0..self.rows).rev() {
            if is_rule(self.row(screen, r), cols, &layout.rule_char) {
                if let Some(lower) = rule_below {
                    if r + 1 < lower
                        && self
                            .row(screen, r + 1)
                            .starts_with(layout.prompt_marker.as_str())
                    {
                        return Some((r, lower));
                    }
                }
                rule_below = Some(r);
            }
        }
        None
    }

    /// With no prompt box: the lowest rule with text below it, which opens a dialog. A rule
    /// whose next text row is a numbered option (AskUserQuestion's rule above
    /// `4. Chat about this`) splits the dialog's option list and opens nothing.
    fn find_dialog_rule(&mut self, screen: &vt100::Screen, layout: &Layout) -> Option<u16> {
        let cols = self.cols;
        let mut content_below = false;
        let mut option_below = false;
        for r in (0..self.rows).rev() {
            let row = self.row(screen, r);
            let rule = is_rule(row, cols, &layout.rule_char);
            if content_below && rule && !option_below {
                return Some(r);
            }
            if !rule && !is_blank(row) {
                content_below = true;
                option_below = option_number(row, &layout.prompt_marker).is_some();
            }
        }
        None
    }

    /// The rows `[start, end)`, all read already (by [`RegionCache::row_range`]).
    pub fn rows(&self, start: u16, end: u16) -> &[String] {
        let end = usize::from(end).min(self.full.len());
        self.full
            .get(usize::from(start).min(end)..end)
            .unwrap_or(&[])
    }

    /// The row range `[start, end)` of a region on this screen (empty when it is absent), with
    /// those rows read.
    pub fn row_range(
        &mut self,
        screen: &vt100::Screen,
        layout: &Layout,
        region: Region,
    ) -> (u16, u16) {
        if let Some(r) = self.ranges[region.index()] {
            return r;
        }
        let rows = self.rows;
        let range = match region {
            Region::Screen => (0, rows),
            Region::Title => (0, 0),
            Region::CursorLine => {
                let r = self.cursor_row.min(rows.saturating_sub(1));
                (r, (r + 1).min(rows))
            }
            Region::PromptBox => match self.found(screen, layout).prompt_box {
                Some((top, bottom)) => (top + 1, bottom),
                None => (0, 0),
            },
            Region::Footer => match self.found(screen, layout).prompt_box {
                Some((_, bottom)) => (bottom + 1, rows),
                None => (0, 0),
            },
            Region::Dialog => match self.found(screen, layout) {
                Found {
                    prompt_box: None,
                    dialog_rule: Some(r),
                } => (r + 1, rows),
                _ => (0, 0),
            },
            Region::AbovePrompt => match self.found(screen, layout).prompt_box {
                Some((top, _)) => {
                    // Within `above_prompt_rows` rows above the box: skip the blank rows right
                    // above it, then take the contiguous block of non-blank rows.
                    let limit = u16::try_from(layout.above_prompt_rows).unwrap_or(u16::MAX);
                    let window = top.saturating_sub(limit);
                    let mut end = top;
                    while end > window && is_blank(self.row(screen, end - 1)) {
                        end -= 1;
                    }
                    let mut start = end;
                    while start > window && !is_blank(self.row(screen, start - 1)) {
                        start -= 1;
                    }
                    (start, end)
                }
                None => (0, 0),
            },
        };
        for r in range.0..range.1 {
            self.row(screen, r);
        }
        self.ranges[region.index()] = Some(range);
        range
    }

    /// The text of a region: its rows joined by `\n`.
    pub fn text(
        &mut self,
        screen: &vt100::Screen,
        layout: &Layout,
        title: &str,
        region: Region,
    ) -> &str {
        let i = region.index();
        if !self.built[i] {
            let mut buf = std::mem::take(&mut self.texts[i]);
            buf.clear();
            if region == Region::Title {
                buf.push_str(title);
            } else {
                let (start, end) = self.row_range(screen, layout, region);
                for (k, row) in self.rows(start, end).iter().enumerate() {
                    if k > 0 {
                        buf.push('\n');
                    }
                    buf.push_str(row);
                }
            }
            self.texts[i] = buf;
            self.built[i] = true;
        }
        &self.texts[i]
    }
}

/// Appends the text of one row to `out`, trailing blanks trimmed. With `skip_dim`, dim cells
/// (placeholders such as Claude Code's `Try "…"` hint) read as blanks.
fn read_row(screen: &vt100::Screen, row: u16, skip_dim: bool, out: &mut String) {
    let (_, cols) = screen.size();
    let start = out.len();
    for c in 0..cols {
        let Some(cell) = screen.cell(row, c) else {
            break;
        };
        if cell.is_wide_continuation() {
            continue;
        }
        let s = cell.contents();
        if s.is_empty() || (skip_dim && cell.dim()) {
            out.push(' ');
        } else {
            out.push_str(s);
        }
    }
    let trimmed = out[start..].trim_end().len();
    out.truncate(start + trimmed);
}

/// Text currently typed in Claude Code's prompt box (`❯ ...` between the two `─` rules), if found.
///
/// Rows after the first lose the two-column indent that lines them up under the text; dim cells
/// (placeholder hints) are ignored, so an empty box gives `Some("")`.
pub fn composer_text(screen: &vt100::Screen) -> Option<String> {
    composer_text_with(screen, &Layout::default())
}

/// Whether `text`, just typed, shows where the program takes input: Claude Code's prompt box
/// holds its beginning (or the `[Pasted text #N …]` a long paste collapses to); without a prompt
/// box, the cursor's row holds its end (a program that echoes). White space is ignored, since
/// the box wraps long lines. `Err` says what the screen shows instead.
pub fn typed_text_shows(screen: &vt100::Screen, text: &str) -> Result<(), String> {
    const ENOUGH: usize = 24;
    let compact = |s: &str| s.split_whitespace().collect::<String>();
    let wanted = compact(text);
    match composer_text(screen) {
        Some(box_text) => {
            let head: String = wanted.chars().take(ENOUGH).collect();
            if compact(&box_text).contains(&head) || box_text.contains("[Pasted text") {
                Ok(())
            } else {
                Err(format!("the prompt box shows {:?}", clip(&box_text)))
            }
        }
        None => {
            let last_line = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let last = compact(last_line);
            let tail: String = last
                .chars()
                .skip(last.chars().count().saturating_sub(ENOUGH))
                .collect();
            let mut row = String::new();
            read_row(screen, screen.cursor_position().0, false, &mut row);
            if compact(&row).contains(&tail) {
                Ok(())
            } else {
                Err(format!("the cursor's row shows {:?}", clip(row.trim_end())))
            }
        }
    }
}

/// At most 80 characters of `s`, for messages.
fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

pub(crate) fn composer_text_with(screen: &vt100::Screen, layout: &Layout) -> Option<String> {
    let mut cache = RegionCache::default();
    cache.load(screen);
    let (top, bottom) = cache.found(screen, layout).prompt_box?;
    let mut out = String::new();
    let mut line = String::new();
    for r in top + 1..bottom {
        line.clear();
        read_row(screen, r, true, &mut line);
        let text = if r == top + 1 {
            line.strip_prefix(layout.prompt_marker.as_str())
                .unwrap_or(&line)
        } else {
            &line
        };
        let text = text
            .strip_prefix("  ")
            .or_else(|| text.strip_prefix(' '))
            .unwrap_or(text);
        if r > top + 1 {
            out.push('\n');
        }
        out.push_str(text);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    Some(out)
}

/// The recorded sessions of tests/fixtures, as the integration tests find them.
#[cfg(test)]
#[path = "../../tests/support/fixtures.rs"]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures;
    use super::*;

    /// Every region's text from a cache that keeps rows across screens and from a new cache.
    fn assert_regions_match(name: &str, at: usize, kept: &mut RegionCache, screen: &vt100::Screen) {
        let layout = Layout::default();
        kept.load(screen);
        let mut fresh = RegionCache::default();
        fresh.load(screen);
        for region in Region::ALL {
            let ours = kept.text(screen, &layout, "title", region).to_string();
            let theirs = fresh.text(screen, &layout, "title", region);
            assert_eq!(ours, theirs, "{name}: region {region:?} after {at} bytes");
        }
    }

    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// The recorded sessions in chunks of 1, 13 and random sizes, with views scrolled back and
    /// resizes now and then: region texts from kept rows equal those read afresh.
    #[test]
    fn kept_rows_give_the_region_texts_of_a_fresh_read() {
        for (name, bytes) in fixtures::recorded_sessions() {
            for (chunk, stirred) in [(1, false), (13, true), (0, true)] {
                let mut parser = vt100::Parser::new(40, 120, 100);
                let mut kept = RegionCache::default();
                let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ bytes.len() as u64;
                let mut at = 0;
                while at < bytes.len() {
                    let r = xorshift(&mut seed);
                    let size = if chunk == 0 {
                        1 + (r % 400) as usize
                    } else {
                        chunk
                    };
                    let end = bytes.len().min(at + size);
                    parser.process(&bytes[at..end]);
                    at = end;
                    if stirred && r % 13 == 0 {
                        let offset = if r % 3 == 0 {
                            0
                        } else {
                            (r >> 8) as usize % 50
                        };
                        parser.screen_mut().set_scrollback(offset);
                    }
                    if stirred && r % 101 == 0 {
                        let (rows, cols) = (8 + (r >> 16) as u16 % 40, 30 + (r >> 24) as u16 % 100);
                        parser.screen_mut().set_size(rows, cols);
                    }
                    assert_regions_match(&name, at, &mut kept, parser.screen());
                }
            }
        }
    }
}
