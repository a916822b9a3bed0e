//! `missiond`: the daemon (`missiond serve`) and the command-line client for everything else.
//!
//! This file is only the command line: clap definitions and dispatch. Each verb family lives in
//! its own module: [`serve`] starts the daemon, [`slots`] is the REST verbs, [`attach`] the
//! raw-mode terminal client, [`tasks_cmd`] the task lists; [`client`] talks HTTP/WebSocket and
//! [`output`] draws tables.

mod attach;
mod audit_cmd;
mod client;
mod doctor_cmd;
mod hook_cmd;
mod output;
mod rec_cmd;
mod serve;
mod shell_docs;
mod slots;
mod tasks_cmd;
mod terminal;
mod worktree_cmd;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use client::{Client, Failure};
use missiond_core::protocol::{Profile, RestartPolicy, SemanticState};
use missiond_core::supervisor::guard::GUARD_SUBCOMMAND;

const ROOT_AFTER_HELP: &str = "\
Quick start:
  missiond serve                      start the daemon on 127.0.0.1:9120 (prints the viewer URL)
  missiond launch work -- bash        run bash in a slot named 'work'
  missiond attach work                type into it (Ctrl-] detaches)
  missiond ls                         list slots

Client verbs find the daemon via --url or MISSIOND_URL (default http://127.0.0.1:9120) and the
access token via MISSIOND_TOKEN or the token file the daemon created (see `missiond token`).";

/// Supervisor for AI coding agents (Claude Code or any terminal program) in pseudo-terminals.
#[derive(Debug, Parser)]
#[command(name = "missiond", version = missiond_core::VERSION, after_help = ROOT_AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    verb: Verb,
}

/// Where the daemon is and how to print answers; shared by every client verb.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Base URL of the daemon (default http://127.0.0.1:9120; HOST:PORT also works).
    #[arg(long, global = true, env = "MISSIOND_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Run the daemon in the foreground (until Ctrl-C or SIGTERM).
    #[command(after_help = serve::AFTER_HELP)]
    Serve(serve::ServeArgs),
    /// Replace the running daemon with a new binary; every slot's program runs on.
    #[command(after_help = "\
The daemon checks the new binary, stops reading its slots' terminals at a chunk boundary,
writes their screens and settings to a handover file and executes the new binary in its own
process (same pid), keeping the terminals and the listening socket open. The new daemon
rebuilds each screen and reads on: programs keep their pids, no output or key is lost.
Viewers' connections close and reconnect. A binary that cannot take over is refused and the
running daemon serves on. Linux only.

Examples:
  missiond upgrade                                 the daemon's own path (installed over it)
  missiond upgrade --binary ./target/release/missiond")]
    Upgrade(UpgradeArgs),
    /// List slots: id, process status, semantic state, pid, size, restarts, command.
    #[command(
        visible_alias = "list",
        after_help = "\
Examples:
  missiond ls
  missiond ls --json | jq -r '.[] | select(.state == \"idle\") | .id'"
    )]
    Ls,
    /// Create a slot and start its program (default: claude) in a new pseudo-terminal.
    #[command(after_help = "\
The slot runs in the current directory unless --cwd says otherwise. Everything after `--` is the
command and its arguments.

Examples:
  missiond launch agent1                              claude in the current directory
  missiond launch agent2 --cwd ~/src/app --size 160x50
  missiond launch sh1 -- bash
  missiond launch build --restart on-failure --env RUST_LOG=debug -- cargo watch -x test
  missiond launch reader --profile claude-code -- ./my-claude-wrapper
  missiond launch a1 --worktree --cwd ~/src/app      claude in its own worktree of ~/src/app
  missiond launch a2 --worktree --base main --setup 'npm ci' --cwd ~/src/app

The slot stays listed until `missiond rm`, across daemon restarts too: it is recorded in
$XDG_STATE_HOME/missiond/slots.json and `missiond serve` brings it back (see README,
\"Restarts, crashes and reboots\"). What survives what:
                  program          conversation   screen and scrollback
  daemon stop     started again    resumed        kept, in the scrollback
  daemon crash    started again    resumed        as saved when output last paused
  reboot          started again    resumed        as for a crash (a stop if SIGTERM came first)
  upgrade         runs on (pid)    carries on     the same (`missiond upgrade`)
Claude Code resumes with --resume <its session>; other programs start again with their
command, cwd and env; a slot that had exited stays exited.")]
    Launch(LaunchArgs),
    /// Stop a slot's program: SIGTERM to its process group, SIGKILL after the grace period.
    #[command(after_help = "\
The slot stays listed (status exited) until `missiond rm`; `missiond restart` starts it again.

Examples:
  missiond kill agent1")]
    Kill(IdArg),
    /// Start a slot's program again (stopping it first if it is running).
    #[command(after_help = "Examples:\n  missiond restart agent1")]
    Restart(IdArg),
    /// Start a slot whose program has exited (or was created without autostart).
    #[command(after_help = "Examples:\n  missiond start agent1")]
    Start(IdArg),
    /// Remove a slot: stop its program if it runs, then forget it (and its clean worktree).
    #[command(
        visible_alias = "remove",
        after_help = "\
A worktree slot's worktree and branch are removed with it when they hold nothing that exists
nowhere else. With uncommitted changes or commits not on the base, nothing is removed unless
--keep-worktree (the slot goes, the worktree and branch stay) or --discard (both go) is given.

Examples:
  missiond rm agent1
  missiond rm agent1 --keep-worktree
  missiond rm agent1 --discard"
    )]
    Rm(worktree_cmd::RmArgs),
    /// Print a worktree slot's work as a diff against its base (untracked files included).
    #[command(after_help = "\
Examples:
  missiond diff agent1
  missiond diff agent1 | git apply --stat
  missiond diff agent1 > agent1.patch")]
    Diff(IdArg),
    /// Send raw input to a slot's program, exactly as if typed (no newline unless --enter).
    #[command(after_help = "\
Examples:
  missiond send sh1 --enter 'echo hello'     type a command and press Enter
  missiond send sh1 $'\\x03'                  Ctrl-C
  missiond send agent1 $'\\e'                 Escape")]
    Send(SendArgs),
    /// Print a slot's current screen as text (or with colours and attributes, --ansi).
    #[command(after_help = "\
Examples:
  missiond screen sh1
  missiond screen sh1 --ansi
  missiond screen agent1 --scrollback | grep -n error     what scrolled off the top too
  missiond screen sh1 --json | jq -r .text")]
    Screen(ScreenArgs),
    /// Set a slot's terminal size (the program gets SIGWINCH).
    #[command(after_help = "Examples:\n  missiond resize sh1 80x24")]
    Resize(ResizeArgs),
    /// Print the access token clients need (creating it if it does not exist yet).
    #[command(after_help = "\
The token comes from MISSIOND_TOKEN, else from the token file in the state directory
($XDG_STATE_HOME/missiond/token or ~/.local/state/missiond/token).

Examples:
  missiond token
  curl -H \"Authorization: Bearer $(missiond token)\" http://127.0.0.1:9120/api/slots")]
    Token,
    /// Type a prompt into an idle slot and press Enter; with --wait, wait for the answer.
    #[command(after_help = "\
Refused unless the slot is idle. With --wait, returns when the slot is idle or asks for a
confirmation again, and prints that state.

Examples:
  missiond prompt agent1 'Add a --verbose flag to the CLI'
  missiond prompt agent1 --wait --timeout 600 'Run the tests and fix what fails'")]
    Prompt(PromptArgs),
    /// Answer the dialog a slot is showing (state confirming): option N, or --yes/--always/--no.
    #[command(after_help = "\
Answer by meaning in scripts: option numbers differ between Claude Code releases (\"No\" is 3 in
one release's write dialog and 4 in another's Bash dialog), meanings do not. `missiond ls --json`
or `missiond wait ID --state confirming --json` shows each option's number, label and meaning.

The daemon moves the selection one key at a time and presses Enter only when the screen shows
the asked option selected on the same dialog. If it cannot get there, nothing is submitted, the
dialog stays open and the command fails saying what the screen shows.

Examples:
  missiond confirm agent1 --yes      allow once
  missiond confirm agent1 --no       refuse (Escape when the dialog has no \"No\" option)
  missiond confirm agent1 2          option 2, whatever it says")]
    Confirm(ConfirmArgs),
    /// Block until a slot reaches a state; exit status 0 when it does, 1 on timeout.
    #[command(after_help = "\
Examples:
  missiond wait agent1 --state idle
  missiond wait agent1 --state confirming --timeout 60 && missiond confirm agent1 1
  missiond wait sh1 --state exited")]
    Wait(WaitArgs),
    /// Show Claude Code task lists (per session and slot); --follow streams changes.
    #[command(after_help = "\
Status symbols: ○ pending, ◐ in progress, ● completed.

Examples:
  missiond tasks
  missiond tasks --slot agent1
  missiond tasks --follow
  missiond tasks --follow --json | jq -c 'select(.type == \"cc_task_completed\")'")]
    Tasks(tasks_cmd::TasksArgs),
    /// Attach this terminal to a slot: see its screen, type into it; Ctrl-] detaches.
    #[command(after_help = "\
Every key goes to the program, Ctrl-C included. The detach key (default Ctrl-]) returns to your
shell and leaves the program running. Resizing your terminal resizes the slot (unless
--read-only). The terminal is restored however the session ends (detach, slot exit, daemon gone).
It draws on your terminal's alternate screen, which has no scrollback: to read what scrolled off
the slot's screen, use `missiond screen ID --scrollback`.

Examples:
  missiond attach agent1
  missiond attach agent1 --read-only                  watch only; Ctrl-C or Ctrl-] detaches
  missiond attach agent1 --detach-key ctrl-b")]
    Attach(attach::AttachArgs),
    /// Show the audit trail: who launched, killed, typed into or answered which slot.
    #[command(after_help = "\
Every action that reaches a program or changes a slot is written to audit.jsonl in the daemon's
state directory before it is carried out: who (cli, viewer, rest; remote address, token kind),
what (launch, kill, input, prompt, confirm with the option and the dialog, ...), when (UTC).

Examples:
  missiond audit
  missiond audit --slot agent1 --follow
  missiond audit --json | jq '.[] | select(.action == \"confirm\")'")]
    Audit(audit_cmd::AuditArgs),
    /// Notifications out: `missiond notify test` sends a sample to every [[notify]] receiver.
    #[command(
        subcommand,
        after_help = "\
Receivers are the [[notify]] entries of the daemon's config (docs/AWAY.md).

Examples:
  missiond notify test
  missiond notify test --slot agent1"
    )]
    Notify(audit_cmd::NotifyVerb),
    /// The daemon's view of its setup: Claude Code releases, hooks, status line, drift, rules.
    #[command(after_help = doctor_cmd::AFTER_HELP)]
    Doctor,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  missiond completions bash > ~/.local/share/bash-completion/completions/missiond
  missiond completions zsh > ~/.zfunc/_missiond        (with fpath+=~/.zfunc before compinit)
  missiond completions fish > ~/.config/fish/completions/missiond.fish")]
    Completions(shell_docs::CompletionsArgs),
    /// Print the manual page missiond(1), or write one page per verb with --dir.
    #[command(after_help = "\
Examples:
  missiond man | man -l -
  missiond man --dir ~/.local/share/man/man1          then: man missiond-launch")]
    Man(shell_docs::ManArgs),
    /// Recordings of runs: list them, replay one in the terminal, export it as asciicast.
    #[command(
        subcommand,
        after_help = "\
Every run of a slot is recorded as an asciicast v2 file in the daemon's state directory, with
markers for states, dialogs, answers (and who gave them), prompts and tasks (docs/RECORDINGS.md).
Turn it off with `record = false` on a slot or `[record] enabled = false` in the config.

Examples:
  missiond rec ls                              disk use per slot, totals and limits
  missiond rec ls agent1                       the runs of agent1
  missiond rec play agent1                     replay the latest run (Ctrl-C stops)
  missiond rec play agent1 --run 3 --speed 4 --from dialog
  missiond rec export agent1 --run 3 > run.cast      then: asciinema play run.cast"
    )]
    Rec(rec_cmd::RecVerb),
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Slot id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Slot id: letters, digits, `_` and `-`, at most 64.
    pub id: String,
    /// Working directory of the program (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Terminal size as COLSxROWS.
    #[arg(long, value_name = "COLSxROWS", value_parser = parse_size)]
    pub size: Option<(u16, u16)>,
    /// How the screen is read into states: claude-code or shell (default: from the command).
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    pub profile: Option<Profile>,
    /// Extra environment variable for the program (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// When to start the program again after it ends: never, on-failure or always.
    #[arg(long, value_name = "POLICY", value_parser = parse_restart)]
    pub restart: Option<RestartPolicy>,
    /// Create the slot without starting it (`missiond start ID` starts it).
    #[arg(long)]
    pub no_start: bool,
    /// Add no hooks or status line to Claude Code: the screen alone tells its state.
    #[arg(long)]
    pub no_hooks: bool,
    #[command(flatten)]
    pub worktree: worktree_cmd::WorktreeArgs,
    /// The command and its arguments, after `--` (default: claude).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Slot id.
    pub id: String,
    /// The text to send, byte for byte.
    pub text: String,
    /// Press Enter after the text (appends a carriage return).
    #[arg(long)]
    pub enter: bool,
}

#[derive(Debug, Args)]
pub struct ScreenArgs {
    /// Slot id.
    pub id: String,
    /// Keep colours, attributes and cursor position (ANSI escape sequences).
    #[arg(long)]
    pub ansi: bool,
    /// Print the slot's scrollback (what scrolled off the top) before the screen.
    #[arg(long, short = 's')]
    pub scrollback: bool,
}

#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// Slot id.
    pub id: String,
    /// New size as COLSxROWS, e.g. 120x40.
    #[arg(value_parser = parse_size, value_name = "COLSxROWS")]
    pub size: (u16, u16),
}

#[derive(Debug, Args)]
pub struct PromptArgs {
    /// Slot id.
    pub id: String,
    /// The prompt (multi-line text stays one prompt).
    pub text: String,
    /// Wait until the slot is idle or confirming again, and print that state.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("answer").required(true).args(["option", "yes", "always", "no"]))]
pub struct ConfirmArgs {
    /// Slot id.
    pub id: String,
    /// Option number as shown in the dialog (1 is the first).
    pub option: Option<u32>,
    /// Allow once: the option that means "yes", whatever its number.
    #[arg(long)]
    pub yes: bool,
    /// Allow and stop asking for this kind of action ("Yes, allow all edits…", "don't ask again").
    #[arg(long)]
    pub always: bool,
    /// Refuse: the option that means "no", or Escape where the dialog offers it and no option says no.
    #[arg(long)]
    pub no: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Slot id.
    pub id: String,
    /// The state to wait for: idle, confirming or exited (any state name works).
    #[arg(long, value_parser = parse_state, value_name = "STATE")]
    pub state: SemanticState,
    /// Seconds before giving up.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("'{s}' is not a size; write COLSxROWS, e.g. 120x40");
    let (c, r) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let cols: u16 = c.trim().parse().map_err(|_| bad())?;
    let rows: u16 = r.trim().parse().map_err(|_| bad())?;
    if cols == 0 || rows == 0 {
        return Err(format!("'{s}': columns and rows must be at least 1"));
    }
    Ok((cols, rows))
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    match s {
        "claude-code" | "claude" => Ok(Profile::ClaudeCode),
        "shell" => Ok(Profile::Shell),
        _ => Err(format!("'{s}' is not a profile; use claude-code or shell")),
    }
}

fn parse_restart(s: &str) -> Result<RestartPolicy, String> {
    RestartPolicy::parse(s)
        .ok_or_else(|| format!("'{s}' is not a restart policy; use never, on-failure or always"))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not K=V")),
    }
}

fn parse_state(s: &str) -> Result<SemanticState, String> {
    SemanticState::parse(s).ok_or_else(|| {
        format!(
            "'{s}' is not a state; use idle, confirming, exited (or starting, thinking, \
             tool_running, responding, error)"
        )
    })
}

fn main() -> ExitCode {
    // The daemon's orphan guard is this executable too; it needs no runtime and no parsing.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == GUARD_SUBCOMMAND)
    {
        missiond_core::supervisor::guard::run_guard();
        return ExitCode::SUCCESS;
    }
    // Claude Code's hooks and status line run this executable: hidden, no runtime, exit 0.
    match std::env::args_os().nth(1) {
        Some(a) if a == missiond_core::claude_args::HOOK_SUBCOMMAND => return hook_cmd::hook(),
        Some(a) if a == missiond_core::claude_args::STATUSLINE_SUBCOMMAND => {
            return hook_cmd::statusline()
        }
        _ => {}
    }
    // A daemon about to hand over to this binary asks which handover format it reads.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == missiond_core::server::upgrade_api::HANDOVER_VERSION_SUBCOMMAND)
    {
        println!("{}", missiond_core::supervisor::HANDOVER_VERSION);
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    if !matches!(cli.verb, Verb::Serve(_)) {
        // A client writing into `| head` should end quietly like any Unix tool, not panic.
        // (Sockets are unaffected: Rust sends with MSG_NOSIGNAL. The daemon keeps ignoring it.)
        // SAFETY: restoring the default disposition of SIGPIPE has no memory effects.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("missiond: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // The attach client leaves a thread blocked reading stdin; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("missiond: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let conn = cli.conn;
    match cli.verb {
        Verb::Serve(args) => serve::run(args).await,
        Verb::Token => slots::token(&conn),
        Verb::Completions(a) => shell_docs::completions(a),
        Verb::Man(a) => shell_docs::man(a),
        verb => {
            let client = Client::new(&conn)?;
            match verb {
                Verb::Ls => slots::ls(&client, &conn).await,
                Verb::Launch(a) => slots::launch(&client, &conn, a).await,
                Verb::Kill(a) => slots::lifecycle(&client, &conn, &a.id, slots::Action::Kill).await,
                Verb::Restart(a) => {
                    slots::lifecycle(&client, &conn, &a.id, slots::Action::Restart).await
                }
                Verb::Start(a) => {
                    slots::lifecycle(&client, &conn, &a.id, slots::Action::Start).await
                }
                Verb::Rm(a) => worktree_cmd::rm(&client, &conn, a).await,
                Verb::Diff(a) => worktree_cmd::diff(&client, &a.id).await,
                Verb::Send(a) => slots::send(&client, a).await,
                Verb::Screen(a) => slots::screen(&client, &conn, a).await,
                Verb::Resize(a) => slots::resize(&client, &conn, a).await,
                Verb::Prompt(a) => slots::prompt(&client, &conn, a).await,
                Verb::Confirm(a) => slots::confirm(&client, &conn, a).await,
                Verb::Wait(a) => slots::wait(&client, &conn, a).await,
                Verb::Tasks(a) => tasks_cmd::run(&client, &conn, a).await,
                Verb::Attach(a) => attach::run(&client, a).await,
                Verb::Audit(a) => audit_cmd::audit(&client, &conn, a).await,
                Verb::Notify(v) => audit_cmd::notify(&client, &conn, v).await,
                Verb::Rec(v) => rec_cmd::run(&client, &conn, v).await,
                Verb::Upgrade(a) => upgrade(&client, a).await,
                Verb::Doctor => doctor_cmd::run(&client, &conn).await,
                Verb::Serve(_) | Verb::Token | Verb::Completions(_) | Verb::Man(_) => {
                    unreachable_verb()
                }
            }
        }
    }
}

/// `missiond upgrade`: the daemon executes the new binary, its slots running on.
async fn upgrade(client: &Client, args: UpgradeArgs) -> Result<ExitCode, Failure> {
    let binary = match args.binary {
        Some(path) => Some(
            std::fs::canonicalize(&path)
                .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    client
        .upgrade(&serde_json::json!({ "binary": binary }))
        .await?;
    println!("upgraded: the daemon runs the new binary, every slot's program ran on");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
struct UpgradeArgs {
    /// The new missiond binary (default: the daemon's own executable, e.g. installed over it).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
}

/// Serve, Token, Completions and Man are dispatched before a client is built; this arm only satisfies the match.
fn unreachable_verb() -> Result<ExitCode, Failure> {
    Err(Failure::new("internal error: verb dispatched twice"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("120x40"), Ok((120, 40)));
        assert_eq!(parse_size("80X20"), Ok((80, 20)));
        assert!(parse_size("80").is_err());
        assert!(parse_size("0x20").is_err());
        assert!(parse_size("axb").is_err());
    }

    #[test]
    fn env_pairs_parse() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }

    #[test]
    fn launch_takes_command_after_double_dash() {
        let cli = Cli::try_parse_from([
            "missiond", "launch", "a", "--size", "80x20", "--", "bash", "-l",
        ])
        .map_err(|e| e.to_string());
        let Ok(Cli {
            verb: Verb::Launch(args),
            ..
        }) = cli
        else {
            panic!("launch did not parse: {cli:?}");
        };
        assert_eq!(args.command, vec!["bash".to_string(), "-l".to_string()]);
        assert_eq!(args.size, Some((80, 20)));
    }
}
