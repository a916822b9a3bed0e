//! The vendored vt100 (vendor/vt100: a fast path for printable ASCII, a scrollback that can
//! be compacted) must draw exactly what the published vt100 0.16.2 draws. Both parse the same
//! bytes in the same pieces and are compared cell by cell (contents, colours, attributes, wide
//! halves), row wrap flags, cursor, modes and the whole scrollback, with the patched copy's
//! scrollback compacted at random moments, views scrolled back into the history while output
//! arrives, and resizes.
//!
//! The patch's row stamps (`Screen::row_stamp`, which the classifier keeps row texts by) are
//! checked along the way: after every piece, a row on view that shows the same stamp as the
//! row at its place showed before must show the same cells and wrap flag as it did then.

use std::path::Path;

/// Everything a screen shows, through the public API both versions share: the view as it
/// stands (which may be scrolled back), then every window of the scrollback.
macro_rules! fingerprint {
    ($parser:expr, $full:expr) => {{
        let parser = &mut $parser;
        let (rows, cols) = parser.screen().size();
        let view = parser.screen().scrollback();
        let mut out = String::new();
        let screen = parser.screen();
        out.push_str(&format!(
            "view {view} cursor {:?} hidden {} alt {} appcursor {} paste {} mouse {:?} {:?} attrs {:?} {:?} {} {} {} {} {}\n",
            screen.cursor_position(),
            screen.hide_cursor(),
            screen.alternate_screen(),
            screen.application_cursor(),
            screen.bracketed_paste(),
            screen.mouse_protocol_mode(),
            screen.mouse_protocol_encoding(),
            screen.fgcolor(),
            screen.bgcolor(),
            screen.bold(),
            screen.dim(),
            screen.italic(),
            screen.underline(),
            screen.inverse(),
        ));
        cells!(screen, rows, cols, out);
        out.push_str(&String::from_utf8_lossy(&screen.state_formatted()));
        // The whole scrollback, a window at a time, as a viewer scrolling up would see it.
        parser.screen_mut().set_scrollback(usize::MAX);
        let len = parser.screen().scrollback();
        let mut offset = if $full { len } else { 0 };
        while offset > 0 {
            parser.screen_mut().set_scrollback(offset);
            let screen = parser.screen();
            out.push_str(&format!("history at {offset}:\n"));
            cells!(screen, rows, cols, out);
            out.push_str(&String::from_utf8_lossy(&screen.contents_formatted()));
            offset = offset.saturating_sub(usize::from(rows));
        }
        parser.screen_mut().set_scrollback(view);
        out
    }};
}

/// Every cell of the rows on view: contents, wide halves, colours, attributes, wrap flags.
macro_rules! cells {
    ($screen:expr, $rows:expr, $cols:expr, $out:expr) => {
        for row in 0..$rows {
            $out.push_str(&format!("row {row} wrapped {}:", $screen.row_wrapped(row)));
            for col in 0..$cols {
                let Some(cell) = $screen.cell(row, col) else {
                    $out.push_str(" <none>");
                    continue;
                };
                $out.push_str(&format!(
                    " {:?}{}{}/{:?}/{:?}/{}{}{}{}{}",
                    cell.contents(),
                    if cell.is_wide() { "W" } else { "" },
                    if cell.is_wide_continuation() { "C" } else { "" },
                    cell.fgcolor(),
                    cell.bgcolor(),
                    u8::from(cell.bold()),
                    u8::from(cell.dim()),
                    u8::from(cell.italic()),
                    u8::from(cell.underline()),
                    u8::from(cell.inverse()),
                ));
            }
            $out.push('\n');
        }
    };
}

/// Every cell of one row on view, and its wrap flag.
fn row_fingerprint(screen: &vt100::Screen, row: u16, cols: u16) -> String {
    let mut out = String::new();
    cells!(screen, row + 1, cols, out);
    out.lines().last().unwrap_or("").to_string()
}

/// What each place on view showed when last looked at: the row's stamp and its cells.
#[derive(Default)]
struct StampLedger {
    size: (u16, u16),
    rows: Vec<Option<(vt100::RowStamp, String)>>,
}

impl StampLedger {
    /// Panics if a row kept its stamp but not its cells since the last look (same size).
    fn check(&mut self, name: &str, at: usize, screen: &vt100::Screen) -> usize {
        let (rows, cols) = screen.size();
        if self.size != (rows, cols) {
            self.size = (rows, cols);
            self.rows.clear();
        }
        self.rows.resize(usize::from(rows), None);
        let mut kept = 0;
        for row in 0..rows {
            let stamp = screen.row_stamp(row).expect("a row on view");
            let now = row_fingerprint(screen, row, cols);
            if let Some((before, cells)) = &self.rows[usize::from(row)] {
                if *before == stamp {
                    assert_eq!(
                        *cells, now,
                        "{name}: row {row} changed after {at} bytes but kept its stamp"
                    );
                    kept += 1;
                }
            }
            self.rows[usize::from(row)] = Some((stamp, now));
        }
        kept
    }
}

/// How [`assert_same_screens`] stirs things up between pieces.
#[derive(Clone, Copy)]
struct Stir {
    /// Sometimes scroll both views back into the history (and leave them there while more
    /// output arrives), sometimes back to the live screen.
    views: bool,
    /// Sometimes resize both screens.
    resizes: bool,
}

/// Sometimes (and at the end) compacts the patched copy's scrollback, which has no
/// upstream counterpart and must change nothing either side can see.
fn maybe_compact(parser: &mut vt100::Parser, r: u64, last: bool) {
    if last || r % 5 == 0 {
        parser.screen_mut().compact_scrollback();
    }
}

/// Feeds `input` to both versions in pieces of random size and compares what they show
/// after every piece, and the whole scrollback after every 16th piece and at the end.
/// Returns how many lines the scrollback held at the end (compared, so better not zero).
fn assert_same_screens(
    name: &str,
    input: &[u8],
    rows: u16,
    cols: u16,
    scrollback: usize,
    stir: Stir,
) -> usize {
    let mut patched = vt100::Parser::new(rows, cols, scrollback);
    let mut upstream = vt100_upstream::Parser::new(rows, cols, scrollback);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ input.len() as u64;
    let mut at = 0;
    let mut pieces = 0;
    let mut ledger = StampLedger::default();
    let mut rows_kept = 0;
    while at < input.len() {
        let size = 1 + (xorshift(&mut seed) % 700) as usize;
        let piece = &input[at..input.len().min(at + size)];
        patched.process(piece);
        upstream.process(piece);
        at += piece.len();
        pieces += 1;
        let r = xorshift(&mut seed);
        if stir.views && r % 7 == 0 {
            let offset = if r % 3 == 0 {
                0
            } else {
                (r >> 8) as usize % (scrollback + 5)
            };
            patched.screen_mut().set_scrollback(offset);
            upstream.screen_mut().set_scrollback(offset);
        }
        maybe_compact(&mut patched, r >> 32, at == input.len());
        if stir.resizes && r % 31 == 0 {
            let (new_rows, new_cols) = (4 + (r >> 16) as u16 % 12, 10 + (r >> 24) as u16 % 40);
            patched.screen_mut().set_size(new_rows, new_cols);
            upstream.screen_mut().set_size(new_rows, new_cols);
        }
        rows_kept += ledger.check(name, at, patched.screen());
        let full = pieces % 16 == 0 || at == input.len();
        let (ours, theirs) = (fingerprint!(patched, full), fingerprint!(upstream, full));
        if ours != theirs {
            let line = ours
                .lines()
                .zip(theirs.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{name}: screens differ after {at} bytes (piece {pieces}), first at line {line}:\n\
                 patched:  {}\nupstream: {}",
                ours.lines().nth(line).unwrap_or(""),
                theirs.lines().nth(line).unwrap_or(""),
            );
        }
    }
    assert!(
        pieces < 4 || rows_kept > 0,
        "{name}: no row ever kept its stamp: the check checked nothing"
    );
    patched.screen_mut().set_scrollback(usize::MAX);
    patched.screen().scrollback()
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn recorded_claude_code_sessions_draw_the_same() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            let bytes = std::fs::read(&path).expect("read fixture");
            let still = Stir {
                views: false,
                resizes: false,
            };
            assert_same_screens(&path.display().to_string(), &bytes, 40, 120, 200, still);
            seen += 1;
        }
    }
    assert!(seen >= 7, "expected the 7 recorded sessions, found {seen}");
}

/// Text that wraps, overwrites wide characters with narrow ones and the other way round,
/// writes in the last column, combines accents with ASCII, moves the cursor, scrolls regions,
/// inserts and deletes: every case where the fast path must step aside.
#[test]
fn generated_edge_cases_draw_the_same() {
    let tokens: &[&str] = &[
        "hello ",
        "a",
        "~",
        " ",
        "x".repeat(29).leak(),
        "\r\n",
        "\r",
        "\n",
        "\x08",
        "\t",
        "漢",
        "字a",
        "😀",
        "e\u{301}",
        "\u{301}",
        "é",
        "\x1b[H",
        "\x1b[K",
        "\x1b[1K",
        "\x1b[2J",
        "\x1b[1;31m",
        "\x1b[44;1m",
        "\x1b[0m",
        "\x1b[7m",
        "\x1b[2@",
        "\x1b[2P",
        "\x1b[3X",
        "\x1b[L",
        "\x1b[M",
        "\x1b[S",
        "\x1b[T",
        "\x1b7",
        "\x1b8",
        "\x1b[?25l",
        "\x1b[?25h",
        "\x1b]0;title\x07",
        "\u{7f}",
        "\x1b[?7l",
        "\x1b[?7h",
    ];
    let (rows, cols) = (10u16, 30u16);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut input = String::new();
    for _ in 0..40_000 {
        let r = xorshift(&mut seed);
        // The alternate screen and scroll regions keep lines out of the scrollback: visit
        // them, but briefly.
        let rare = match r % 400 {
            0 => Some("\x1b[?1049h"),
            1..=6 => Some("\x1b[?1049l"),
            7 => Some("\x1b[3;7r"),
            8..=13 => Some("\x1b[r"),
            _ => None,
        };
        if let Some(token) = rare {
            input.push_str(token);
        } else if r % 9 == 0 {
            // A cursor move, often to the last column or the row edges.
            let row = 1 + (xorshift(&mut seed) % u64::from(rows + 1));
            let col = match xorshift(&mut seed) % 4 {
                0 => u64::from(cols),
                1 => u64::from(cols - 1),
                _ => 1 + xorshift(&mut seed) % u64::from(cols),
            };
            input.push_str(&format!("\x1b[{row};{col}H"));
        } else {
            input.push_str(tokens[(r % tokens.len() as u64) as usize]);
        }
    }
    input.push_str("\x1b[?1049l\x1b[r");
    let stir = Stir {
        views: true,
        resizes: true,
    };
    let history = assert_same_screens("generated", input.as_bytes(), rows, cols, 50, stir);
    assert_eq!(history, 50, "the scrollback should be full");
}

/// The benchmark's coloured log lines: the common case the fast path is for.
#[test]
fn coloured_log_lines_draw_the_same() {
    let mut input = Vec::new();
    let mut seed = 7u64;
    for line in 0..3000 {
        input.extend_from_slice(
            format!("\x1b[1;32m{line:08}\x1b[0m \x1b[36mINFO\x1b[0m ").as_bytes(),
        );
        let words = 5 + xorshift(&mut seed) % 20;
        for _ in 0..words {
            let n = xorshift(&mut seed);
            if n % 5 == 0 {
                input.extend_from_slice(format!("\x1b[38;5;{}mword\x1b[0m ", n % 256).as_bytes());
            } else {
                input.extend_from_slice(b"supervisor ");
            }
        }
        input.extend_from_slice(b"\r\n");
    }
    let stir = Stir {
        views: true,
        resizes: false,
    };
    let history = assert_same_screens("log lines", &input, 40, 120, 500, stir);
    assert_eq!(history, 500, "the scrollback should be full");
}
