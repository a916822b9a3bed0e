//! What users expect around a daemon: shell completions and manual pages generated from the
//! command line's own definitions, and logs in the journal's form under systemd.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::daemon::{isolate, BIN, STEP};

/// Every verb a user types, as listed by `missiond --help`.
const VERBS: &[&str] = &[
    "serve",
    "ls",
    "launch",
    "kill",
    "restart",
    "start",
    "rm",
    "diff",
    "send",
    "screen",
    "resize",
    "token",
    "prompt",
    "confirm",
    "wait",
    "tasks",
    "attach",
    "audit",
    "notify",
    "completions",
    "man",
];

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run missiond");
    assert!(
        out.status.success(),
        "missiond {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn bash_completion_loads_in_bash_and_completes_verbs_and_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("missiond.bash");
    std::fs::write(&script, run(&["completions", "bash"])).expect("write script");
    // Load the script into a real bash and ask it for completions, as Tab would.
    let probe = format!(
        r#"source '{}' || exit 9
complete -p missiond || exit 8
COMP_WORDS=(missiond la); COMP_CWORD=1; COMP_LINE='missiond la'; COMP_POINT=${{#COMP_LINE}}
_missiond missiond la missiond; echo "verbs: ${{COMPREPLY[*]}}"
COMP_WORDS=(missiond launch x --w); COMP_CWORD=3; COMP_LINE='missiond launch x --w'; COMP_POINT=${{#COMP_LINE}}
_missiond missiond --w x; echo "options: ${{COMPREPLY[*]}}""#,
        script.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bash rejected the script: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verbs: launch"), "{stdout}");
    assert!(stdout.contains("--worktree"), "{stdout}");
}

#[test]
fn zsh_and_fish_completions_name_every_verb() {
    let zsh = run(&["completions", "zsh"]);
    assert!(
        zsh.starts_with("#compdef missiond"),
        "{}",
        &zsh[..zsh.len().min(200)]
    );
    let fish = run(&["completions", "fish"]);
    for verb in VERBS {
        assert!(zsh.contains(&format!("'{verb}:")), "zsh lacks {verb}");
        assert!(
            fish.contains(&format!("-a \"{verb}\"")),
            "fish lacks {verb}"
        );
    }
    let bad = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .expect("run missiond");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bash"));
}

#[test]
fn manual_pages_cover_every_verb() {
    let page = run(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH missiond 1"),
        "{page}"
    );
    for verb in VERBS {
        assert!(
            page.contains(&format!("missiond\\-{verb}(1)")) || page.contains(verb),
            "{verb}"
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("man1");
    let status = Command::new(BIN)
        .args(["man", "--dir"])
        .arg(&out)
        .status()
        .expect("run missiond");
    assert!(status.success());
    for verb in VERBS {
        let path = out.join(format!("missiond-{verb}.1"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(text.contains(".TH missiond-"), "{path:?} is not a man page");
    }
    let launch = std::fs::read_to_string(out.join("missiond-launch.1")).expect("launch page");
    assert!(
        launch.contains("worktree"),
        "the launch page lacks its options"
    );
    // Hidden plumbing (the orphan guard) gets no page.
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("list pages")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(names.iter().all(|n| !n.contains("guard")), "{names:?}");
}

/// Starts `missiond serve` with a rule file that cannot be read (a logged warning), stops it,
/// and returns what it wrote on stderr.
fn serve_log(journal: bool) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(rules.join("shell.toml"), "this is not toml [").expect("rule file");
    let config = dir.path().join("missiond.toml");
    std::fs::write(
        &config,
        format!(
            "[semantic]\nrules_dir = {:?}\n",
            rules.display().to_string()
        ),
    )
    .expect("config");
    let log = dir.path().join("stderr.log");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config);
    isolate(&mut cmd, dir.path());
    cmd.env("MISSIOND_TOKEN", "toolbox-test")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"));
    if journal {
        cmd.env("JOURNAL_STREAM", "8:12345");
    }
    let mut child = cmd.spawn().expect("spawn missiond serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("missiond listening on ") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(STEP).expect("the daemon started");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().expect("daemon ended");
    std::fs::read_to_string(&log).expect("read log")
}

#[test]
fn under_systemd_log_lines_carry_the_journal_priority_and_no_time_or_colour() {
    let journal = serve_log(true);
    let warning = journal
        .lines()
        .find(|l| l.contains("shell.toml"))
        .unwrap_or_else(|| panic!("no warning about the rule file:\n{journal}"));
    assert!(warning.starts_with("<4>"), "{warning}");
    assert!(
        !journal.contains('\x1b'),
        "colour codes in the journal:\n{journal}"
    );
    for line in journal.lines().filter(|l| !l.starts_with("missiond: ")) {
        assert!(
            line.starts_with('<') && line.as_bytes().get(2) == Some(&b'>'),
            "a line without its priority: {line}"
        );
    }

    // The same warning into a plain file: timed, no priority, no colour.
    let plain = serve_log(false);
    let warning = plain
        .lines()
        .find(|l| l.contains("shell.toml") && !l.starts_with("missiond: "))
        .unwrap_or_else(|| panic!("no warning about the rule file:\n{plain}"));
    assert!(!warning.starts_with('<'), "{warning}");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.starts_with("20"), "no time stamp: {warning}");
    assert!(!plain.contains('\x1b'), "colour codes in a file:\n{plain}");
}
