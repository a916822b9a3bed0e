//! `missiond completions` and `missiond man`: shell completions and manual pages, generated from
//! the same clap definitions that parse the command line, so they cannot fall out of date.

use clap::{Args, CommandFactory};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::client::Failure;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write missiond.1 and one page per verb (missiond-launch.1, …) into DIR instead of
    /// printing missiond(1) on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<ExitCode, Failure> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "missiond", &mut out);
    write_stdout(&out)
}

pub fn man(args: ManArgs) -> Result<ExitCode, Failure> {
    let cmd = crate::Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
            clap_mangen::generate_to(cmd, &dir).map_err(|e| {
                Failure::new(format!(
                    "cannot write manual pages into {}: {e}",
                    dir.display()
                ))
            })?;
            eprintln!(
                "wrote the manual pages into {} (read one with: man -l {}/missiond.1)",
                dir.display(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| Failure::new(format!("cannot render the manual page: {e}")))?;
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode, Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write to stdout: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
