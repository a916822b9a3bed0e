//! Every mark of every recorded Claude Code session classifies right: the shared 2.1.330
//! recordings (tests/fixtures) and the recordings of other releases
//! (tests/fixtures/claude-code-<release>/, made by missiond/tests/record_claude.rs); and the
//! recorded dialogs parse to the right kind, title, question, body, options and meanings.

#[path = "support/fixtures.rs"]
mod fixtures;

use missiond_core::protocol::{DialogKind, Profile, SemanticState};
use missiond_core::semantic::{Classifier, RuleBook, Transition};
use std::path::Path;
use std::time::{Duration, Instant};

/// Remembers the last OSC 0/2 title, as the slot's parser thread does.
#[derive(Default)]
struct Title(String);

impl vt100::Callbacks for Title {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.0 = String::from_utf8_lossy(title).into_owned();
    }
}

struct Mark {
    offset: usize,
    state: String,
    note: String,
}

struct Recording {
    name: String,
    cols: u16,
    rows: u16,
    bytes: Vec<u8>,
    marks: Vec<Mark>,
}

/// The shared 2.1.330 recordings.
fn recordings() -> Vec<Recording> {
    let out = recordings_in(&fixtures::fixtures_dir(), "");
    assert_eq!(
        out.len(),
        7,
        "expected the seven recordings of tests/fixtures"
    );
    out
}

/// The recordings of every other release: `tests/fixtures/claude-code-<release>/`.
fn release_recordings() -> Vec<Recording> {
    let dirs = fixtures::release_dirs();
    assert!(
        dirs.len() >= 3,
        "expected recordings of three more releases: {dirs:?}"
    );
    let mut out = Vec::new();
    for dir in dirs {
        let release = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let recs = recordings_in(&dir, &format!("{}/", release.unwrap_or_default()));
        assert!(!recs.is_empty(), "{}: no recordings", dir.display());
        out.extend(recs);
    }
    assert!(out.len() >= 11, "only {} release recordings", out.len());
    out
}

/// Every recording, of every release.
fn all_recordings() -> Vec<Recording> {
    let mut all = recordings();
    all.extend(release_recordings());
    all
}

fn recordings_in(dir: &Path, prefix: &str) -> Vec<Recording> {
    let mut out = Vec::new();
    for json_path in fixtures::files_in(dir, "json") {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json_path).expect("read json"))
                .expect("parse json");
        let bytes = std::fs::read(json_path.with_extension("bin")).expect("read bin");
        let marks = json["marks"]
            .as_array()
            .expect("marks")
            .iter()
            .map(|m| Mark {
                offset: m["offset"].as_u64().expect("offset") as usize,
                state: m["state"].as_str().expect("state").to_string(),
                note: m["note"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        out.push(Recording {
            name: format!(
                "{prefix}{}",
                json_path.file_stem().expect("stem").to_string_lossy()
            ),
            cols: json["cols"].as_u64().expect("cols") as u16,
            rows: json["rows"].as_u64().expect("rows") as u16,
            bytes,
            marks,
        });
    }
    out
}

/// A `thinking` label accepts any busy state.
fn label_accepts(label: &str, state: SemanticState) -> bool {
    match label {
        "thinking" => state.is_busy(),
        other => SemanticState::parse(other) == Some(state),
    }
}

fn screen_at(rec: &Recording, offset: usize) -> vt100::Parser<Title> {
    let mut parser = vt100::Parser::new_with_callbacks(rec.rows, rec.cols, 0, Title::default());
    parser.process(&rec.bytes[..offset]);
    parser
}

/// Classifies the screen after bytes `[0, offset)`, letting time pass past every deadline.
fn classify_at(rec: &Recording, offset: usize) -> Classifier {
    let book = RuleBook::embedded();
    let parser = screen_at(rec, offset);
    let mut c = Classifier::new(book.rules(Profile::ClaudeCode));
    let t0 = Instant::now();
    c.on_output(parser.screen(), &parser.callbacks().0, t0);
    c.on_tick(
        parser.screen(),
        &parser.callbacks().0,
        t0 + Duration::from_secs(10),
    );
    c
}

#[test]
fn every_mark_classifies_right_from_a_fresh_screen() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for rec in all_recordings() {
        for m in &rec.marks {
            let c = classify_at(&rec, m.offset);
            checked += 1;
            println!(
                "{} @{} ({}): {} -> {:?} [{:?}]",
                rec.name,
                m.offset,
                m.note,
                m.state,
                c.state(),
                c.detail().reason
            );
            if !label_accepts(&m.state, c.state()) {
                failures.push(format!(
                    "{} @{} ({}): want {}, got {:?} (reason {:?})",
                    rec.name,
                    m.offset,
                    m.note,
                    m.state,
                    c.state(),
                    c.detail().reason
                ));
            }
        }
    }
    assert!(checked >= 40, "only {checked} marks checked");
    assert!(
        failures.is_empty(),
        "misclassified marks:\n{}",
        failures.join("\n")
    );
}

/// The whole stream in small chunks through one classifier, as the slot's parser thread feeds it:
/// at every mark (after time has passed) the state is the marked one, and every transition is a
/// real change that names the state before it.
#[test]
fn every_mark_classifies_right_when_streamed() {
    let book = RuleBook::embedded();
    let mut failures = Vec::new();
    for rec in all_recordings() {
        let mut parser = vt100::Parser::new_with_callbacks(rec.rows, rec.cols, 0, Title::default());
        let mut c = Classifier::new(book.rules(Profile::ClaudeCode));
        let mut now = Instant::now();
        let mut last = SemanticState::Starting;
        let mut transitions: Vec<Transition> = Vec::new();
        let record =
            |t: Option<Transition>, last: &mut SemanticState, all: &mut Vec<Transition>| {
                if let Some(t) = t {
                    assert_eq!(
                        t.prev, *last,
                        "{}: transition must name the previous state",
                        rec.name
                    );
                    assert!(
                        t.state != t.prev
                            || matches!(t.state, SemanticState::Confirming | SemanticState::Error),
                        "{}: a non-change was reported: {t:?}",
                        rec.name
                    );
                    *last = t.state;
                    all.push(t);
                }
            };
        let mut pos = 0;
        for m in &rec.marks {
            while pos < m.offset {
                let end = (pos + 64).min(m.offset);
                parser.process(&rec.bytes[pos..end]);
                pos = end;
                now += Duration::from_millis(20);
                if c.next_deadline().is_some_and(|d| now >= d) {
                    let t = c.on_tick(parser.screen(), &parser.callbacks().0, now);
                    record(t, &mut last, &mut transitions);
                }
                let t = c.on_output(parser.screen(), &parser.callbacks().0, now);
                record(t, &mut last, &mut transitions);
            }
            now += Duration::from_secs(10);
            if c.next_deadline().is_some_and(|d| now >= d) {
                let t = c.on_tick(parser.screen(), &parser.callbacks().0, now);
                record(t, &mut last, &mut transitions);
            }
            assert_eq!(
                c.next_deadline(),
                None,
                "{}: a stable screen leaves nothing pending",
                rec.name
            );
            if !label_accepts(&m.state, c.state()) {
                failures.push(format!(
                    "{} @{} ({}): want {}, got {:?} (reason {:?})",
                    rec.name,
                    m.offset,
                    m.note,
                    m.state,
                    c.state(),
                    c.detail().reason
                ));
            }
        }
        let path: Vec<String> = transitions
            .iter()
            .map(|t| {
                format!(
                    "{}({})",
                    t.state.as_str(),
                    t.detail.reason.as_deref().unwrap_or("")
                )
            })
            .collect();
        println!("{}: {}", rec.name, path.join(" -> "));
    }
    assert!(
        failures.is_empty(),
        "misclassified marks:\n{}",
        failures.join("\n")
    );
}

fn dialog_at(name: &str, offset: usize) -> missiond_core::protocol::Dialog {
    let rec = recordings()
        .into_iter()
        .find(|r| r.name == name)
        .expect("recording");
    let c = classify_at(&rec, offset);
    assert_eq!(c.state(), SemanticState::Confirming, "{name} @{offset}");
    c.detail()
        .dialog
        .clone()
        .expect("a confirming state carries its dialog")
}

fn labels(d: &missiond_core::protocol::Dialog) -> Vec<(u32, &str, bool)> {
    d.options
        .iter()
        .map(|o| (o.n, o.label.as_str(), o.selected))
        .collect()
}

#[test]
fn bash_permission_dialog_parses() {
    let d = dialog_at("bash_permission-120x40", 4509);
    assert_eq!(d.kind, DialogKind::Permission);
    assert_eq!(d.title, "Bash command");
    assert_eq!(d.question, "Do you want to proceed?");
    assert_eq!(d.body, "touch /tmp/ccproj/flag.txt");
    assert_eq!(
        labels(&d),
        vec![
            (1, "Yes", true),
            (
                2,
                "Yes, and always allow access to /tmp/ccproj from this project",
                false
            ),
            (
                3,
                "Yes, and switch to auto mode · auto mode handles these prompts for you",
                false
            ),
            (4, "No", false),
        ]
    );
}

#[test]
fn write_permission_dialog_parses() {
    let d = dialog_at("write_permission-120x40", 4401);
    assert_eq!(d.kind, DialogKind::Permission);
    assert_eq!(d.title, "Create file");
    assert_eq!(d.question, "Do you want to create notes.txt?");
    assert_eq!(d.body, "1 hello");
    assert_eq!(
        labels(&d),
        vec![
            (1, "Yes", true),
            (
                2,
                "Yes, and switch to accept edits (auto-approve file edits and common file commands) for this session (shift+tab)",
                false
            ),
            (3, "No", false),
        ]
    );
}

#[test]
fn trust_dialog_parses() {
    let d = dialog_at("startup_dialogs-120x40", 1296);
    assert_eq!(d.kind, DialogKind::Trust);
    assert_eq!(d.title, "Accessing workspace");
    assert_eq!(
        d.question,
        "Quick safety check: Is this a project you created or one you trust?"
    );
    assert_eq!(d.body, "/tmp/ccproj");
    assert_eq!(
        labels(&d),
        vec![
            (1, "No, exit", true),
            (2, "Yes, I trust this folder", false)
        ]
    );
}

#[test]
fn api_key_dialog_parses() {
    let d = dialog_at("startup_dialogs-120x40", 2544);
    assert_eq!(d.kind, DialogKind::ApiKey);
    assert_eq!(d.title, "Detected a custom API key in your environment");
    assert_eq!(d.question, "Do you want to use this API key?");
    assert_eq!(d.body, "ANTHROPIC_API_KEY: sk-ant-...key-0123456789abcdef");
    assert_eq!(
        labels(&d),
        vec![(1, "Yes", false), (2, "No (recommended)", true)]
    );
}

/// On every release, every recorded permission and trust dialog can be answered by meaning:
/// its first option allows once ("yes"), and it can be refused, by an option meaning "no" or
/// (with no such option) by Escape; an option meaning "always" is never the first.
#[test]
fn every_recorded_dialog_can_be_answered_by_meaning() {
    use missiond_core::protocol::Meaning;
    let mut checked = 0;
    for rec in all_recordings() {
        for m in rec.marks.iter().filter(|m| m.state == "confirming") {
            let c = classify_at(&rec, m.offset);
            let Some(dialog) = c.detail().dialog.clone() else {
                panic!("{} @{}: confirming without a dialog", rec.name, m.offset);
            };
            if !matches!(dialog.kind, DialogKind::Permission | DialogKind::Trust) {
                continue;
            }
            checked += 1;
            let what = format!("{} @{} ({}): {dialog:?}", rec.name, m.offset, m.note);
            let yes = dialog
                .option_meaning(Meaning::Yes)
                .map(|o| o.label.as_str());
            assert!(
                yes.is_some_and(|l| l.starts_with("Yes")),
                "no option means yes: {what}"
            );
            assert!(
                dialog.option_meaning(Meaning::No).is_some() || dialog.cancellable,
                "cannot be refused: {what}"
            );
            if dialog.kind == DialogKind::Permission {
                assert_eq!(dialog.options[0].meaning, Some(Meaning::Yes), "{what}");
            }
            for o in &dialog.options {
                if o.label.starts_with("No") {
                    assert_eq!(o.meaning, Some(Meaning::No), "{what}");
                }
                if o.label.contains("switch to") {
                    assert_eq!(o.meaning, None, "a mode switch is no plain yes: {what}");
                }
            }
        }
    }
    assert!(checked >= 8, "only {checked} dialogs checked");
}

/// Claude Code 2.0.x asks "Do you trust the files in this folder?" with the folder and a
/// warning below the question: a `trust` dialog whose body holds both, answerable by meaning.
#[test]
fn the_2_0_trust_dialog_is_a_trust_dialog_with_folder_and_warning() {
    use missiond_core::protocol::Meaning;
    let rec = release_recordings()
        .into_iter()
        .find(|r| r.name == "claude-code-2.0.77/startup_trust-120x40")
        .expect("the 2.0.77 trust recording");
    let mark = rec
        .marks
        .iter()
        .find(|m| m.state == "confirming")
        .expect("mark");
    let c = classify_at(&rec, mark.offset);
    let dialog = c.detail().dialog.clone().expect("dialog");
    assert_eq!(dialog.kind, DialogKind::Trust, "{dialog:?}");
    assert_eq!(dialog.question, "Do you trust the files in this folder?");
    assert!(dialog.body.contains("/project"), "the folder: {dialog:?}");
    assert!(
        dialog.body.contains("security risks"),
        "the warning: {dialog:?}"
    );
    let labels: Vec<(&str, Option<Meaning>)> = dialog
        .options
        .iter()
        .map(|o| (o.label.as_str(), o.meaning))
        .collect();
    assert_eq!(
        labels,
        [
            ("Yes, proceed", Some(Meaning::Yes)),
            ("No, exit", Some(Meaning::No))
        ]
    );
}
