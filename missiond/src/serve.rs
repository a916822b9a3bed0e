//! `missiond serve`: read the config, apply the command-line overrides, run the daemon.
//! The daemon itself is `missiond_core::server`; this is only its front door.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::client::Failure;
use missiond_core::server::ServeOptions;

pub const AFTER_HELP: &str = "\
The config file is TOML (see examples/missiond.toml): [server] listen, [claude] config_dir and
[[slots]] to create at start. Without --config, ~/.config/missiond/config.toml is read when it
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
    // The daemon starts this same executable as its orphan guard (see `supervisor::guard`).
    let options = ServeOptions {
        guard_exe: std::env::current_exe().ok(),
        handover: args.handover,
    };
    missiond_core::server::serve(config, options)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs go to stderr (stdout carries the "listening on" lines); RUST_LOG picks the detail.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
