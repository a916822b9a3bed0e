//! The cwd of a session that has no session file any more.
//!
//! Claude Code removes `sessions/<pid>.json` when it exits, so most task lists on disk belong to
//! sessions without one. Their transcript `<claude dir>/projects/<encoded cwd>/<session id>.jsonl`
//! still names the cwd in its first records. The folder name alone is lossy (every non
//! alphanumeric character became `-`), so the cwd is read from the file: a bounded read of its
//! first lines, once per list.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// How much of a transcript is read looking for a `cwd`.
const HEAD_LIMIT: u64 = 256 * 1024;

/// The project folders, listed once per batch and shared by its lookups.
pub(crate) struct Projects {
    dirs: Option<Vec<PathBuf>>,
    root: PathBuf,
}

impl Projects {
    pub(crate) fn new(root: &Path) -> Projects {
        Projects {
            dirs: None,
            root: root.join("projects"),
        }
    }

    fn dirs(&mut self) -> &[PathBuf] {
        let root = &self.root;
        self.dirs.get_or_insert_with(|| {
            let Ok(rd) = std::fs::read_dir(root) else {
                return Vec::new();
            };
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
    }

    /// The cwd recorded in `session_id`'s transcript, if one is found.
    pub(crate) fn cwd_of(&mut self, session_id: &str) -> Option<String> {
        if session_id.is_empty() || session_id.contains('/') || session_id.starts_with('.') {
            return None;
        }
        let name = format!("{session_id}.jsonl");
        let path = self
            .dirs()
            .iter()
            .map(|d| d.join(&name))
            .find(|p| p.is_file())?;
        read_cwd(&path)
    }
}

fn read_cwd(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let reader = BufReader::new(file.take(HEAD_LIMIT));
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if !line.contains("\"cwd\"") {
            continue;
        }
        // A line cut by the read limit does not parse: that ends the search.
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            break;
        };
        if let Some(cwd) = value.get("cwd").and_then(|c| c.as_str()) {
            return Some(cwd.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cwd_in_transcript() {
        let Ok(tmp) = tempfile::tempdir() else { return };
        let dir = tmp.path().join("projects/-work-my-proj");
        assert!(std::fs::create_dir_all(&dir).is_ok());
        let body = "{\"type\":\"summary\"}\n{\"type\":\"user\",\"cwd\":\"/work/my.proj\",\"sessionId\":\"s1\"}\n";
        assert!(std::fs::write(dir.join("s1.jsonl"), body).is_ok());
        let mut p = Projects::new(tmp.path());
        assert_eq!(p.cwd_of("s1").as_deref(), Some("/work/my.proj"));
        assert_eq!(p.cwd_of("s2"), None);
        assert_eq!(p.cwd_of("../x"), None);
    }
}
