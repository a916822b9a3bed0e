//! Worktree slots against real git repositories: each slot in its own worktree and branch,
//! ignored files copied, a setup command before the program, live stats, a diff, and a
//! removal that never throws away unsaved work.

mod support;

use missiond_core::protocol::worktree::WorktreeInfo;
use missiond_core::protocol::{SlotInfo, SlotStatus};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::daemon::Daemon;

/// An identity for commits, in the repository's setup and in slots.
const IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "Test"),
    ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
    ("GIT_COMMITTER_NAME", "Test"),
    ("GIT_COMMITTER_EMAIL", "test@example.invalid"),
];

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .envs(IDENTITY)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository on `main` with a tracked `shared.txt` and `.env.example`, an ignored `.env`
/// and `node_modules/`, and an uncommitted edit of `.env.example` in the main checkout.
fn repository(d: &Daemon) -> PathBuf {
    let repo = d.dir().join("app");
    std::fs::create_dir_all(&repo).expect("repo dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("shared.txt"), "line 1\nline 2\n").expect("write");
    std::fs::write(repo.join(".env.example"), "KEY=example\n").expect("write");
    std::fs::write(repo.join(".gitignore"), ".env\n.env.local\nnode_modules/\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "initial"]);
    std::fs::write(repo.join(".env"), "SECRET=from-main\n").expect("write");
    std::fs::write(repo.join(".env.example"), "KEY=edited-in-main\n").expect("write");
    std::fs::create_dir_all(repo.join("node_modules/dep")).expect("mkdir");
    std::fs::write(repo.join("node_modules/dep/index.js"), "x\n").expect("write");
    repo
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `missiond launch ID --worktree --cwd REPO [extra] -- bash`, with a git identity.
fn launch_shell(d: &Daemon, id: &str, repo: &Path, extra: &[&str]) -> SlotInfo {
    let repo = repo.display().to_string();
    let mut args = vec!["launch", id, "--worktree", "--cwd", &repo];
    let env: Vec<String> = IDENTITY.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in &env {
        args.extend(["--env", pair]);
    }
    args.extend(extra);
    args.extend(["--", "bash", "--norc", "--noprofile"]);
    d.cli_ok(&args);
    d.slot(id)
}

fn worktree(s: &SlotInfo) -> &WorktreeInfo {
    s.worktree
        .as_ref()
        .unwrap_or_else(|| panic!("slot {} has no worktree: {s:?}", s.id))
}

fn run_in(d: &Daemon, id: &str, command: &str) {
    d.cli_ok(&["send", id, "--enter", command]);
}

fn branches(repo: &Path) -> String {
    git(repo, &["branch", "--list", "--format=%(refname:short)"])
}

#[test]
fn two_slots_on_one_repository_change_the_same_file_apart() {
    let d = Daemon::start();
    let repo = repository(&d);
    let a = launch_shell(&d, "a", &repo, &[]);
    let b = launch_shell(&d, "b", &repo, &[]);
    let (wa, wb) = (worktree(&a).clone(), worktree(&b).clone());
    assert_eq!(
        (wa.branch.as_str(), wb.branch.as_str()),
        ("missiond/a", "missiond/b")
    );
    assert_eq!(wa.base, "main");
    assert_ne!(wa.path, wb.path);
    // Outside the repository, in the daemon's data directory, grouped by repository.
    let root = d.dir().join("data/missiond/worktrees");
    for w in [&wa, &wb] {
        let path = Path::new(&w.path);
        assert!(
            path.starts_with(root.canonicalize().expect("root")),
            "{w:?}"
        );
        assert!(path
            .parent()
            .expect("group")
            .file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with("app-"));
    }
    assert_eq!(a.cwd, wa.path, "the program runs in the worktree");

    run_in(&d, "a", "echo from-a >> shared.txt");
    run_in(&d, "b", "echo from-b >> shared.txt");
    for id in ["a", "b"] {
        d.wait_slot(id, "one line added, one dirty file", |s| {
            s.worktree
                .as_ref()
                .is_some_and(|w| w.stats.insertions == 1 && w.stats.dirty_files == 1)
        });
    }
    let in_a = text(&Path::new(&wa.path).join("shared.txt"));
    let in_b = text(&Path::new(&wb.path).join("shared.txt"));
    assert_eq!(in_a, "line 1\nline 2\nfrom-a\n");
    assert_eq!(in_b, "line 1\nline 2\nfrom-b\n");
    assert_eq!(
        text(&repo.join("shared.txt")),
        "line 1\nline 2\n",
        "the main checkout is untouched"
    );
    let listed = branches(&repo);
    assert!(
        listed.contains("missiond/a") && listed.contains("missiond/b"),
        "{listed}"
    );

    // `ls` shows the branch and the diff stat.
    let table = d.cli_ok(&["ls"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("a "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("missiond/a +1 -0"), "{table}");
}

#[test]
fn ignored_env_files_are_copied_and_tracked_files_are_not() {
    let d = Daemon::start();
    let repo = repository(&d);
    let s = launch_shell(&d, "env", &repo, &[]);
    let path = PathBuf::from(&worktree(&s).path);
    assert_eq!(
        text(&path.join(".env")),
        "SECRET=from-main\n",
        "the ignored .env is copied"
    );
    assert_eq!(
        text(&path.join(".env.example")),
        "KEY=example\n",
        "a tracked file comes from git, not from the main checkout's edit"
    );
    assert!(
        !path.join("node_modules").exists(),
        "ignored files not matching the globs stay behind"
    );
    // The copy is not work of the slot: it is ignored, so nothing is dirty.
    assert_eq!(worktree(&s).stats.dirty_files, 0, "{s:?}");

    // Other globs copy other ignored files, and then only those.
    let s = launch_shell(&d, "deps", &repo, &["--copy", "node_modules"]);
    let path = PathBuf::from(&worktree(&s).path);
    assert_eq!(text(&path.join("node_modules/dep/index.js")), "x\n");
    assert!(!path.join(".env").exists());
}

#[test]
fn setup_runs_before_the_program_and_a_failing_setup_is_reported() {
    let d = Daemon::start();
    let repo = repository(&d);
    let repo_arg = repo.display().to_string();
    d.cli_ok(&[
        "launch",
        "ok",
        "--worktree",
        "--cwd",
        &repo_arg,
        "--setup",
        "echo SETUP-OUTPUT; echo prepared > setup.txt",
        "--",
        "sh",
        "-c",
        "echo \"program sees $(cat setup.txt)\"; exec sleep 600",
    ]);
    let screen = d.wait_screen("ok", "the program's line", |t| {
        t.contains("program sees prepared")
    });
    let setup_at = screen
        .find("SETUP-OUTPUT")
        .unwrap_or_else(|| panic!("no setup output:\n{screen}"));
    assert!(
        setup_at < screen.find("program sees").unwrap_or(0),
        "{screen}"
    );
    let s = d.slot("ok");
    assert_eq!(s.status, SlotStatus::Running);
    assert_eq!(s.command, "sh", "the slot still shows its own program");

    d.cli_ok(&[
        "launch",
        "bad",
        "--worktree",
        "--cwd",
        &repo_arg,
        "--setup",
        "echo installing; exit 7",
        "--",
        "sh",
        "-c",
        "echo PROGRAM-STARTED; exec sleep 600",
    ]);
    let s = d.wait_slot("bad", "exited", |s| s.status == SlotStatus::Exited);
    assert_eq!(
        s.exit_code,
        Some(7),
        "the slot exits with the setup's status: {s:?}"
    );
    let screen = d.screen("bad").text;
    assert!(screen.contains("setup failed with status 7"), "{screen}");
    assert!(
        !screen.contains("PROGRAM-STARTED"),
        "the program must not start:\n{screen}"
    );
}

#[test]
fn ahead_dirty_files_and_the_diff_stat_follow_the_slots_work() {
    let d = Daemon::start();
    let repo = repository(&d);
    let s = launch_shell(&d, "w", &repo, &[]);
    let w = worktree(&s);
    assert_eq!(
        (w.stats.ahead, w.stats.behind, w.stats.dirty_files),
        (0, 0, 0),
        "{w:?}"
    );
    assert_eq!((w.stats.insertions, w.stats.deletions), (0, 0), "{w:?}");

    // A new file counts before it is committed.
    run_in(&d, "w", "printf 'one\\ntwo\\n' > new.txt");
    d.wait_slot("w", "1 dirty file, +2", |s| {
        let st = worktree(s).stats;
        st.dirty_files == 1 && st.insertions == 2 && st.ahead == 0
    });
    run_in(&d, "w", "git add new.txt && git commit -qm 'add new.txt'");
    d.wait_slot("w", "1 commit ahead, clean, still +2", |s| {
        let st = worktree(s).stats;
        st.ahead == 1 && st.dirty_files == 0 && st.insertions == 2
    });
    run_in(&d, "w", "sed -i 1d shared.txt");
    let s = d.wait_slot("w", "-1 in a dirty shared.txt", |s| {
        let st = worktree(s).stats;
        st.ahead == 1 && st.dirty_files == 1 && st.insertions == 2 && st.deletions == 1
    });
    assert_eq!(worktree(&s).stats.behind, 0);
    // A change the slot's screen never shows (no state change, no idle) is seen too: the
    // worktree is watched.
    std::fs::write(
        Path::new(&worktree(&s).path).join("outside.txt"),
        "a\nb\nc\n",
    )
    .expect("write");
    d.wait_slot("w", "the file written from outside", |s| {
        let st = worktree(s).stats;
        st.dirty_files == 2 && st.insertions == 5
    });
    std::fs::remove_file(Path::new(&worktree(&s).path).join("outside.txt")).expect("rm");
    d.wait_slot("w", "the file gone again", |s| {
        worktree(s).stats.dirty_files == 1
    });

    let diff = d.cli_ok(&["diff", "w"]);
    assert!(
        diff.contains("+++ b/new.txt") && diff.contains("+one"),
        "{diff}"
    );
    assert!(
        diff.contains("--- a/shared.txt") && diff.contains("-line 1"),
        "{diff}"
    );
    let (status, body) = d.http("GET", "/api/slots/w/diff", Some(&d.token), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, diff);
    // The slot's real index is untouched by the diff of untracked files.
    let staged = git(
        Path::new(&worktree(&s).path),
        &["diff", "--cached", "--name-only"],
    );
    assert_eq!(staged, "");

    // A slot without a worktree has no diff.
    d.cli_ok(&[
        "launch",
        "plain",
        "--cwd",
        &repo.display().to_string(),
        "--",
        "sleep",
        "600",
    ]);
    let (status, body) = d.http("GET", "/api/slots/plain/diff", Some(&d.token), None);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not_a_worktree"), "{body}");
}

#[test]
fn rm_keeps_unsaved_work_unless_told_and_discard_removes_worktree_and_branch() {
    let d = Daemon::start();
    let repo = repository(&d);

    // Clean: removed with its branch, no questions.
    let s = launch_shell(&d, "clean", &repo, &[]);
    let clean_path = PathBuf::from(&worktree(&s).path);
    let out = d.cli_ok(&["rm", "clean"]);
    assert!(out.contains("and its worktree"), "{out}");
    assert!(!clean_path.exists());
    assert!(!branches(&repo).contains("missiond/clean"));

    // Dirty: refused, and nothing happened.
    let s = launch_shell(&d, "dirty", &repo, &[]);
    let path = PathBuf::from(&worktree(&s).path);
    run_in(&d, "dirty", "echo work >> shared.txt");
    d.wait_slot("dirty", "dirty", |s| worktree(s).stats.dirty_files == 1);
    let err = d.cli_err(&["rm", "dirty"]);
    assert!(err.contains("1 uncommitted file"), "{err}");
    assert!(
        err.contains("--discard") && err.contains("--keep-worktree"),
        "{err}"
    );
    assert_eq!(
        d.slot("dirty").status,
        SlotStatus::Running,
        "a refused rm stops nothing"
    );
    assert!(path.join("shared.txt").exists());
    let (status, body) = d.http("DELETE", "/api/slots/dirty", Some(&d.token), None);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("worktree_unsaved"), "{body}");

    // --discard: the worktree and its branch go.
    d.cli_ok(&["rm", "dirty", "--discard"]);
    assert!(!path.exists(), "{} is still there", path.display());
    assert!(
        !branches(&repo).contains("missiond/dirty"),
        "{}",
        branches(&repo)
    );
    assert!(!git(&repo, &["worktree", "list"]).contains(&path.display().to_string()));
    assert!(d.slots().iter().all(|s| s.id != "dirty"));

    // Commits not on the base count as unsaved too; --keep-worktree leaves them in place,
    // and the same slot id comes back in its worktree with its work.
    let s = launch_shell(&d, "kept", &repo, &[]);
    let path = PathBuf::from(&worktree(&s).path);
    run_in(
        &d,
        "kept",
        "echo kept > kept.txt && git add kept.txt && git commit -qm kept",
    );
    d.wait_slot("kept", "a commit ahead", |s| worktree(s).stats.ahead == 1);
    let err = d.cli_err(&["rm", "kept"]);
    assert!(err.contains("1 commit(s) not on main"), "{err}");
    let out = d.cli_ok(&["rm", "kept", "--keep-worktree"]);
    assert!(out.contains("stays at"), "{out}");
    assert!(path.join("kept.txt").exists());
    assert!(branches(&repo).contains("missiond/kept"));
    let s = launch_shell(&d, "kept", &repo, &[]);
    assert_eq!(worktree(&s).path, path.display().to_string());
    assert_eq!(worktree(&s).stats.ahead, 1, "{s:?}");
}

#[test]
fn the_base_moving_on_shows_as_behind() {
    let d = Daemon::start();
    let repo = repository(&d);
    // Not started: nothing runs in the worktree, so only the base's branch can move the stats.
    let s = launch_shell(&d, "idle", &repo, &["--no-start"]);
    assert_eq!(worktree(&s).stats.behind, 0, "{s:?}");
    std::fs::write(repo.join("later.txt"), "later\n").expect("write");
    git(&repo, &["add", "later.txt"]);
    git(&repo, &["commit", "-qm", "later on main"]);
    let s = d.wait_slot("idle", "1 behind main", |s| worktree(s).stats.behind == 1);
    assert_eq!(worktree(&s).stats.ahead, 0);
}

/// Issue 16 with the registry (issue 14): a restored worktree slot comes back in its own
/// worktree, with its uncommitted work, without a new worktree and without its setup again.
#[test]
fn a_restored_slot_comes_back_in_its_worktree() {
    let mut d = Daemon::start();
    let repo = repository(&d);
    let count = d.dir().join("setup-runs");
    let setup = format!("echo ran >> {}", count.display());
    let before = launch_shell(&d, "w", &repo, &["--setup", &setup]);
    let path = worktree(&before).path.clone();
    run_in(&d, "w", "echo unsaved > work.txt && echo wrote-$((6*7))");
    d.wait_screen("w", "the write", |t| t.contains("wrote-42"));
    assert_eq!(text(&count), "ran\n");
    let listed = git(&repo, &["worktree", "list", "--porcelain"]);

    d.kill_hard();
    d.start_again();
    // Restored slots appear while the daemon already answers.
    let after = support::daemon::poll(support::daemon::STEP, || {
        d.slots()
            .into_iter()
            .find(|s| s.id == "w" && s.status == SlotStatus::Running && s.pid != before.pid)
    })
    .unwrap_or_else(|| panic!("w did not come back: {:?}\n{}", d.slots(), d.log()));
    assert_eq!(worktree(&after).path, path, "the same worktree");
    assert_eq!(worktree(&after).branch, "missiond/w");
    assert_eq!(after.cwd, before.cwd, "the program runs in it again");
    assert_eq!(
        git(&repo, &["worktree", "list", "--porcelain"]),
        listed,
        "no worktree was added"
    );
    run_in(&d, "w", "cat work.txt; pwd");
    d.wait_screen("w", "the unsaved work", |t| {
        t.contains("unsaved") && t.contains(&path)
    });
    assert_eq!(text(&count), "ran\n", "the setup ran once");
    assert_eq!(worktree(&d.slot("w")).stats.dirty_files, 1);
}

#[test]
fn a_slot_whose_worktree_is_gone_is_not_restored_and_rm_forgets_it() {
    let mut d = Daemon::start();
    let repo = repository(&d);
    let before = launch_shell(&d, "w", &repo, &[]);
    let path = PathBuf::from(&worktree(&before).path);
    d.kill_hard();
    std::fs::remove_dir_all(&path).expect("remove the worktree");
    d.start_again();
    let said = support::daemon::poll(support::daemon::STEP, || {
        d.log().contains("slot 'w' not restored").then_some(())
    });
    assert!(said.is_some(), "the daemon said nothing:\n{}", d.log());
    assert!(
        d.log()
            .contains(&format!("its worktree {} is gone", path.display())),
        "the message names the missing worktree:\n{}",
        d.log()
    );
    assert!(
        d.slots().iter().all(|s| s.id != "w"),
        "not restored: {:?}",
        d.slots()
    );
    let registry = d.dir().join("state/missiond/slots.json");
    assert!(
        text(&registry).contains("\"w\""),
        "the record is kept until rm"
    );
    d.cli_ok(&["rm", "w"]);
    d.stop();
    assert!(
        !text(&registry).contains("\"w\""),
        "rm forgot the record:\n{}",
        text(&registry)
    );
}
