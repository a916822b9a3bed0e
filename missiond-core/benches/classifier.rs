//! Cost of one classification: `semantic::Classifier::on_output` with the embedded
//! claude-code rules, on the screens of the recorded Claude Code sessions
//! (tests/fixtures). The slot's parser thread runs it once per batch of output.
//!
//! Screens are taken after every 256 bytes of each recording (a typical Claude Code repaint is
//! a few hundred bytes), so the set covers dialogs, spinners, prompts and the `/` menu.
//!
//! `spinner/*`: what a busy Claude Code costs the slot's parser thread per chunk: one lap of
//! the recorded spinner (`missiond/examples/data/claude-busy.cast`, the screen of the bench's
//! section 9) fed chunk by chunk to one screen, as recorded, with `on_output` after each chunk
//! (`parse+classify`) or without (`parse`, for the difference). A frame changes one to three
//! rows of a full 120x40 screen.
//!
//! Run: `cargo bench -p missiond-core --bench classifier`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use missiond_core::protocol::Profile;
use missiond_core::screen::Screen;
use missiond_core::semantic::{Classifier, RuleBook};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Bytes fed between two screens.
const STEP: usize = 256;

fn fixtures_dir() -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let versioned = base.join("claude-code-2.1.330");
    if versioned.is_dir() {
        versioned
    } else {
        base
    }
}

/// `(screen, title)` after every [`STEP`] bytes of every recording.
fn screens() -> Vec<(vt100::Screen, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "bin"));
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let mut screen = Screen::new(120, 40, 2000);
        for chunk in bytes.chunks(STEP) {
            screen.process(chunk);
            out.push((screen.vt().clone(), screen.title().to_string()));
        }
    }
    out
}

fn classify(c: &mut Criterion) {
    let screens = screens();
    assert!(
        !screens.is_empty(),
        "no recordings in {}",
        fixtures_dir().display()
    );
    let book = RuleBook::embedded();
    let mut group = c.benchmark_group("classifier");
    group.throughput(Throughput::Elements(screens.len() as u64));
    for profile in [Profile::ClaudeCode, Profile::Shell] {
        let rules = book.rules(profile);
        group.bench_function(format!("on_output/{}", profile.as_str()), |b| {
            b.iter(|| {
                let mut classifier = Classifier::new(rules.clone());
                for (screen, title) in &screens {
                    black_box(classifier.on_output(screen, title, Instant::now()));
                }
            })
        });
    }
    group.finish();
}

/// The recorded busy screen: output before the spinner, and the spinner's chunks (one lap).
fn busy_recording() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../missiond/examples/data/claude-busy.cast");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (mut before, mut spinner) = (Vec::new(), Vec::new());
    let mut busy = false;
    for line in text.lines().skip(1) {
        let Ok(serde_json::Value::Array(event)) = serde_json::from_str(line) else {
            continue;
        };
        match (
            event.get(1).and_then(|k| k.as_str()),
            event.get(2).and_then(|d| d.as_str()),
        ) {
            (Some("m"), Some("bench:busy")) => busy = true,
            (Some("o"), Some(data)) if busy => spinner.push(data.as_bytes().to_vec()),
            (Some("o"), Some(data)) => before.push(data.as_bytes().to_vec()),
            _ => {}
        }
    }
    (before, spinner)
}

fn spinner(c: &mut Criterion) {
    let (before, spinner) = busy_recording();
    assert!(!spinner.is_empty(), "no spinner in claude-busy.cast");
    let rules = RuleBook::embedded().rules(Profile::ClaudeCode);
    let mut group = c.benchmark_group("spinner");
    group.throughput(Throughput::Elements(spinner.len() as u64));
    for classify in [false, true] {
        let mut screen = Screen::new(120, 40, 2000);
        let mut classifier = Classifier::new(rules.clone());
        for chunk in &before {
            screen.process(chunk);
            classifier.on_output(screen.vt(), screen.title(), Instant::now());
        }
        let name = if classify { "parse+classify" } else { "parse" };
        group.bench_function(name, |b| {
            b.iter(|| {
                for chunk in &spinner {
                    screen.process(chunk);
                    if classify {
                        black_box(classifier.on_output(
                            screen.vt(),
                            screen.title(),
                            Instant::now(),
                        ));
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, classify, spinner);
criterion_main!(benches);
