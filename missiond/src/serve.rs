//! `missiond serve`: read the config, apply the command-line overrides, run the daemon.
//! The daemon itself is `missiond_core::server::Daemon`; this is its front door: the token
//! files, the lines printed for the user, logging and the signals that stop it.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::client::Failure;
use missiond_core::config;
use missiond_core::server::{Daemon, DaemonOptions};

pub const AFTER_HELP: &str = "\
The config file is TOML (see examples/missiond.toml): [server] listen, [claude] config_dir and
[[slots]] to create at start. `claude` slots get --session-id and hooks reporting to this daemon
on loopback (docs/CLAUDE-INTEGRATION.md); [claude] hooks = false turns the hooks off. Without --config, ~/.config/missiond/config.toml is read when it
exists, else built-in defaults apply (listen on 127.0.0.1:9120, no slots).

Every route but /health and the viewer needs the access token: MISSIOND_TOKEN, else the token
file created on first start (print it with `missiond token`). Listening on a non-loopback address
is refused unless a token is in force. Log detail: RUST_LOG=missiond=debug.

Examples:
  missiond serve
  missiond serve --config ./missiond.toml
  missiond serve --listen 127.0.0.1:9200
  MISSIOND_TOKEN=$(head -c16 /dev/urandom | xxd -p) missiond serve --listen 0.0.0.0:9120";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (default: ~/.config/missiond/config.toml if it exists).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding the config's [server] listen (e.g. 127.0.0.1:9120).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Set by `missiond upgrade` only: the previous image's handover file.
    #[arg(long, value_name = "PATH", hide = true)]
    pub handover: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> Result<ExitCode, Failure> {
    init_logging();
    let mut config = missiond_core::config::Config::load(args.config.as_deref())
        .map_err(|e| Failure::new(e.to_string()))?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let failure = |e: &dyn std::fmt::Display| Failure::new(e.to_string());
    let (token, token_source) = config::load_or_create_token().map_err(|e| failure(&e))?;
    let options = DaemonOptions {
        token,
        token_source,
        read_only_token: config::load_or_create_read_only_token().map_err(|e| failure(&e))?,
        state_dir: config::state_dir().map_err(|e| failure(&e))?,
        // The daemon starts this same executable as its orphan guard (see `supervisor::guard`)
        // and as Claude Code's hooks and status line (`missiond hook`, `missiond statusline`).
        guard_exe: std::env::current_exe().ok(),
        hook_exe: std::env::current_exe().ok(),
        handover: args.handover,
        owns_process: true,
    };
    let daemon = Daemon::start(config, options)
        .await
        .map_err(|e| failure(&e))?;
    for notice in daemon.notices() {
        eprintln!("missiond: {notice}");
    }
    let local = daemon.local_addr();
    println!("missiond listening on http://{local}");
    println!("viewer: http://{local}/#token={}", daemon.token());
    println!("stop with Ctrl-C; `missiond --help` lists what the CLI can do");
    daemon
        .serve(async {
            shutdown_signal().await;
            eprintln!("missiond: stopping every slot");
        })
        .await
        .map_err(|e| failure(&e))?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT (Ctrl-C) or SIGTERM (systemd, `kill`).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs go to stderr (stdout carries the "listening on" lines); RUST_LOG picks the detail.
///
/// On a terminal they are coloured and timed. Under systemd (stderr is the journal's stream,
/// `JOURNAL_STREAM`) each line starts with its syslog priority (`<4>` for a warning), the form
/// the journal reads levels from, and carries no time or colours of its own: the journal adds
/// the time, and `journalctl -p warning` then works. Elsewhere without a terminal (a pipe, a
/// file) lines are timed and plain.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder
            .with_ansi(false)
            .event_format(JournalFormat::new())
            .try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// A log line as the journal wants it on a service's stderr: `<priority>target: message`.
struct JournalFormat {
    inner: tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Full, ()>,
}

impl JournalFormat {
    fn new() -> Self {
        JournalFormat {
            inner: tracing_subscriber::fmt::format()
                .without_time()
                .with_level(false)
                .with_ansi(false),
        }
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        // sd-daemon(3): 3 err, 4 warning, 6 info, 7 debug.
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            tracing::Level::DEBUG | tracing::Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.inner.format_event(ctx, writer, event)
    }
}
