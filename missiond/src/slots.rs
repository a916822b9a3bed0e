//! The slot verbs: `ls`, `launch`, `kill`, `restart`, `start`, `rm`, `send`, `screen`, `resize`,
//! `prompt`, `confirm`, `wait`, and `token`. Each is one REST call and a printout.

use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use crate::client::{encode, Client, Failure};
use crate::output::{self, print_json};
use crate::{
    ConfirmArgs, ConnArgs, LaunchArgs, PromptArgs, ResizeArgs, ScreenArgs, SendArgs, WaitArgs,
};
use missiond_core::protocol::{
    ConfirmRequest, InputRequest, Meaning, PromptRequest, ResizeRequest, ScreenText, SlotInfo,
    SlotSpec, StateReply,
};

pub fn slot_path(id: &str, rest: &str) -> String {
    format!("/api/slots/{}{rest}", encode(id))
}

/// `missiond token`: the token clients need: MISSIOND_TOKEN, else the token file (created,
/// mode 0600, if this is the first run, so the daemon started later uses the same one).
pub fn token(conn: &ConnArgs) -> Result<ExitCode, Failure> {
    let (token, _source) = missiond_core::config::load_or_create_token()
        .map_err(|e| Failure::new(format!("cannot read or create the access token: {e}")))?;
    if conn.json {
        print_json(&serde_json::json!({ "token": token }));
    } else {
        println!("{token}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ls(client: &Client, conn: &ConnArgs) -> Result<ExitCode, Failure> {
    let slots: Vec<SlotInfo> = client.get("/api/slots").await?;
    if conn.json {
        print_json(&slots);
    } else if slots.is_empty() {
        println!("no slots (create one with `missiond launch ID -- COMMAND`)");
    } else {
        print!("{}", output::slots_table(&slots));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn launch(
    client: &Client,
    conn: &ConnArgs,
    args: LaunchArgs,
) -> Result<ExitCode, Failure> {
    let mut spec = match args.command.split_first() {
        Some((command, rest)) => {
            let mut spec = SlotSpec::new(args.id.clone(), command.clone());
            spec.args = rest.to_vec();
            spec
        }
        None => SlotSpec::new(args.id.clone(), "claude"),
    };
    spec.cwd = Some(resolve_cwd(args.cwd)?);
    if let Some((cols, rows)) = args.size {
        spec.cols = Some(cols);
        spec.rows = Some(rows);
    }
    spec.profile = args.profile;
    spec.env = args.env.into_iter().collect::<BTreeMap<_, _>>();
    if let Some(restart) = args.restart {
        spec.restart = restart;
    }
    spec.autostart = !args.no_start;
    if args.no_hooks {
        spec.hooks = Some(false);
    }
    spec.worktree = args.worktree.spec();
    let info: SlotInfo = client.post("/api/slots", Some(&spec)).await?;
    if conn.json {
        print_json(&info);
    } else {
        println!("launched {}", output::slot_line(&info));
        if let Some(w) = &info.worktree {
            println!(
                "in worktree {} (branch {}, from {})",
                w.path, w.branch, w.base
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The slot's directory as the daemon must see it: relative paths are made absolute here,
/// because the daemon's own working directory is unrelated to the user's shell.
fn resolve_cwd(cwd: Option<std::path::PathBuf>) -> Result<String, Failure> {
    let here = || {
        std::env::current_dir()
            .map_err(|e| Failure::new(format!("cannot read the current directory: {e}")))
    };
    let path = match cwd {
        None => here()?,
        Some(p) if p.is_absolute() || p.starts_with("~") => p,
        Some(p) => here()?.join(p),
    };
    path.into_os_string()
        .into_string()
        .map_err(|p| Failure::new(format!("the directory {p:?} is not valid UTF-8")))
}

#[derive(Debug, Clone, Copy)]
pub enum Action {
    Kill,
    Restart,
    Start,
}

pub async fn lifecycle(
    client: &Client,
    conn: &ConnArgs,
    id: &str,
    action: Action,
) -> Result<ExitCode, Failure> {
    let (path, verb) = match action {
        Action::Kill => ("/kill", "killed"),
        Action::Restart => ("/restart", "restarted"),
        Action::Start => ("/start", "started"),
    };
    let answer: Value = client.post(&slot_path(id, path), None::<&()>).await?;
    if conn.json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    match serde_json::from_value::<SlotInfo>(answer) {
        Ok(info) => println!("{verb} {}", output::slot_line(&info)),
        Err(_) => println!("{verb} {id}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn send(client: &Client, args: SendArgs) -> Result<ExitCode, Failure> {
    let mut data = args.text;
    if args.enter {
        data.push('\r');
    }
    let _: Value = client
        .post(&slot_path(&args.id, "/input"), Some(&InputRequest { data }))
        .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn screen(
    client: &Client,
    conn: &ConnArgs,
    args: ScreenArgs,
) -> Result<ExitCode, Failure> {
    let query = match (args.ansi, args.scrollback) {
        (false, false) => "/screen",
        (true, false) => "/screen?format=ansi",
        (false, true) => "/screen?scrollback=true",
        (true, true) => "/screen?format=ansi&scrollback=true",
    };
    let body = client
        .call_text(Method::GET, &slot_path(&args.id, query), None::<&()>)
        .await?;
    // The daemon answers JSON (ScreenText); should an ANSI screen come as a bare body, print it.
    let screen = serde_json::from_str::<ScreenText>(&body);
    if conn.json {
        match screen {
            Ok(s) => print_json(&s),
            Err(_) => print_json(&serde_json::json!({ "text": body })),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let text = screen.map(|s| s.text).unwrap_or(body);
    let mut stdout = std::io::stdout().lock();
    let mut result = stdout.write_all(text.as_bytes());
    if args.ansi {
        // Leave the user's terminal with plain attributes after a coloured screen.
        result = result.and_then(|_| stdout.write_all(b"\x1b[0m"));
    }
    if !text.ends_with('\n') {
        result = result.and_then(|_| stdout.write_all(b"\n"));
    }
    result
        .and_then(|_| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write the screen: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn resize(
    client: &Client,
    conn: &ConnArgs,
    args: ResizeArgs,
) -> Result<ExitCode, Failure> {
    let (cols, rows) = args.size;
    let answer: Value = client
        .post(
            &slot_path(&args.id, "/resize"),
            Some(&ResizeRequest { cols, rows }),
        )
        .await?;
    if conn.json {
        print_json(&answer);
    } else {
        println!("resized {} to {cols}x{rows}", args.id);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn prompt(
    client: &Client,
    conn: &ConnArgs,
    args: PromptArgs,
) -> Result<ExitCode, Failure> {
    let body = PromptRequest {
        text: args.text,
        wait: args.wait,
        timeout_ms: args.wait.then_some(args.timeout.saturating_mul(1000)),
    };
    let reply: StateReply = client
        .post(&slot_path(&args.id, "/prompt"), Some(&body))
        .await?;
    print_state(conn, &reply);
    Ok(ExitCode::SUCCESS)
}

pub async fn confirm(
    client: &Client,
    conn: &ConnArgs,
    args: ConfirmArgs,
) -> Result<ExitCode, Failure> {
    let answer = [
        (args.yes, Meaning::Yes),
        (args.always, Meaning::Always),
        (args.no, Meaning::No),
    ]
    .into_iter()
    .find_map(|(given, meaning)| given.then_some(meaning));
    let body = ConfirmRequest {
        option: args.option,
        answer,
    };
    let reply: StateReply = client
        .post(&slot_path(&args.id, "/confirm"), Some(&body))
        .await?;
    print_state(conn, &reply);
    Ok(ExitCode::SUCCESS)
}

pub async fn wait(client: &Client, conn: &ConnArgs, args: WaitArgs) -> Result<ExitCode, Failure> {
    let path = slot_path(
        &args.id,
        &format!(
            "/wait?state={}&timeoutMs={}",
            args.state.as_str(),
            args.timeout.saturating_mul(1000)
        ),
    );
    let reply: StateReply = client.get(&path).await?;
    if reply.state == args.state {
        print_state(conn, &reply);
        Ok(ExitCode::SUCCESS)
    } else {
        // The daemon may answer a timeout with the state the slot is in instead of an error.
        Err(Failure::new(format!(
            "timed out after {}s waiting for {} to be {} (it is {})",
            args.timeout,
            args.id,
            args.state.as_str(),
            reply.state.as_str()
        )))
    }
}

fn print_state(conn: &ConnArgs, reply: &StateReply) {
    if conn.json {
        print_json(reply);
    } else {
        println!(
            "{}",
            output::state_text(reply.state.as_str(), &reply.state_detail)
        );
    }
}
