//! The classifier on synthetic screens fed through vt100: region scoping against quoted prose,
//! debounce, signal order, the shell profile, exit, and the composer text.

use missiond_core::protocol::{DialogKind, Profile, SemanticState};
use missiond_core::semantic::{composer_text, Classifier, RuleBook};
use std::time::{Duration, Instant};

const COLS: u16 = 100;
const ROWS: u16 = 30;

/// A vt100 screen holding `top` from row 0 and `bottom` on the last rows.
fn screen(top: &[&str], bottom: &[&str]) -> vt100::Parser {
    let mut p = vt100::Parser::new(ROWS, COLS, 0);
    let mut bytes = String::from("\x1b[2J");
    for (i, line) in top.iter().enumerate() {
        bytes.push_str(&format!("\x1b[{};1H{}", i + 1, line));
    }
    let first = ROWS as usize - bottom.len();
    for (i, line) in bottom.iter().enumerate() {
        bytes.push_str(&format!("\x1b[{};1H{}", first + i + 1, line));
    }
    p.process(bytes.as_bytes());
    p
}

fn rule() -> String {
    "─".repeat(COLS as usize)
}

/// Claude Code's prompt box with `text` typed, and a footer.
fn prompt_box(text: &str) -> Vec<String> {
    vec![
        rule(),
        format!("❯ {text}"),
        rule(),
        "  ⏸ manual mode on · ? for shortcuts".to_string(),
    ]
}

fn claude() -> Classifier {
    Classifier::new(RuleBook::embedded().rules(Profile::ClaudeCode))
}

/// Feeds one screen and lets time pass past every deadline.
fn settle(c: &mut Classifier, p: &vt100::Parser, title: &str, now: Instant) -> SemanticState {
    c.on_output(p.screen(), title, now);
    let later = now + Duration::from_secs(10);
    c.on_tick(p.screen(), title, later);
    c.state()
}

fn idle_screen() -> vt100::Parser {
    let b = prompt_box("");
    let bottom: Vec<&str> = b.iter().map(String::as_str).collect();
    screen(&["", " ▐▛███▛█   Claude Code v2.1.330"], &bottom)
}

fn busy_screen(spinner: &str) -> vt100::Parser {
    let b = prompt_box("");
    let mut bottom: Vec<&str> = vec![spinner, ""];
    bottom.extend(b.iter().map(String::as_str));
    screen(&["", "❯ do the thing"], &bottom)
}

fn dialog_screen() -> vt100::Parser {
    let r = rule();
    let dashed = "╌".repeat(COLS as usize);
    screen(
        &[
            "",
            "❯ run it",
            "",
            r.as_str(),
            " Bash command",
            dashed.as_str(),
            " ls -la",
            dashed.as_str(),
            " Do you want to proceed?",
            " ❯ 1. Yes",
            "   2. No",
            "",
            " Esc to cancel · Tab to amend",
        ],
        &[],
    )
}

#[test]
fn quoted_prose_stays_idle() {
    let answer = [
        "",
        "❯ what does a permission prompt look like?",
        "",
        "● It reads:",
        "  Do you want to proceed?",
        "  ❯ 1. Yes",
        "    2. No",
        "  Esc to cancel · Tab to amend",
        "  and while it works the footer says esc to interrupt, above a line like",
        "  ✶ Thinking…",
        "",
        "✻ Worked for 3s · done 2:14 AM",
    ];
    let b = prompt_box("");
    let bottom: Vec<&str> = b.iter().map(String::as_str).collect();
    let p = screen(&answer, &bottom);
    let mut c = claude();
    assert_eq!(
        settle(&mut c, &p, "✳ Claude Code", Instant::now()),
        SemanticState::Idle
    );
    assert_eq!(c.detail().dialog, None);

    // Same prose filling the screen right up to the prompt box, and no title to help.
    let mut rows: Vec<&str> = Vec::new();
    while rows.len() + answer.len() + bottom.len() < ROWS as usize {
        rows.push("  filler prose");
    }
    rows.extend(answer[3..10].iter());
    let mut bottom2: Vec<&str> = vec![
        "  esc to interrupt",
        "  ✶ Thinking…",
        "Do you want to proceed?",
        " ❯ 1. Yes",
    ];
    bottom2.extend(b.iter().map(String::as_str));
    let p = screen(&rows, &bottom2);
    let mut c = claude();
    assert_eq!(settle(&mut c, &p, "", Instant::now()), SemanticState::Idle);
}

#[test]
fn spinner_above_the_box_is_busy_and_the_finished_turn_line_is_not() {
    let mut c = claude();
    assert_eq!(
        settle(
            &mut c,
            &busy_screen("✶ Gitifying…"),
            "✳ Claude Code",
            Instant::now()
        ),
        SemanticState::Thinking
    );
    let mut c = claude();
    let p = busy_screen("* Booping… (0s · ↓ 5 tokens)");
    assert_eq!(
        settle(&mut c, &p, "◐ Claude Code", Instant::now()),
        SemanticState::Responding
    );
    let mut c = claude();
    let p = busy_screen("✻ Worked for 20s · done 2:14 AM");
    assert_eq!(
        settle(&mut c, &p, "✳ Claude Code", Instant::now()),
        SemanticState::Idle
    );
}

#[test]
fn busy_to_idle_is_held_and_a_blink_does_not_end_the_turn() {
    let mut c = claude();
    let t0 = Instant::now();
    let busy = busy_screen("✶ Gitifying…");
    let idle = idle_screen();
    c.on_output(idle.screen(), "✳ Claude Code", t0);
    let t = c.on_output(
        busy.screen(),
        "◐ Claude Code",
        t0 + Duration::from_millis(10),
    );
    assert_eq!(
        t.map(|t| (t.prev, t.state)),
        Some((SemanticState::Idle, SemanticState::Thinking))
    );
    assert_eq!(
        c.next_deadline(),
        None,
        "nothing pending while the screen is stable"
    );

    // The spinner blinks off for a moment: no event, a deadline instead.
    let t1 = t0 + Duration::from_millis(100);
    assert_eq!(c.on_output(idle.screen(), "✳ Claude Code", t1), None);
    let hold = c.next_deadline().expect("debounce deadline");
    assert!(hold > t1);
    assert_eq!(
        c.on_output(
            busy.screen(),
            "◑ Claude Code",
            t1 + Duration::from_millis(200)
        ),
        None
    );
    assert_eq!(c.state(), SemanticState::Thinking);
    assert_eq!(c.next_deadline(), None);

    // Really idle: still thinking just before the hold ends, idle when it has.
    let t2 = t1 + Duration::from_millis(500);
    assert_eq!(c.on_output(idle.screen(), "✳ Claude Code", t2), None);
    let deadline = c.next_deadline().expect("debounce deadline");
    assert_eq!(
        c.on_tick(
            idle.screen(),
            "✳ Claude Code",
            deadline - Duration::from_millis(1)
        ),
        None
    );
    let t = c.on_tick(idle.screen(), "✳ Claude Code", deadline);
    assert_eq!(
        t.map(|t| (t.prev, t.state)),
        Some((SemanticState::Thinking, SemanticState::Idle))
    );
    assert_eq!(c.next_deadline(), None);
}

/// A Bash block as Claude Code 2.1.330 draws it about 3 s into `sleep 6; echo slept` (seen on
/// the real CLI in a 120x40 PTY): the elapsed time and the background hint appear. The spinner
/// line under it looks as it does while an answer streams.
const RUNNING_BASH: [&str; 3] = [
    "● Nap a while · 3s",
    "  ⎿  $ sleep 6; echo slept (3s)",
    "     (ctrl+b to run in background)",
];
const TOOL_SPINNER: &str = "✽ Whatchamacalliting… (9s · ↓ 40 tokens)";

/// A Claude Code screen: `transcript` under the first prompt, then (when busy) the spinner line
/// and a blank row, then the prompt box.
fn transcript_screen(transcript: &[&str], spinner: Option<&str>) -> vt100::Parser {
    let mut top = vec!["", "❯ run it", ""];
    top.extend_from_slice(transcript);
    let b = prompt_box("");
    let mut bottom: Vec<&str> = spinner.into_iter().chain([""]).collect();
    bottom.extend(b.iter().map(String::as_str));
    screen(&top, &bottom)
}

#[test]
fn a_running_tool_is_tool_running_and_its_leftovers_are_not() {
    let classify = |transcript: &[&str], spinner: Option<&str>, title: &str| {
        let mut c = claude();
        let p = transcript_screen(transcript, spinner);
        let state = settle(&mut c, &p, title, Instant::now());
        (state, c.detail().reason.clone())
    };
    let tool_running = (SemanticState::ToolRunning, Some("tool-running".to_string()));

    assert_eq!(
        classify(&RUNNING_BASH, Some(TOOL_SPINNER), "◐ Claude Code"),
        tool_running
    );
    // The `●` blinks; the rule does not look at it.
    let blink = ["  Nap a while · 3s", RUNNING_BASH[1], RUNNING_BASH[2]];
    assert_eq!(
        classify(&blink, Some(TOOL_SPINNER), "◑ Claude Code"),
        tool_running
    );
    // A command too long for one row: its wrapped rows are indented 5, the time ends the last.
    let long = format!("  ⎿  $ sleep 5; echo {}", "a".repeat(COLS as usize - 20));
    let wrapped = [
        "● Long command · 4s",
        long.as_str(),
        "     aaaaaaaa > /dev/null; touch /tmp/flag.txt (4s · 5 lines)",
        "     (ctrl+b to run in background)",
    ];
    assert_eq!(
        classify(&wrapped, Some(TOOL_SPINNER), "◐ Claude Code"),
        tool_running
    );

    // The first seconds of a tool show neither the time nor the hint: the spinner decides.
    let early = ["● Nap a while", "  ⎿  $ sleep 6; echo slept"];
    assert_eq!(
        classify(&early, Some(TOOL_SPINNER), "◐ Claude Code"),
        (
            SemanticState::Responding,
            Some("spinner-streaming".to_string())
        )
    );
    // A finished tool's leftovers, while the model works on.
    for done in [
        &["● Bash(touch /tmp/flag.txt)", "  ⎿  (No output)"][..],
        &["  Nap a while", "  ⎿  $ sleep 6; echo slept"][..],
        &["  Ran 1 shell command"][..],
    ] {
        assert_eq!(
            classify(done, Some("✶ Gitifying…"), "◐ Claude Code"),
            (SemanticState::Thinking, Some("spinner".to_string())),
            "{done:?}"
        );
    }
    // No spinner (the turn is over): not running, whatever the transcript shows.
    assert_eq!(
        classify(&RUNNING_BASH, None, "✳ Claude Code").0,
        SemanticState::Idle
    );
}

/// Prose quoting a running tool's block is not a running tool. Claude Code indents an answer by
/// 2 and keeps the indentation the model wrote, so a quote can sit at column 5 just like the
/// real hint (seen on the real CLI); it is never the last block above the spinner, though.
#[test]
fn a_quoted_tool_block_in_prose_is_not_tool_running() {
    let classify = |transcript: &[&str], spinner: Option<&str>, title: &str| {
        let mut c = claude();
        let p = transcript_screen(transcript, spinner);
        settle(&mut c, &p, title, Instant::now())
    };
    let paragraph = [
        "● While a tool runs, the screen shows ⎿  $ sleep 6; echo slept (3s) and",
        "  (ctrl+b to run in background) under it.",
        "  ⎿  $ sleep 6; echo slept (3s)",
        "  (ctrl+b to run in background)",
    ];
    let quote = [
        "● A running command looks like this:",
        "  ⎿  $ sleep 6; echo slept (3s)",
        "     (ctrl+b to run in background)",
        "",
        "✻ Brewed for 0s · done 5:50 PM",
    ];
    // The answer alone, the turn over: idle, with or without the title's help.
    for prose in [&paragraph[..], &quote[..]] {
        assert_eq!(
            classify(prose, None, "✳ Claude Code"),
            SemanticState::Idle,
            "{prose:?}"
        );
        assert_eq!(classify(prose, None, ""), SemanticState::Idle, "{prose:?}");
    }
    // The answer still streaming, the paragraph (indented 2) last above the spinner.
    assert_eq!(
        classify(&paragraph, Some(TOOL_SPINNER), "◐ Claude Code"),
        SemanticState::Responding
    );
    // The next turn thinking under the quote.
    let mut next: Vec<&str> = quote.to_vec();
    next.extend(["", "❯ go on", ""]);
    assert_eq!(
        classify(&next, Some("✶ Gitifying…"), "◐ Claude Code"),
        SemanticState::Thinking
    );
    // And a real running tool under the quote is one.
    next.extend(RUNNING_BASH);
    assert_eq!(
        classify(&next, Some(TOOL_SPINNER), "◐ Claude Code"),
        SemanticState::ToolRunning
    );
}

#[test]
fn confirming_and_exit_are_immediate_and_exit_is_final() {
    let mut c = claude();
    let t0 = Instant::now();
    c.on_output(busy_screen("✶ Gitifying…").screen(), "◐ Claude Code", t0);
    assert_eq!(c.state(), SemanticState::Thinking);
    let t = c
        .on_output(
            dialog_screen().screen(),
            "◐ Claude Code",
            t0 + Duration::from_millis(1),
        )
        .expect("event");
    assert_eq!(
        (t.prev, t.state),
        (SemanticState::Thinking, SemanticState::Confirming)
    );
    let d = t.detail.dialog.expect("dialog");
    assert_eq!(d.kind, DialogKind::Permission);
    assert_eq!(d.body, "ls -la");
    assert_eq!(c.next_deadline(), None);

    let t = c.on_exit().expect("event");
    assert_eq!(
        (t.prev, t.state),
        (SemanticState::Confirming, SemanticState::Exited)
    );
    assert_eq!(
        c.on_output(idle_screen().screen(), "✳ Claude Code", t0),
        None
    );
    assert_eq!(c.on_session_status(true, t0), None);
    assert_eq!(c.on_exit(), None);
    assert_eq!(c.state(), SemanticState::Exited);
    assert_eq!(c.next_deadline(), None);
}

/// AskUserQuestion (Claude Code 2.1.330) draws a `─` rule inside its option list, above
/// `4. Chat about this`: the dialog is still the whole block under the rule that opens it.
#[test]
fn question_dialog_with_a_rule_inside_its_options() {
    let r = rule();
    let p = screen(
        &[
            "",
            "❯ pick a colour",
            r.as_str(),
            " ☐ Colour",
            "",
            "Which colour do you like?",
            "",
            "❯ 1. Red",
            "     Choose Red",
            "  2. Blue",
            "     Choose Blue",
            "  3. Type something.",
            r.as_str(),
            "  4. Chat about this",
            "",
            "Enter to select · ↑/↓ to navigate · Esc to cancel",
        ],
        &[],
    );
    let mut c = claude();
    assert_eq!(
        settle(&mut c, &p, "✳ Claude Code", Instant::now()),
        SemanticState::Confirming
    );
    assert_eq!(c.detail().reason.as_deref(), Some("question-dialog"));
    let d = c.detail().dialog.clone().expect("dialog");
    assert_eq!(d.kind, DialogKind::Question);
    assert_eq!(d.question, "Which colour do you like?");
    let labels: Vec<&str> = d.options.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(
        labels,
        ["Red", "Blue", "Type something.", "Chat about this"]
    );
}

#[test]
fn starting_ends_with_the_screen_not_the_title() {
    let mut c = claude();
    let blank = screen(&[], &[]);
    let t0 = Instant::now();
    assert_eq!(
        settle(&mut c, &blank, "✳ Claude Code", t0),
        SemanticState::Starting
    );
    assert_eq!(c.on_session_status(false, t0), None);
    assert_eq!(
        settle(&mut c, &idle_screen(), "✳ Claude Code", t0),
        SemanticState::Idle
    );
}

#[test]
fn title_beats_session_status_which_beats_the_bare_prompt_box() {
    let t0 = Instant::now();
    let idle = idle_screen();
    let mut c = claude();
    assert_eq!(settle(&mut c, &idle, "", t0), SemanticState::Idle);
    // No title: the session file says busy, which outranks the bare prompt box.
    let t = c.on_session_status(true, t0).expect("event");
    assert_eq!(
        (t.state, t.detail.reason.as_deref()),
        (SemanticState::Thinking, Some("session-status"))
    );
    // An idle title outranks the session file (after the hold).
    assert_eq!(
        settle(&mut c, &idle, "✳ Claude Code", t0),
        SemanticState::Idle
    );
    assert_eq!(c.detail().reason.as_deref(), Some("title-idle"));
    // A busy title with a bare prompt box is busy.
    assert_eq!(
        settle(&mut c, &idle, "⠂ Claude Code", t0),
        SemanticState::Thinking
    );
}

#[test]
fn shell_is_responding_while_output_flows_and_idle_after_quiet() {
    let mut c = Classifier::new(RuleBook::embedded().rules(Profile::Shell));
    let p = screen(&["$ make", "cc -c main.c", "$ "], &[]);
    let t0 = Instant::now();
    let t = c.on_output(p.screen(), "", t0).expect("event");
    assert_eq!(
        (t.prev, t.state),
        (SemanticState::Starting, SemanticState::Responding)
    );
    let quiet = c.next_deadline().expect("quiet deadline");
    assert!(quiet > t0);
    assert_eq!(
        c.on_output(p.screen(), "", t0 + Duration::from_millis(100)),
        None
    );
    let quiet = c.next_deadline().expect("quiet deadline moves with output");
    assert_eq!(
        c.on_tick(p.screen(), "", quiet - Duration::from_millis(1)),
        None
    );
    let t = c.on_tick(p.screen(), "", quiet).expect("event");
    assert_eq!(
        (t.prev, t.state),
        (SemanticState::Responding, SemanticState::Idle)
    );
    assert_eq!(c.next_deadline(), None, "no timer while nothing changes");

    // A question at the cursor wins over output activity.
    let mut p = screen(&["$ rm -i x", "rm: remove regular file 'x'? [y/N] "], &[]);
    p.process(b"\x1b[2;38H");
    let t = c
        .on_output(p.screen(), "", quiet + Duration::from_secs(1))
        .expect("event");
    assert_eq!(t.state, SemanticState::Confirming);
    assert_eq!(t.detail.dialog.map(|d| d.kind), Some(DialogKind::Other));
}

#[test]
fn composer_text_reads_the_prompt_box() {
    assert_eq!(composer_text(idle_screen().screen()), Some(String::new()));
    let b = [
        rule(),
        "❯ first line".to_string(),
        "  second line".to_string(),
        rule(),
    ];
    let bottom: Vec<&str> = b.iter().map(String::as_str).collect();
    assert_eq!(
        composer_text(screen(&[], &bottom).screen()),
        Some("first line\nsecond line".to_string())
    );
    assert_eq!(composer_text(dialog_screen().screen()), None);
    // Dim text is a placeholder hint, not typed text.
    let mut p = screen(&[], &[&rule(), "❯ ", &rule()]);
    p.process(format!("\x1b[{};3H\x1b[2mTry \"fix lint errors\"\x1b[22m", ROWS - 1).as_bytes());
    assert_eq!(composer_text(p.screen()), Some(String::new()));
}
