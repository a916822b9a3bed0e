//! A slot's own git worktree: created on a new branch from a base, given the ignored files it
//! needs, measured against its base, shown as a diff, and removed only when nothing would be
//! lost. Everything is done by the `git` command itself, never by reimplementing git.
//!
//! Worktrees live outside the repository, under a root (default
//! `$XDG_DATA_HOME/missiond/worktrees`), grouped by repository:
//! `<root>/<repo name>-<hash of the repo path>/<slot id>`.

pub(crate) mod copy;
mod git;
pub mod tracker;

pub use tracker::Tracker;

use crate::protocol::worktree::{WorktreeSpec, WorktreeStats, DEFAULT_COPY};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest setup command accepted: a command line, not a script file.
const MAX_SETUP: usize = 4096;
/// Largest diff sent to a client; the rest is cut with a note.
pub const MAX_DIFF: usize = 8 * 1024 * 1024;
/// File in the worktree's git directory that says the setup command succeeded there.
const SETUP_DONE: &str = "missiond-setup-done";

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("git is not installed: missiond runs the `git` command for worktrees")]
    NoGit,
    #[error("{0}")]
    Git(String),
    #[error("{0}")]
    Invalid(String),
    /// `what` failed on the file system (the message names the path).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// A slot's worktree as it was created: all a restarted daemon needs to find it again
/// (serializable for the registry of slots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    /// The top of the main checkout the worktree was made from.
    pub repo: PathBuf,
    pub path: PathBuf,
    /// The worktree's own directory inside the repository's `.git` (`.git/worktrees/<name>`).
    pub git_dir: PathBuf,
    pub branch: String,
    pub base: String,
    /// Whether removing the slot may delete the branch: missiond created it (or it is one of
    /// its `missiond/` branches), so it is not somebody's existing branch.
    pub owns_branch: bool,
    /// Where the program starts: the same subdirectory the slot was asked to run in.
    pub cwd: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
}

/// Checks a worktree spec without touching the file system.
pub fn validate_spec(spec: &WorktreeSpec) -> Result<(), String> {
    for (name, value) in [("branch", &spec.branch), ("base", &spec.base)] {
        if let Some(v) = value {
            if v.trim().is_empty() || v.starts_with('-') || v.contains(['\0', '\n']) {
                return Err(format!("worktree {name} {v:?} is not a usable git name"));
            }
        }
    }
    if let Some(setup) = &spec.setup {
        if setup.len() > MAX_SETUP || setup.contains('\0') {
            return Err(format!(
                "worktree setup must be a command line of at most {MAX_SETUP} bytes"
            ));
        }
    }
    if let Some(globs) = &spec.copy {
        copy::check_globs(globs).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `$XDG_DATA_HOME/missiond/worktrees`, else `~/.local/share/missiond/worktrees`.
pub fn default_root() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::config::home_dir().map(|h| h.join(".local").join("share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("missiond").join("worktrees")
}

/// What [`prepare`] did, for the log.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// False when the worktree existed already (a slot created again, or restored).
    pub created: bool,
    /// Ignored files copied from the main checkout.
    pub copied: Vec<String>,
}

/// Creates the worktree of slot `id` for a program asked to run in `cwd` (inside a git
/// repository), or finds it again when it exists: a restored or re-created slot comes back
/// in its worktree with its work. Blocking: runs git.
pub fn prepare(
    id: &str,
    spec: &WorktreeSpec,
    cwd: &Path,
    root: &Path,
) -> Result<(Checkout, Prepared), WorktreeError> {
    validate_spec(spec).map_err(WorktreeError::Invalid)?;
    let top = git::run(cwd, ["rev-parse", "--show-toplevel"])
        .map_err(|e| {
            WorktreeError::Invalid(format!(
                "{} is not in a git repository, so a worktree cannot be made from it ({e})",
                cwd.display()
            ))
        })?
        .trim()
        .to_string();
    let top = PathBuf::from(top);
    let prefix = git::run(cwd, ["rev-parse", "--show-prefix"])?
        .trim()
        .to_string();
    let default_branch = format!("missiond/{id}");
    let branch = spec.branch.clone().unwrap_or(default_branch.clone());
    if !git::succeeds(&top, ["check-ref-format", "--branch", &branch]) {
        return Err(WorktreeError::Invalid(format!(
            "{branch:?} is not a valid branch name"
        )));
    }
    let base = match &spec.base {
        Some(base) => base.clone(),
        None => current_head(&top)?,
    };
    if !git::succeeds(
        &top,
        [
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{base}^{{commit}}"),
        ],
    ) {
        return Err(WorktreeError::Invalid(format!(
            "base {base:?} is not a commit in {}",
            top.display()
        )));
    }
    std::fs::create_dir_all(root).map_err(|e| WorktreeError::Io {
        what: format!("cannot create the worktree root {}", root.display()),
        source: e,
    })?;
    let root = root.canonicalize().map_err(|e| WorktreeError::Io {
        what: format!("worktree root {}", root.display()),
        source: e,
    })?;
    let path = root.join(group_name(&top)).join(id);
    let branch_exists = git::succeeds(
        &top,
        [
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    );
    let mut prepared = Prepared::default();
    if path.symlink_metadata().is_ok() {
        check_existing(&top, &path, &branch)?;
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| WorktreeError::Io {
                what: format!("cannot create {}", parent.display()),
                source: e,
            })?;
        }
        let path_arg = path.as_os_str().to_owned();
        let mut cmd = git::command(&top);
        cmd.args(["worktree", "add", "--quiet"]);
        if branch_exists {
            cmd.arg(&path_arg).arg(&branch);
        } else {
            cmd.args(["-b", &branch]).arg(&path_arg).arg(&base);
        }
        git::output(cmd)?;
        prepared.created = true;
    }
    let git_dir = PathBuf::from(git::run(&path, ["rev-parse", "--absolute-git-dir"])?.trim());
    let checkout = Checkout {
        repo: top.clone(),
        cwd: if prefix.is_empty() {
            path.clone()
        } else {
            path.join(prefix.trim_end_matches('/'))
        },
        path: path.clone(),
        git_dir,
        owns_branch: !branch_exists || branch == default_branch,
        branch,
        base,
        setup: spec.setup.clone().filter(|s| !s.trim().is_empty()),
    };
    if prepared.created {
        let globs = spec
            .copy
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_COPY.to_string()]);
        match copy::copy_ignored(&top, &path, &globs) {
            Ok(copied) => prepared.copied = copied,
            Err(e) => {
                // No half-made worktree: the next try starts from scratch.
                if let Err(undo) = remove(&checkout) {
                    tracing::warn!("cannot undo the worktree {}: {undo}", path.display());
                }
                return Err(e);
            }
        }
    }
    if !checkout.cwd.is_dir() {
        return Err(WorktreeError::Invalid(format!(
            "{} does not exist in the worktree (is {prefix} tracked on {}?)",
            checkout.cwd.display(),
            checkout.base
        )));
    }
    Ok((checkout, prepared))
}

/// The branch checked out in `top`, else the commit (a detached HEAD).
fn current_head(top: &Path) -> Result<String, WorktreeError> {
    if let Ok(branch) = git::run(top, ["symbolic-ref", "--short", "-q", "HEAD"]) {
        let branch = branch.trim();
        if !branch.is_empty() && git::succeeds(top, ["rev-parse", "--verify", "--quiet", "HEAD"]) {
            return Ok(branch.to_string());
        }
    }
    git::run(top, ["rev-parse", "--verify", "HEAD"])
        .map(|s| s.trim().to_string())
        .map_err(|_| {
            WorktreeError::Invalid(format!(
                "{} has no commit yet: commit something before starting worktree slots",
                top.display()
            ))
        })
}

/// An existing directory at the slot's worktree path is reused only if it is that worktree.
fn check_existing(top: &Path, path: &Path, branch: &str) -> Result<(), WorktreeError> {
    let not_ours = |why: &str| {
        WorktreeError::Invalid(format!(
            "{} exists and {why}: remove it or choose another slot id",
            path.display()
        ))
    };
    let own_top = git::run(path, ["rev-parse", "--show-toplevel"]).unwrap_or_default();
    if Path::new(own_top.trim()) != path {
        return Err(not_ours("is not a git worktree"));
    }
    let common = |dir: &Path| {
        git::run(
            dir,
            ["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )
        .map(|s| s.trim().to_string())
    };
    if common(path)? != common(top)? {
        return Err(not_ours(&format!(
            "belongs to another repository than {}",
            top.display()
        )));
    }
    let head = git::run(path, ["symbolic-ref", "--short", "-q", "HEAD"]).unwrap_or_default();
    if head.trim() != branch {
        return Err(not_ours(&format!(
            "is on branch {:?}, not {branch:?}",
            head.trim()
        )));
    }
    Ok(())
}

/// `<repo name>-<8 hex digits of a hash of its path>`: readable, and two repositories of the
/// same name do not share a directory. FNV-1a, because the name must not change between
/// builds (std's hasher may).
fn group_name(top: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in top.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let name = top
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".to_string());
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{:08x}", hash as u32)
}

/// How the worktree differs from its base now. Blocking: runs git.
pub fn status(c: &Checkout) -> Result<WorktreeStats, WorktreeError> {
    let counts = git::run(
        &c.path,
        [
            "rev-list",
            "--left-right",
            "--count",
            &format!("{}...HEAD", c.base),
        ],
    )?;
    let mut numbers = counts
        .split_whitespace()
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let behind = numbers.next().unwrap_or(0);
    let ahead = numbers.next().unwrap_or(0);
    let porcelain = git::run(
        &c.path,
        ["status", "--porcelain=v1", "-z", "--untracked-files=all"],
    )?;
    let dirty_files = count_status_entries(&porcelain);
    let numstat = diff_with_untracked(c, &["--numstat", "-z", "--no-renames"])?;
    let (insertions, deletions) = sum_numstat(&numstat);
    Ok(WorktreeStats {
        ahead,
        behind,
        dirty_files,
        insertions,
        deletions,
    })
}

/// The work of the slot as a patch: from where the branch left the base to the files on disk,
/// untracked files included. Cut at [`MAX_DIFF`] bytes. Blocking: runs git.
pub fn diff(c: &Checkout) -> Result<String, WorktreeError> {
    let mut text = diff_with_untracked(c, &["--no-color", "--no-ext-diff"])?;
    if text.len() > MAX_DIFF {
        let mut cut = MAX_DIFF;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!(
            "\n# missiond: diff cut at {} MiB; see the rest with `git -C {} diff {}`\n",
            MAX_DIFF / (1024 * 1024),
            c.path.display(),
            c.base
        ));
    }
    Ok(text)
}

/// `git diff <merge base> <args>` over the working tree, with untracked files shown as new:
/// they are marked "intent to add" in a throwaway copy of the index, so the worktree's own
/// index and the object store are left as they are.
fn diff_with_untracked(c: &Checkout, args: &[&str]) -> Result<String, WorktreeError> {
    let since = git::run(&c.path, ["merge-base", &c.base, "HEAD"])
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| c.base.clone());
    let index = TempIndex::copy_of(&c.git_dir.join("index"))?;
    let mut add = git::command(&c.path);
    add.env("GIT_INDEX_FILE", &index.0)
        .args(["add", "--all", "--intent-to-add"]);
    git::output(add)?;
    let mut diff = git::command(&c.path);
    diff.env("GIT_INDEX_FILE", &index.0)
        .arg("diff")
        .args(args)
        .arg(&since)
        .arg("--");
    let out = git::output(diff)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A copy of an index file in the temp directory (outside the watched worktree), deleted on drop.
struct TempIndex(PathBuf);

impl TempIndex {
    fn copy_of(index: &Path) -> Result<TempIndex, WorktreeError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "missiond-index-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if index.exists() {
            std::fs::copy(index, &path).map_err(|e| WorktreeError::Io {
                what: format!("cannot copy {}", index.display()),
                source: e,
            })?;
        }
        Ok(TempIndex(path))
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("lock"));
    }
}

/// Entries of `git status --porcelain=v1 -z`; a rename or copy carries its old path as an
/// extra field, which is not a second file.
fn count_status_entries(porcelain: &str) -> u32 {
    let mut fields = porcelain.split('\0').filter(|f| !f.is_empty());
    let mut count = 0;
    while let Some(entry) = fields.next() {
        count += 1;
        if entry.starts_with('R') || entry.starts_with('C') {
            fields.next();
        }
    }
    count
}

/// Sums `git diff --numstat -z`: `added\tdeleted\tpath\0`; binary files count `-` (nothing).
fn sum_numstat(numstat: &str) -> (u64, u64) {
    numstat
        .split('\0')
        .filter_map(|record| {
            let mut parts = record.split('\t');
            let added = parts.next()?.trim().parse::<u64>().ok();
            let deleted = parts.next()?.trim().parse::<u64>().ok();
            Some((added.unwrap_or(0), deleted.unwrap_or(0)))
        })
        .fold((0, 0), |(a, d), (x, y)| (a + x, d + y))
}

/// What removing slot `id` would lose, as a message that says what to do instead; `None`
/// when the worktree holds nothing that exists nowhere else. Blocking: runs git.
pub fn unsaved_work(id: &str, c: &Checkout) -> Option<String> {
    let stats = match status(c) {
        Ok(stats) => stats,
        // A worktree deleted by hand holds nothing more to lose.
        Err(_) if !c.path.exists() => return None,
        Err(e) => {
            return Some(format!(
                "slot '{id}' was not removed: cannot read its worktree {} ({e}); \
                 use --keep-worktree or --discard",
                c.path.display()
            ))
        }
    };
    if !stats.has_unsaved_work() {
        return None;
    }
    let mut what = Vec::new();
    if stats.dirty_files > 0 {
        what.push(format!("{} uncommitted file(s)", stats.dirty_files));
    }
    if stats.ahead > 0 {
        what.push(format!("{} commit(s) not on {}", stats.ahead, c.base));
    }
    Some(format!(
        "slot '{id}' was not removed: its worktree {} (branch {}) has {}. Merge or push the \
         branch, or run `missiond rm {id} --keep-worktree` to remove the slot and keep the \
         worktree, or `missiond rm {id} --discard` to delete the worktree and its branch",
        c.path.display(),
        c.branch,
        what.join(" and ")
    ))
}

/// Removes the worktree (whatever it holds: the caller decided) and, when missiond owns it,
/// its branch. Blocking: runs git.
pub fn remove(c: &Checkout) -> Result<(), WorktreeError> {
    if c.path.exists() {
        let mut cmd = git::command(&c.repo);
        cmd.args(["worktree", "remove", "--force", "--force"])
            .arg(&c.path);
        git::output(cmd)?;
    } else {
        // Deleted by hand: let git forget it, so the branch is free to delete.
        git::run(&c.repo, ["worktree", "prune"])?;
    }
    if c.owns_branch
        && git::succeeds(
            &c.repo,
            [
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{}", c.branch),
            ],
        )
    {
        git::run(&c.repo, ["branch", "-D", &c.branch])?;
    }
    // The repository's group directory goes when its last worktree does.
    if let Some(group) = c.path.parent() {
        let _ = std::fs::remove_dir(group);
    }
    Ok(())
}

/// The program line that runs the setup command in the worktree first, once: on success a
/// marker in the worktree's git directory is left and the program is exec'd (same pid); on
/// failure the slot exits with the setup's status and the program never starts. `None` when
/// the worktree has no setup.
pub fn with_setup(c: &Checkout, command: &str, args: &[String]) -> Option<(String, Vec<String>)> {
    const SCRIPT: &str = r#"marker=$1; setup=$2; shift 2
if [ ! -e "$marker" ]; then
  printf '\033[2m[missiond] setup: %s\033[0m\n' "$setup"
  /bin/sh -c "$setup"
  status=$?
  if [ "$status" -ne 0 ]; then
    printf '\033[31m[missiond] setup failed with status %s; the program was not started\033[0m\n' "$status"
    exit "$status"
  fi
  : > "$marker"
fi
exec "$@""#;
    let setup = c.setup.as_ref()?;
    let mut line = vec![
        "-c".to_string(),
        SCRIPT.to_string(),
        "missiond-setup".to_string(),
        c.git_dir.join(SETUP_DONE).display().to_string(),
        setup.clone(),
        command.to_string(),
    ];
    line.extend(args.iter().cloned());
    Some(("/bin/sh".to_string(), line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_count_files_not_fields() {
        assert_eq!(count_status_entries(""), 0);
        assert_eq!(count_status_entries(" M a.txt\0?? b.txt\0"), 2);
        assert_eq!(count_status_entries("R  new.txt\0old.txt\0 M c\0"), 2);
    }

    #[test]
    fn numstat_sums_lines_and_skips_binaries() {
        assert_eq!(sum_numstat(""), (0, 0));
        assert_eq!(
            sum_numstat("3\t1\ta.txt\x0010\t0\tb.txt\x00-\t-\timg.png\x00"),
            (13, 1)
        );
    }

    #[test]
    fn group_names_are_stable_and_distinct() {
        let a = group_name(Path::new("/home/me/src/app"));
        assert_eq!(a, group_name(Path::new("/home/me/src/app")));
        assert!(a.starts_with("app-") && a.len() == "app-".len() + 8, "{a}");
        assert_ne!(a, group_name(Path::new("/home/you/src/app")));
        assert!(group_name(Path::new("/x/we ird")).starts_with("we_ird-"));
    }

    #[test]
    fn specs_with_unusable_names_are_refused() {
        let bad = WorktreeSpec {
            branch: Some("--force".into()),
            ..WorktreeSpec::default()
        };
        assert!(validate_spec(&bad).is_err());
        assert!(validate_spec(&WorktreeSpec::default()).is_ok());
    }
}
