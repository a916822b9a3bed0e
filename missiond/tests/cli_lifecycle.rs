//! Process lifecycle through the CLI: kill with grace, no zombies or leaked descriptors,
//! restart policies with backoff, and no slot outliving a daemon killed with SIGKILL.

mod support;

use std::time::{Duration, Instant};

use missiond_core::protocol::{SlotInfo, SlotStatus};
use support::daemon::{
    alive, open_fds, poll, process_tree, zombie_children, Daemon, DaemonOptions, STEP,
};

/// Ignores every polite signal the daemon sends, and so do its two children (an ignored
/// disposition survives fork and exec): only SIGKILL ends this group.
const STUBBORN: &str = "trap '' TERM HUP INT; sleep 1000 & sleep 1000 & wait";

/// Waits until `pid` has `n` living descendants, then returns the whole tree.
fn tree_with(pid: u32, n: usize) -> Vec<u32> {
    poll(STEP, || {
        let tree = process_tree(pid);
        (tree.len() > n).then_some(tree)
    })
    .unwrap_or_else(|| panic!("pid {pid} never had {n} children: {:?}", process_tree(pid)))
}

#[test]
fn kill_ends_a_program_ignoring_sigterm_and_its_children_within_the_grace_period() {
    let grace = Duration::from_secs(2);
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "kill_grace_secs = 2".into(),
        ..Default::default()
    });
    d.cli_ok(&["launch", "stubborn", "--", "bash", "-c", STUBBORN]);
    let pid = d
        .wait_slot("stubborn", "running with a pid", |s| s.pid.is_some())
        .pid
        .unwrap_or(0);
    let tree = tree_with(pid, 2);

    let started = Instant::now();
    let out = d.cli_ok(&["kill", "stubborn"]);
    let gone = poll(grace + Duration::from_secs(1), || {
        let left: Vec<u32> = tree.iter().copied().filter(|p| alive(*p)).collect();
        left.is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "still alive {:?} after {:?} (grace {grace:?}): {:?}",
        started.elapsed(),
        tree.iter().filter(|p| alive(**p)).collect::<Vec<_>>(),
        out
    );

    let info = d.slot("stubborn");
    assert_eq!(info.status, SlotStatus::Exited);
    assert!(info.pid.is_none(), "{info:?}");
    assert!(
        info.exit_signal.is_some() || info.exit_code.is_some(),
        "no exit status: {info:?}"
    );
    assert!(
        out.contains("exited("),
        "kill did not report the exit: {out}"
    );
    assert!(
        zombie_children(d.pid).is_empty(),
        "zombies: {:?}",
        zombie_children(d.pid)
    );
}

#[test]
fn a_hundred_launch_kill_cycles_leave_no_zombie_and_no_leaked_fd() {
    let d = Daemon::start();
    let cycle = |id: &str| {
        d.cli_ok(&["launch", id, "--", "sleep", "1000"]);
        d.cli_ok(&["kill", id]);
        d.cli_ok(&["rm", id]);
    };
    // One warm-up cycle, so lazily created descriptors (runtime, watchers) are in the baseline.
    cycle("warmup");
    let stable_fds = || {
        poll(STEP, || {
            let a = open_fds(d.pid).0;
            std::thread::sleep(Duration::from_millis(200));
            let b = open_fds(d.pid).0;
            (a == b).then_some(b)
        })
        .expect("the daemon's descriptor count never settled")
    };
    let baseline = stable_fds();
    let baseline_list = open_fds(d.pid).1;

    for i in 0..100 {
        cycle(&format!("c{i}"));
    }

    assert!(d.slots().is_empty(), "slots left: {:?}", d.slots());
    let zombies_gone = poll(STEP, || zombie_children(d.pid).is_empty().then_some(()));
    assert!(
        zombies_gone.is_some(),
        "zombie children of the daemon: {:?}",
        zombie_children(d.pid)
    );
    let settled = poll(STEP, || (open_fds(d.pid).0 <= baseline).then_some(()));
    assert!(
        settled.is_some(),
        "descriptors grew from {baseline} to {}:\nbefore: {baseline_list:?}\nafter: {:?}",
        open_fds(d.pid).0,
        open_fds(d.pid).1
    );
}

#[test]
fn on_failure_restarts_with_growing_delays_and_never_does_not() {
    let d = Daemon::start();
    let launch = |id: &str, policy: &str| -> SlotInfo {
        let out = d.cli_ok(&[
            "launch",
            id,
            "--restart",
            policy,
            "--json",
            "--",
            "sh",
            "-c",
            "exit 3",
        ]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("launch --json: {e}\n{out}"))
    };
    let never = launch("never", "never");
    let flaky = launch("flaky", "on-failure");

    // startedAt of each run of the flaky slot, indexed by its restart count.
    let mut starts: Vec<Option<u64>> = vec![flaky.started_at, None, None, None];
    let seen_all = poll(Duration::from_secs(60), || {
        let s = d.slot("flaky");
        let n = s.restarts as usize;
        if n < starts.len() && starts[n].is_none() {
            starts[n] = s.started_at;
        }
        starts.iter().all(Option::is_some).then_some(())
    });
    assert!(
        seen_all.is_some(),
        "flaky did not restart 3 times: {starts:?}; now {:?}",
        d.slot("flaky")
    );
    let t: Vec<u64> = starts.iter().map(|s| s.unwrap_or(0)).collect();
    let gaps: Vec<u64> = t.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "delays between restarts do not grow: {gaps:?} ms"
    );
    assert!(
        gaps[0] >= 900,
        "the first restart came too early: {gaps:?} ms"
    );

    // Three restarts of `flaky` took seconds: `never`, which exited at the same time, stayed down.
    let n = d.slot("never");
    assert_eq!(n.status, SlotStatus::Exited, "{n:?}");
    assert_eq!(n.restarts, 0, "{n:?}");
    assert_eq!(n.exit_code, Some(3), "{n:?}");
    assert_eq!(n.started_at, never.started_at, "{n:?}");
}

#[test]
fn sigkill_of_the_daemon_ends_its_slots_within_five_seconds() {
    let mut d = Daemon::start();
    d.cli_ok(&["launch", "plain", "--", "sleep", "1000"]);
    d.cli_ok(&["launch", "stubborn", "--", "bash", "-c", STUBBORN]);
    let plain = d
        .wait_slot("plain", "running", |s| s.pid.is_some())
        .pid
        .unwrap_or(0);
    let stubborn = d
        .wait_slot("stubborn", "running", |s| s.pid.is_some())
        .pid
        .unwrap_or(0);
    let mut pids = tree_with(stubborn, 2);
    pids.push(plain);
    assert!(pids.iter().all(|p| alive(*p)));

    let killed = Instant::now();
    d.kill_hard();
    let gone = poll(Duration::from_secs(5), || {
        pids.iter().all(|p| !alive(*p)).then_some(())
    });
    assert!(
        gone.is_some(),
        "alive {:?} after the daemon's SIGKILL: {:?}",
        killed.elapsed(),
        pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
}
