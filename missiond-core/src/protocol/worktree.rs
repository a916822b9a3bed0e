//! Wire types of slots that run in their own git worktree.

use serde::{Deserialize, Serialize};

/// The ignored files a new worktree gets from the main checkout unless `copy` says otherwise.
pub const DEFAULT_COPY: &str = ".env*";

/// `worktree = { ... }` of a slot spec: run the slot in a git worktree of its own, on a new
/// branch, so several agents on one repository never edit the same files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorktreeSpec {
    /// Branch of the worktree (default `missiond/<slot id>`); an existing branch is checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Where the new branch starts, and what `ahead`, `behind` and the diff compare with
    /// (default: the branch, else the commit, checked out in the repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Globs of files git ignores that are copied from the main checkout (default `.env*`).
    /// A glob without `/` matches a file name at any depth, one with `/` the path from the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<Vec<String>>,
    /// A shell command run in the new worktree before the program, once (e.g. `npm ci`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
}

/// `worktree` of a slot's info: where it is and how far its work has come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeInfo {
    /// The top of the repository's main checkout.
    pub repo: String,
    pub path: String,
    pub branch: String,
    pub base: String,
    #[serde(flatten)]
    pub stats: WorktreeStats,
}

/// How the worktree differs from its base, refreshed when the slot goes idle and when files
/// in the worktree change.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeStats {
    /// Commits on the branch that are not on the base.
    pub ahead: u32,
    /// Commits on the base that are not on the branch.
    pub behind: u32,
    /// Changed, staged or untracked (not ignored) files.
    pub dirty_files: u32,
    /// Lines added and removed since the base, commits and uncommitted edits together.
    pub insertions: u64,
    pub deletions: u64,
}

impl WorktreeStats {
    /// Work that exists only in this worktree: uncommitted changes or commits not on the base.
    pub fn has_unsaved_work(&self) -> bool {
        self.dirty_files > 0 || self.ahead > 0
    }
}

/// What `DELETE /api/slots/{id}?worktree=keep|discard` does with a worktree slot's checkout.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum WorktreeRemoval {
    /// Remove the worktree and its branch when they hold no unsaved work, else refuse.
    #[default]
    Safe,
    /// Remove the worktree and its branch whatever they hold.
    Discard,
    /// Remove the slot and leave the worktree and its branch in place.
    Keep,
}

/// Answer of removing a worktree slot: what became of its worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemovedSlot {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<RemovedWorktree>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemovedWorktree {
    pub path: String,
    pub branch: String,
    /// True when the worktree and branch were left in place (`keep`).
    pub kept: bool,
}
