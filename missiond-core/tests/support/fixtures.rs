//! The recorded Claude Code sessions of `tests/fixtures` (its own files and its
//! `claude-code-<release>/` directories): one place that knows where they are and how they are
//! laid out, for the tests that replay them. See tests/fixtures/README.md.
// Each test crate that includes this file uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `missiond-core/tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The release directories, `tests/fixtures/claude-code-<release>/`, sorted.
pub fn release_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("claude-code-"))
        })
        .collect();
    dirs.sort();
    dirs
}

/// The files of `dir` ending in `.{extension}`, sorted.
pub fn files_in(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// Every recorded session's output bytes (`*.bin`) of every release, named by path.
pub fn recorded_sessions() -> Vec<(String, Vec<u8>)> {
    let dirs = std::iter::once(fixtures_dir()).chain(release_dirs());
    let sessions: Vec<(String, Vec<u8>)> = dirs
        .flat_map(|dir| files_in(&dir, "bin"))
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read fixture");
            (path.display().to_string(), bytes)
        })
        .collect();
    assert!(
        sessions.len() >= 14,
        "expected the recorded sessions, found {}",
        sessions.len()
    );
    sessions
}
