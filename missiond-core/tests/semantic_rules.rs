//! Rule files as data: overrides from a directory replace the embedded defaults, a broken file is
//! reported with file and line while the defaults stay in force.

use missiond_core::protocol::{Profile, SemanticState};
use missiond_core::semantic::{embedded_source, Classifier, RuleBook};
use std::time::{Duration, Instant};

/// A Claude Code-like screen with `above` just above the prompt box.
fn screen_with(above: &str) -> vt100::Parser {
    let mut p = vt100::Parser::new(20, 80, 0);
    let rule = "─".repeat(80);
    p.process(format!("\x1b[15;1H{above}\x1b[17;1H{rule}\x1b[18;1H❯ \x1b[19;1H{rule}").as_bytes());
    p
}

fn classify(book: &RuleBook, profile: Profile, p: &vt100::Parser, title: &str) -> SemanticState {
    let mut c = Classifier::new(book.rules(profile));
    let now = Instant::now();
    c.on_output(p.screen(), title, now);
    c.on_tick(p.screen(), title, now + Duration::from_secs(10));
    c.state()
}

#[test]
fn no_directory_or_no_file_means_embedded_without_warnings() {
    let (book, warnings) = RuleBook::load(None);
    assert!(warnings.is_empty());
    assert_eq!(
        book.rules(Profile::ClaudeCode).origin,
        "embedded:claude-code.toml"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (book, warnings) = RuleBook::load(Some(dir.path()));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(book.rules(Profile::Shell).origin, "embedded:shell.toml");
}

#[test]
fn broken_override_is_reported_with_file_and_line_and_defaults_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("claude-code.toml");
    // Line 4 has a TOML syntax error (unterminated string).
    std::fs::write(
        &path,
        "[timing]\nidle_hold_ms = 800\n\n[[rule]]\nname = \"oops\nregion = \"title\"\n",
    )
    .expect("write");
    let (book, warnings) = RuleBook::load(Some(dir.path()));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.contains(&format!("{}:5:", path.display())),
        "warning must name file and line: {w}"
    );
    assert!(w.contains("embedded"), "{w}");
    let rules = book.rules(Profile::ClaudeCode);
    assert_eq!(rules.origin, "embedded:claude-code.toml");
    assert_eq!(
        classify(
            &book,
            Profile::ClaudeCode,
            &screen_with("✶ Gitifying…"),
            "✳ Claude Code"
        ),
        SemanticState::Thinking
    );
    assert_eq!(
        classify(
            &book,
            Profile::ClaudeCode,
            &screen_with(""),
            "✳ Claude Code"
        ),
        SemanticState::Idle
    );

    // A well-formed file with a bad regex and an unknown state: line of the first problem.
    std::fs::write(
        &path,
        "[[rule]]\nname = \"a\"\nregion = \"above_prompt\"\nstate = \"thinking\"\nany = ['ok', '([unclosed']\n",
    )
    .expect("write");
    let (_, warnings) = RuleBook::load(Some(dir.path()));
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains(&format!("{}:5:", path.display())),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("bad pattern in rule `a`"),
        "{}",
        warnings[0]
    );

    std::fs::write(
        &path,
        "[[rule]]\nname = \"a\"\nregion = \"above_prompt\"\n\nstate = \"napping\"\nany = ['x']\n",
    )
    .expect("write");
    let (_, warnings) = RuleBook::load(Some(dir.path()));
    assert!(
        warnings[0].contains(":5:") && warnings[0].contains("unknown state `napping`"),
        "{}",
        warnings[0]
    );
}

#[test]
fn override_changes_a_state_without_a_rebuild() {
    // Claude Code "changed" its spinner to a Braille glyph without an ellipsis.
    let p = screen_with("⣾ Pondering (3s)");
    let embedded = RuleBook::embedded();
    assert_eq!(
        classify(&embedded, Profile::ClaudeCode, &p, "✳ Claude Code"),
        SemanticState::Idle
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let custom = format!(
        "{}\n[[rule]]\nname = \"braille-spinner\"\nregion = \"above_prompt\"\nany = ['^⣾ \\S']\nstate = \"thinking\"\npriority = 90\n",
        embedded_source(Profile::ClaudeCode)
    );
    std::fs::write(dir.path().join("claude-code.toml"), custom).expect("write");
    let (book, warnings) = RuleBook::load(Some(dir.path()));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(book
        .rules(Profile::ClaudeCode)
        .origin
        .ends_with("claude-code.toml"));
    assert!(!book
        .rules(Profile::ClaudeCode)
        .origin
        .starts_with("embedded:"));
    let mut c = Classifier::new(book.rules(Profile::ClaudeCode));
    let now = Instant::now();
    c.on_output(p.screen(), "✳ Claude Code", now);
    assert_eq!(c.state(), SemanticState::Thinking);
    assert_eq!(c.detail().reason.as_deref(), Some("braille-spinner"));
    // The other profile keeps its defaults.
    assert_eq!(book.rules(Profile::Shell).origin, "embedded:shell.toml");
}

#[test]
fn shell_override_adds_an_error_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("shell.toml"),
        "[activity]\nstate = \"responding\"\nquiet_ms = 500\npriority = 10\n\n\
         [[rule]]\nname = \"build-failed\"\nregion = \"screen\"\nany = ['^BUILD FAILED']\nstate = \"error\"\npriority = 50\n",
    )
    .expect("write");
    let (book, warnings) = RuleBook::load(Some(dir.path()));
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut p = vt100::Parser::new(10, 40, 0);
    p.process(b"$ make\r\nBUILD FAILED\r\n$ ");
    assert_eq!(
        classify(&book, Profile::Shell, &p, ""),
        SemanticState::Error
    );
    assert_eq!(
        classify(&RuleBook::embedded(), Profile::Shell, &p, ""),
        SemanticState::Idle
    );
}
