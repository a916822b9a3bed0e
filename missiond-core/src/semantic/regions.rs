//! Cuts a vt100 screen into the regions rules read (prompt box, the rows above it, footer,
//! dialog, cursor line), reading only the rows a rule needs.
//!
//! The layout is found from single cells (the `─` rules and the `❯` marker in column 0), so the
//! common case allocates nothing: row text is built into buffers reused across calls.

use super::rules::{Layout, Region};

/// Where the prompt box and a dialog are on the current screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// Rows of the top and bottom rule of the prompt box.
    pub prompt_box: Option<(u16, u16)>,
    /// With no prompt box: the row of the lowest rule that has text below it.
    pub dialog_rule: Option<u16>,
}

/// Is `row` a horizontal rule: its first cells (up to 10) all hold `rule_char`?
fn is_rule_row(screen: &vt100::Screen, row: u16, cols: u16, rule_char: &str) -> bool {
    let n = cols.min(10);
    n > 0 && (0..n).all(|c| screen.cell(row, c).is_some_and(|cell| cell.contents() == rule_char))
}

fn is_blank_row(screen: &vt100::Screen, row: u16, cols: u16) -> bool {
    (0..cols).all(|c| {
        screen.cell(row, c).is_none_or(|cell| {
            let s = cell.contents();
            s.is_empty() || s.chars().all(char::is_whitespace)
        })
    })
}

fn starts_with_marker(screen: &vt100::Screen, row: u16, marker: &str) -> bool {
    screen.cell(row, 0).is_some_and(|c| c.contents() == marker)
}

/// Finds the prompt box (a `❯` row right under a rule, closed by another rule below) and, when
/// there is none, the rule that opens a dialog.
pub(crate) fn find_layout(screen: &vt100::Screen, layout: &Layout) -> Found {
    let (rows, cols) = screen.size();
    let mut found = Found::default();
    let mut rule_below: Option<u16> = None;
    let mut content_below = false;
    let mut dialog_rule = None;
    for r in (0..rows).rev() {
        if is_rule_row(screen, r, cols, &layout.rule_char) {
            if let Some(lower) = rule_below {
                if r + 1 < lower && starts_with_marker(screen, r + 1, &layout.prompt_marker) {
                    found.prompt_box = Some((r, lower));
                    return found;
                }
            }
            if content_below && dialog_rule.is_none() {
                dialog_rule = Some(r);
            }
            rule_below = Some(r);
        } else if !content_below && !is_blank_row(screen, r, cols) {
            content_below = true;
        }
    }
    found.dialog_rule = dialog_rule;
    found
}

/// Appends the text of one row to `out`, trailing blanks trimmed. With `skip_dim`, dim cells
/// (placeholders such as Claude Code's `Try "…"` hint) read as blanks.
pub(crate) fn read_row(screen: &vt100::Screen, row: u16, skip_dim: bool, out: &mut String) {
    let (_, cols) = screen.size();
    let start = out.len();
    for c in 0..cols {
        let Some(cell) = screen.cell(row, c) else { break };
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

/// Region texts of one screen, built on first use and kept in buffers reused across screens.
#[derive(Debug, Default)]
pub(crate) struct RegionCache {
    texts: Vec<String>,
    built: Vec<bool>,
    rows: Vec<(u16, u16)>,
    pub found: Found,
}

impl RegionCache {
    /// Forgets the previous screen; `found` must be set again by the caller.
    pub fn reset(&mut self, found: Found) {
        let n = Region::ALL.len();
        self.texts.resize_with(n, String::new);
        self.built.clear();
        self.built.resize(n, false);
        self.rows.clear();
        self.rows.resize(n, (0, 0));
        self.found = found;
    }

    /// The row range `[start, end)` of a region on this screen (empty when it is absent).
    pub fn row_range(&self, screen: &vt100::Screen, layout: &Layout, region: Region) -> (u16, u16) {
        let (rows, cols) = screen.size();
        match region {
            Region::Screen => (0, rows),
            Region::Title => (0, 0),
            Region::CursorLine => {
                let r = screen.cursor_position().0.min(rows.saturating_sub(1));
                (r, (r + 1).min(rows))
            }
            Region::PromptBox => match self.found.prompt_box {
                Some((top, bottom)) => (top + 1, bottom),
                None => (0, 0),
            },
            Region::Footer => match self.found.prompt_box {
                Some((_, bottom)) => (bottom + 1, rows),
                None => (0, 0),
            },
            Region::Dialog => match (self.found.prompt_box, self.found.dialog_rule) {
                (None, Some(r)) => (r + 1, rows),
                _ => (0, 0),
            },
            Region::AbovePrompt => match self.found.prompt_box {
                Some((top, _)) => {
                    // Skip blank rows right above the box, then take the contiguous block.
                    let mut end = top;
                    while end > 0 && is_blank_row(screen, end - 1, cols) {
                        end -= 1;
                    }
                    let mut start = end;
                    while start > 0
                        && (end - start) < layout.above_prompt_rows as u16
                        && !is_blank_row(screen, start - 1, cols)
                    {
                        start -= 1;
                    }
                    (start, end)
                }
                None => (0, 0),
            },
        }
    }

    /// The text of a region: its rows joined by `\n`, each without trailing blanks.
    pub fn text(&mut self, screen: &vt100::Screen, layout: &Layout, title: &str, region: Region) -> &str {
        let i = region.index();
        if !self.built[i] {
            let range = self.row_range(screen, layout, region);
            self.rows[i] = range;
            let buf = &mut self.texts[i];
            buf.clear();
            if region == Region::Title {
                buf.push_str(title);
            } else {
                for r in range.0..range.1 {
                    if r > range.0 {
                        buf.push('\n');
                    }
                    read_row(screen, r, false, buf);
                }
            }
            self.built[i] = true;
        }
        &self.texts[i]
    }
}

/// Text currently typed in Claude Code's prompt box (`❯ ...` between the two `─` rules), if found.
///
/// Rows after the first lose the two-column indent that lines them up under the text; dim cells
/// (placeholder hints) are ignored, so an empty box gives `Some("")`.
pub fn composer_text(screen: &vt100::Screen) -> Option<String> {
    composer_text_with(screen, &Layout::default())
}

pub(crate) fn composer_text_with(screen: &vt100::Screen, layout: &Layout) -> Option<String> {
    let (top, bottom) = find_layout(screen, layout).prompt_box?;
    let mut out = String::new();
    let mut line = String::new();
    for r in top + 1..bottom {
        line.clear();
        read_row(screen, r, true, &mut line);
        let text = if r == top + 1 {
            line.strip_prefix(layout.prompt_marker.as_str()).unwrap_or(&line)
        } else {
            &line
        };
        let text = text.strip_prefix("  ").or_else(|| text.strip_prefix(' ')).unwrap_or(text);
        if r > top + 1 {
            out.push('\n');
        }
        out.push_str(text);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    Some(out)
}
