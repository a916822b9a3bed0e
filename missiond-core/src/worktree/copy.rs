//! The files a new worktree needs but git does not carry: ignored files such as `.env`, copied
//! from the main checkout when they match the slot's `copy` globs. Tracked files are never
//! copied (the worktree has them from git, at the base's version).

use super::{git, WorktreeError};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

/// Globs split by what they match: a file name at any depth, or a path from the top.
struct Patterns {
    names: GlobSet,
    paths: GlobSet,
}

impl Patterns {
    fn new(globs: &[String]) -> Result<Patterns, WorktreeError> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for glob in globs {
            let trimmed = glob.trim().trim_start_matches('/');
            if trimmed.is_empty() {
                continue;
            }
            let compiled = GlobBuilder::new(trimmed)
                .literal_separator(true)
                .build()
                .map_err(|e| WorktreeError::Invalid(format!("copy glob {glob:?}: {e}")))?;
            if glob.contains('/') {
                paths.add(compiled);
            } else {
                names.add(compiled);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| WorktreeError::Invalid(format!("copy globs: {e}")))
        };
        Ok(Patterns {
            names: build(names)?,
            paths: build(paths)?,
        })
    }

    fn matches(&self, relative: &str) -> bool {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        self.names.is_match(name) || self.paths.is_match(relative)
    }
}

/// Checks the globs without touching anything (for spec validation).
pub(crate) fn check_globs(globs: &[String]) -> Result<(), WorktreeError> {
    Patterns::new(globs).map(|_| ())
}

/// Copies the ignored files and directories of `from` that match `globs` into `to`; returns
/// the relative paths copied. Git lists an ignored directory as one entry (`node_modules/`),
/// so a glob matches the directory as a whole, not the files inside it.
pub(crate) fn copy_ignored(
    from: &Path,
    to: &Path,
    globs: &[String],
) -> Result<Vec<String>, WorktreeError> {
    let patterns = Patterns::new(globs)?;
    let listing = git::run(
        from,
        [
            "ls-files",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
            "-z",
        ],
    )?;
    let mut copied = Vec::new();
    for entry in listing.split('\0').filter(|e| !e.is_empty()) {
        let relative = entry.trim_end_matches('/');
        if !patterns.matches(relative) {
            continue;
        }
        let target = to.join(relative);
        if target.symlink_metadata().is_ok() {
            continue;
        }
        copy_entry(&from.join(relative), &target).map_err(|e| WorktreeError::Io {
            what: format!("copying {relative} into {}", to.display()),
            source: e,
        })?;
        copied.push(relative.to_string());
    }
    Ok(copied)
}

/// Copies a file, a symlink (as a symlink) or a directory (recursively).
fn copy_entry(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let meta = from.symlink_metadata()?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_entry(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::Patterns;

    #[test]
    fn names_match_at_any_depth_and_paths_from_the_top() {
        let p = Patterns::new(&[".env*".into(), "config/local.toml".into()]).unwrap();
        assert!(p.matches(".env"));
        assert!(p.matches(".env.local"));
        assert!(p.matches("services/api/.env"));
        assert!(p.matches("config/local.toml"));
        assert!(!p.matches("other/config/local.toml"));
        assert!(!p.matches("env"));
        assert!(!p.matches("node_modules"));
    }

    #[test]
    fn a_bad_glob_is_an_error_not_a_panic() {
        assert!(Patterns::new(&["[".into()]).is_err());
    }
}
