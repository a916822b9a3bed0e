//! The per-byte costs of the output hot path, in isolation (see docs/PERFORMANCE.md):
//!
//! - `parse/*`: the slot's emulator (`screen::Screen`, vt100 with query answers, 120x40, 2000
//!   lines of scrollback) and a bare `vt100::Parser` for comparison, fed 16 KiB reads of the
//!   benchmark's coloured text (the same generator as `missiond/examples/bench.rs`).
//! - `frame/*`: what `/pty` does for every viewer and every 64 KiB of output: lossy UTF-8
//!   conversion, then JSON encoding of `{type:"data", data}`, each alone and together.
//!
//! Run: `cargo bench -p missiond-core --bench hot_path`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use missiond_core::protocol::PtyServerMsg;
use missiond_core::screen::Screen;

/// Bytes of sample output: large enough to scroll through the scrollback many times.
const SAMPLE: usize = 4 * 1024 * 1024;
/// One read of the daemon's PTY pump.
const READ: usize = 16 * 1024;
/// One `/pty` data frame at most.
const FRAME: usize = 64 * 1024;

#[path = "common/sample.rs"]
mod sample_data;

/// The sample as a terminal receives it: `\r\n` line ends (the PTY's output processing adds
/// the `\r`).
fn sample(len: usize) -> Vec<u8> {
    sample_data::sample(len, b"\r\n")
}

fn parse(c: &mut Criterion) {
    let data = sample(SAMPLE);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.bench_function("screen_120x40_sb2000", |b| {
        b.iter(|| {
            let mut screen = Screen::new(120, 40, 2000);
            for chunk in data.chunks(READ) {
                black_box(screen.process(chunk));
            }
            black_box(screen.vt().cursor_position())
        })
    });
    // The slot's Screen without scrollback, and bare vt100 with it: which of scrollback and
    // callbacks makes the slot's Screen slower than bare vt100.
    group.bench_function("screen_120x40_sb0", |b| {
        b.iter(|| {
            let mut screen = Screen::new(120, 40, 0);
            for chunk in data.chunks(READ) {
                black_box(screen.process(chunk));
            }
            black_box(screen.vt().cursor_position())
        })
    });
    group.bench_function("vt100_120x40_sb2000", |b| {
        b.iter(|| {
            let mut parser = vt100::Parser::new(40, 120, 2000);
            for chunk in data.chunks(READ) {
                parser.process(chunk);
            }
            black_box(parser.screen().cursor_position())
        })
    });
    group.bench_function("vt100_120x40_sb0", |b| {
        b.iter(|| {
            let mut parser = vt100::Parser::new(40, 120, 0);
            for chunk in data.chunks(READ) {
                parser.process(chunk);
            }
            black_box(parser.screen().cursor_position())
        })
    });
    group.finish();
}

fn frame(c: &mut Criterion) {
    let data = sample(SAMPLE);
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(20);
    group.bench_function("lossy_utf8", |b| {
        b.iter(|| {
            for chunk in data.chunks(FRAME) {
                black_box(String::from_utf8_lossy(chunk).into_owned());
            }
        })
    });
    let strings: Vec<String> = data
        .chunks(FRAME)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    group.bench_function("json_data_frame", |b| {
        b.iter(|| {
            for s in &strings {
                let msg = PtyServerMsg::Data { data: s.clone() };
                black_box(serde_json::to_string(&msg).ok());
            }
        })
    });
    group.bench_function("lossy_utf8_then_json", |b| {
        b.iter(|| {
            for chunk in data.chunks(FRAME) {
                let msg = PtyServerMsg::Data {
                    data: String::from_utf8_lossy(chunk).into_owned(),
                };
                black_box(serde_json::to_string(&msg).ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse, frame);
criterion_main!(benches);
