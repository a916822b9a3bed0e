//! The worktree side of the CLI: `launch --worktree` flags, `rm --discard|--keep-worktree`
//! and `diff`.

use clap::Args;
use reqwest::Method;
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;

use crate::client::{Client, Failure};
use crate::output::print_json;
use crate::slots::slot_path;
use crate::ConnArgs;
use missiond_core::protocol::worktree::{RemovedSlot, WorktreeSpec};

/// `missiond launch ... --worktree [--branch B] [--base REF] [--copy GLOB] [--setup CMD]`.
#[derive(Debug, Args)]
pub struct WorktreeArgs {
    /// Run in a git worktree of its own on a new branch (--cwd must be in a git repository).
    #[arg(long)]
    pub worktree: bool,
    /// Branch of the worktree (default missiond/ID).
    #[arg(long, value_name = "NAME", requires = "worktree")]
    pub branch: Option<String>,
    /// Where the branch starts and what its work is compared with (default: the repository's
    /// current branch).
    #[arg(long, value_name = "REF", requires = "worktree")]
    pub base: Option<String>,
    /// Ignored files to copy from the main checkout (repeatable; default .env*).
    #[arg(long, value_name = "GLOB", requires = "worktree")]
    pub copy: Vec<String>,
    /// Shell command run once in the new worktree before the program (e.g. 'npm ci').
    #[arg(long, value_name = "COMMAND", requires = "worktree")]
    pub setup: Option<String>,
}

impl WorktreeArgs {
    pub fn spec(&self) -> Option<WorktreeSpec> {
        self.worktree.then(|| WorktreeSpec {
            branch: self.branch.clone(),
            base: self.base.clone(),
            copy: (!self.copy.is_empty()).then(|| self.copy.clone()),
            setup: self.setup.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Slot id.
    pub id: String,
    /// Delete the slot's worktree and branch even with uncommitted changes or unmerged commits.
    #[arg(long, conflicts_with = "keep_worktree")]
    pub discard: bool,
    /// Remove the slot but leave its worktree and branch in place.
    #[arg(long)]
    pub keep_worktree: bool,
}

pub async fn rm(client: &Client, conn: &ConnArgs, args: RmArgs) -> Result<ExitCode, Failure> {
    let query = if args.discard {
        "?worktree=discard"
    } else if args.keep_worktree {
        "?worktree=keep"
    } else {
        ""
    };
    let answer: Value = client
        .call(Method::DELETE, &slot_path(&args.id, query), None::<&()>)
        .await?;
    if conn.json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let worktree = serde_json::from_value::<RemovedSlot>(answer)
        .ok()
        .and_then(|r| r.worktree);
    match worktree {
        None => println!("removed {}", args.id),
        Some(w) if w.kept => println!(
            "removed {}; its worktree stays at {} (branch {})",
            args.id, w.path, w.branch
        ),
        Some(w) => println!(
            "removed {} and its worktree {} (branch {})",
            args.id, w.path, w.branch
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn diff(client: &Client, id: &str) -> Result<ExitCode, Failure> {
    let text = client
        .call_text(Method::GET, &slot_path(id, "/diff"), None::<&()>)
        .await?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write the diff: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
