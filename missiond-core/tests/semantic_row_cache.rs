//! The classifier keeps the text of screen rows that did not change between two looks
//! (`Screen::row_stamp`, a patch of the vendored vt100). It must decide exactly as a classifier
//! that reads every row afresh: both are fed the same output in small chunks (several sizes,
//! down to one byte) and must report the same transitions and hold the same state and detail
//! after every chunk. The fresh one is given a clone of the screen each time: a cloned grid
//! gets a new id, so none of the rows it kept matches and it reads every row it needs.
//!
//! Inputs: every recorded Claude Code session (tests/fixtures and its `claude-code-*`
//! releases), and generated output that looks like Claude Code (rules, prompt box, spinner,
//! dialog) stirred with scrolling, clear screen, the alternate screen, scroll regions,
//! inserted and deleted lines, resizes and views scrolled back into the history.

#[path = "support/fixtures.rs"]
mod fixtures;

use missiond_core::protocol::Profile;
use missiond_core::semantic::{Classifier, RuleBook, Transition};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Remembers the last OSC 0/2 title, as the slot's parser thread does.
#[derive(Default)]
struct Title(String);

impl vt100::Callbacks for Title {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.0 = String::from_utf8_lossy(title).into_owned();
    }
}

/// A stir between two chunks, applied to the screen both classifiers read.
type Stir = fn(&mut vt100::Parser<Title>, u64);

fn no_stir(_: &mut vt100::Parser<Title>, _: u64) {}

/// No stirring and no scrollback (every chunk clones the screen: keep it small).
const STILL: (Stir, usize) = (no_stir, 0);
/// Views and resizes, over a scrollback of 200 lines.
const STIRRED: (Stir, usize) = (stir_views_and_sizes, 200);

/// Sometimes scrolls the view back into the history (left there while output arrives) or
/// back to the live screen; sometimes resizes.
fn stir_views_and_sizes(parser: &mut vt100::Parser<Title>, r: u64) {
    if r % 11 == 0 {
        let offset = if r % 3 == 0 {
            0
        } else {
            (r >> 8) as usize % 60
        };
        parser.screen_mut().set_scrollback(offset);
    }
    if r % 97 == 0 {
        let (rows, cols) = (6 + (r >> 16) as u16 % 40, 20 + (r >> 24) as u16 % 110);
        parser.screen_mut().set_size(rows, cols);
    }
}

/// Feeds `input` in chunks of `chunk` bytes (0: random sizes up to 300) to one screen, and
/// after every chunk lets the caching classifier and a fresh-reading one classify it.
fn assert_cache_changes_nothing(
    name: &str,
    input: &[u8],
    chunk: usize,
    profile: Profile,
    (rows, cols): (u16, u16),
    (stir, scrollback): (Stir, usize),
) -> usize {
    let rules = RuleBook::embedded().rules(profile);
    let mut parser = vt100::Parser::new_with_callbacks(rows, cols, scrollback, Title::default());
    let mut cached = Classifier::new(Arc::clone(&rules));
    let mut fresh = Classifier::new(rules);
    let mut now = Instant::now();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ input.len() as u64 ^ chunk as u64;
    let mut transitions = 0;
    let mut at = 0;
    while at < input.len() {
        let size = if chunk == 0 {
            1 + (xorshift(&mut seed) % 300) as usize
        } else {
            chunk
        };
        let end = input.len().min(at + size);
        parser.process(&input[at..end]);
        at = end;
        stir(&mut parser, xorshift(&mut seed));
        now += Duration::from_millis(7);
        let title = parser.callbacks().0.clone();
        let screen = parser.screen();
        let copy = screen.clone();
        let a = cached.on_output(screen, &title, now);
        let b = fresh.on_output(&copy, &title, now);
        compare(name, at, "on_output", &a, &b, &cached, &fresh);
        transitions += usize::from(a.is_some());
        if let Some(deadline) = cached
            .next_deadline()
            .filter(|&d| d <= now + Duration::from_millis(7))
        {
            now = now.max(deadline);
            let a = cached.on_tick(screen, &title, now);
            let b = fresh.on_tick(&copy, &title, now);
            compare(name, at, "on_tick", &a, &b, &cached, &fresh);
            transitions += usize::from(a.is_some());
        }
    }
    transitions
}

fn compare(
    name: &str,
    at: usize,
    what: &str,
    a: &Option<Transition>,
    b: &Option<Transition>,
    cached: &Classifier,
    fresh: &Classifier,
) {
    assert_eq!(
        a, b,
        "{name}: {what} after {at} bytes: the transitions differ"
    );
    assert_eq!(
        cached.state(),
        fresh.state(),
        "{name}: state after {at} bytes"
    );
    assert_eq!(
        cached.detail(),
        fresh.detail(),
        "{name}: detail after {at} bytes"
    );
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn recorded_sessions_classify_the_same_with_kept_rows() {
    let mut transitions = 0;
    for (name, bytes) in fixtures::recorded_sessions() {
        for chunk in [1, 2, 7, 64, 512, 0] {
            for profile in [Profile::ClaudeCode, Profile::Shell] {
                transitions +=
                    assert_cache_changes_nothing(&name, &bytes, chunk, profile, (40, 120), STILL);
            }
        }
    }
    assert!(
        transitions > 100,
        "only {transitions} transitions: the test compared little"
    );
}

#[test]
fn recorded_sessions_classify_the_same_with_views_and_resizes() {
    for (name, bytes) in fixtures::recorded_sessions() {
        for chunk in [3, 0] {
            assert_cache_changes_nothing(
                &name,
                &bytes,
                chunk,
                Profile::ClaudeCode,
                (40, 120),
                STIRRED,
            );
        }
    }
}

/// Claude Code's pieces (rules, prompt box, spinner, a dialog) among scrolling, clearing, the
/// alternate screen (as vim uses it), scroll regions and line insertion and deletion.
#[test]
fn generated_screens_classify_the_same_with_kept_rows() {
    let rule = "─".repeat(60);
    let tokens: Vec<String> = vec![
        format!("{rule}\r\n"),
        "❯ \r\n".into(),
        "❯ hello\r\n".into(),
        "✻ Thinking… (esc to interrupt)\r\n".into(),
        "\x1b[H\r\x1b[5B✢\x1b[10;1H".into(),
        "Do you want to proceed?\r\n❯ 1. Yes\r\n  2. No\r\n".into(),
        "  ? for shortcuts\r\n".into(),
        "Esc to cancel\r\n".into(),
        "$ ".into(),
        "plain output line\r\n".into(),
        "x".repeat(70),
        "\r\n".into(),
        "\x1b[2J".into(),
        "\x1b[H".into(),
        "\x1b[K".into(),
        "\x1b[J".into(),
        "\x1b[1J".into(),
        "\x1b[L".into(),
        "\x1b[2M".into(),
        "\x1b[S".into(),
        "\x1b[2T".into(),
        "\x1b[3@".into(),
        "\x1b[2P".into(),
        "\x1b[4X".into(),
        "\x1bM".into(),
        "\x1b[?1049h".into(),
        "\x1b[?1049l".into(),
        "\x1b[?47h".into(),
        "\x1b[?47l".into(),
        "\x1b[3;12r".into(),
        "\x1b[r".into(),
        "漢字".into(),
        "e\u{301}".into(),
        "\x1b]0;✳ Claude Code\x07".into(),
        "\x1b]0;⠂ Claude Code\x07".into(),
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut input = String::new();
    for _ in 0..6000 {
        let r = xorshift(&mut seed);
        if r % 7 == 0 {
            let row = 1 + xorshift(&mut seed) % 24;
            let col = 1 + xorshift(&mut seed) % 90;
            input.push_str(&format!("\x1b[{row};{col}H"));
        } else {
            input.push_str(&tokens[(r % tokens.len() as u64) as usize]);
        }
    }
    let mut transitions = 0;
    for chunk in [1, 5, 0] {
        for profile in [Profile::ClaudeCode, Profile::Shell] {
            for stir in [STILL, STIRRED] {
                transitions += assert_cache_changes_nothing(
                    "generated",
                    input.as_bytes(),
                    chunk,
                    profile,
                    (24, 80),
                    stir,
                );
            }
        }
    }
    // Random screens rarely look like one state for long: a few transitions, many screens.
    assert!(transitions > 0, "no transitions: the test compared little");
}
