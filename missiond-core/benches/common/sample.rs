//! The benchmark data: coloured log-like text.

/// Lines of about 100 visible characters with SGR colour escapes, ending in `eol`.
/// Deterministic. Shared by `missiond-core/benches/hot_path.rs` and `missiond/examples/bench.rs`
/// (included with `#[path]`), so both measure the same bytes.
pub fn sample(len: usize, eol: &[u8]) -> Vec<u8> {
    let words = [
        "supervisor",
        "terminal",
        "viewer",
        "parser",
        "broadcast",
        "snapshot",
        "classifier",
        "slot",
        "frame",
        "latency",
        "throughput",
        "scrollback",
        "cursor",
        "escape",
        "daemon",
        "socket",
    ];
    let mut out = Vec::with_capacity(len + 256);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut line = 0u64;
    while out.len() < len {
        line += 1;
        let mut visible = 0usize;
        out.extend_from_slice(
            format!("\x1b[1;32m{line:08}\x1b[0m \x1b[36mINFO\x1b[0m ").as_bytes(),
        );
        visible += 14;
        while visible < 96 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let word = words[(seed % words.len() as u64) as usize];
            if seed % 5 == 0 {
                out.extend_from_slice(
                    format!("\x1b[38;5;{}m{word}\x1b[0m ", seed % 256).as_bytes(),
                );
            } else {
                out.extend_from_slice(word.as_bytes());
                out.push(b' ');
            }
            visible += word.len() + 1;
        }
        out.extend_from_slice(eol);
    }
    out
}
