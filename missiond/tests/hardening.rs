//! What an attack pass on the daemon found (issue 17), each against the real daemon: idle and
//! slow connections, a connection flood under a low fd limit, where `?token=` counts, the
//! `Host` check and the page's CSP.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::daemon::{Daemon, DaemonOptions};

/// The daemon's header-read timeout (`server::connections::HEADER_READ_TIMEOUT`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack on a loaded machine.
const SLACK: Duration = Duration::from_secs(20);

fn addr(d: &Daemon) -> SocketAddr {
    d.url
        .trim_start_matches("http://")
        .parse()
        .expect("daemon url is http://ip:port")
}

/// Reads until the peer closes the connection; returns how long that took, or None if it was
/// still open after `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        let left = limit
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(10));
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            // Reset by the peer: closed too.
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// One HTTP/1.1 request on a fresh connection, `Connection: close`: `(status, head and body)`,
/// or why there was none within `timeout`.
fn request(addr: SocketAddr, head: &str, timeout: Duration) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("no answer within {timeout:?}: {e}"))?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {text:?}"))?;
    Ok((status, text))
}

fn get(addr: SocketAddr, path: &str, host: &str, token: Option<&str>) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    request(addr, &head, Duration::from_secs(30)).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[test]
fn slow_and_idle_connections_are_closed() {
    let d = Daemon::start();
    let addr = addr(&d);
    // One byte of a request, then nothing.
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.write_all(b"G").expect("write");
    // Nothing at all.
    let mut silent = TcpStream::connect(addr).expect("connect");
    // A keep-alive connection that had its answer and then went quiet.
    let mut kept = TcpStream::connect(addr).expect("connect");
    kept.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("write");
    let mut first = [0u8; 12];
    kept.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    kept.read_exact(&mut first).expect("the /health answer");
    assert_eq!(&first, b"HTTP/1.1 200");

    let limit = HEADER_TIMEOUT + SLACK;
    for (what, stream) in [
        ("a connection that sent one byte", &mut slow),
        ("a connection that sent nothing", &mut silent),
        ("an idle keep-alive connection", &mut kept),
    ] {
        let took = closed_within(stream, limit);
        assert!(
            took.is_some(),
            "{what} was still open after {limit:?}; log:\n{}",
            d.log()
        );
    }
}

/// Raises this process's own soft fd limit, so the flood is limited by the daemon's, not ours.
fn raise_own_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

#[test]
fn a_flood_of_idle_connections_does_not_starve_authenticated_clients() {
    const DAEMON_FDS: u64 = 256;
    const FLOOD: usize = 1000;
    let own = raise_own_fd_limit();
    assert!(
        own > FLOOD as u64 + 100,
        "this test needs {FLOOD}+ descriptors, has {own}"
    );
    let d = Daemon::start_with(DaemonOptions {
        fd_limit: Some(DAEMON_FDS),
        ..Default::default()
    });
    let addr = addr(&d);
    let host = addr.to_string();
    // A slot, so the daemon holds a terminal's descriptors too.
    d.cli_ok(&["launch", "cat", "--", "cat"]);

    let started = Instant::now();
    let mut flood = Vec::with_capacity(FLOOD);
    let mut answered = 0;
    for i in 0..FLOOD {
        // The kernel completes the handshake whether or not the daemon accepts: connect is
        // not what can fail here, being served is.
        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Ok(stream) => flood.push(stream),
            Err(e) => panic!("connection {i} of the flood: {e}"),
        }
        // Authenticated calls keep being answered while the flood builds up.
        if i % 100 == 99 {
            let (status, body) = request(
                addr,
                &format!("GET /api/slots HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", d.token),
                Duration::from_secs(15),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "GET /api/slots after {} idle connections: {e}; daemon log:\n{}",
                    i + 1,
                    d.log()
                )
            });
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("\"cat\""), "{body}");
            answered += 1;
        }
    }
    assert_eq!(answered, FLOOD / 100);
    // With every flood connection still open on our side, the daemon answers and stays within
    // its descriptors.
    for _ in 0..10 {
        let (status, _) = get(addr, "/api/slots", &host, Some(&d.token));
        assert_eq!(status, 200);
        let (status, _) = get(addr, "/health", &host, None);
        assert_eq!(status, 200);
    }
    let (fds, _) = support::daemon::open_fds(d.pid);
    assert!(
        (fds as u64) < DAEMON_FDS,
        "the daemon holds {fds} descriptors"
    );
    eprintln!(
        "{FLOOD} idle connections against a daemon limited to {DAEMON_FDS} descriptors: \
         {answered} authenticated calls answered during the flood, {fds} descriptors held \
         afterwards, {:?} in all",
        started.elapsed()
    );
    drop(flood);
}

#[test]
fn query_tokens_count_only_on_websocket_upgrades() {
    let d = Daemon::start();
    let addr = addr(&d);
    let host = addr.to_string();
    for path in ["/api/slots", "/api/tasks"] {
        let (status, body) = get(addr, &format!("{path}?token={}", d.token), &host, None);
        assert_eq!(status, 401, "GET {path}?token=: {body}");
    }
    // A write with the token in the query: refused before it does anything.
    let head = format!(
        "POST /api/slots?token={} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 32\r\nConnection: close\r\n\r\n{{\"id\":\"q\",\"command\":\"cat\"    }}",
        d.token
    );
    let (status, body) = request(addr, &head, Duration::from_secs(30)).expect("POST");
    assert_eq!(status, 401, "{body}");
    assert!(d.slots().is_empty());
    // The WebSocket upgrade still takes it (browsers cannot send headers there).
    let upgrade = format!(
        "GET /events?token={} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        d.token
    );
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(upgrade.as_bytes()).expect("write");
    let mut head = [0u8; 12];
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.read_exact(&mut head).expect("answer");
    assert_eq!(&head, b"HTTP/1.1 101", "{}", String::from_utf8_lossy(&head));
}

#[test]
fn only_the_daemons_own_hosts_are_answered() {
    let d = Daemon::start();
    let addr = addr(&d);
    let port = addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = get(addr, "/api/slots", &host, Some(&d.token));
        assert_eq!(status, 200, "Host {host}: {body}");
    }
    // A rebinding attacker's name: refused on the API, the viewer and /health alike.
    let evil = format!("rebind.attacker.example:{port}");
    for path in ["/api/slots", "/", "/health"] {
        let (status, body) = get(addr, path, &evil, Some(&d.token));
        assert_eq!(status, 403, "GET {path} with Host {evil}: {body}");
        assert!(body.contains("host_forbidden"), "{body}");
    }
}

#[test]
fn the_page_may_open_websockets_to_its_own_origin_only() {
    let d = Daemon::start();
    let addr = addr(&d);
    let (status, text) = get(addr, "/", &addr.to_string(), None);
    assert_eq!(status, 200);
    let csp = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
                .then(|| l.to_string())
        })
        .expect("a CSP header");
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(!csp.contains("ws:") && !csp.contains("wss:"), "{csp}");
}

/// Processes whose command line is exactly `words` (e.g. `sleep 201101`).
fn processes_running(words: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| support::daemon::alive(*pid))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .collect();
            args.join(&b' ') == words.as_bytes()
        })
        .collect()
}

/// A slot running `sh -c script`, created over REST.
fn launch_sh(d: &Daemon, id: &str, script: &str) {
    let spec = serde_json::json!({"id": id, "command": "sh", "args": ["-c", script]});
    let (status, body) = d.http(
        "POST",
        "/api/slots",
        Some(&d.token),
        Some(("application/json", spec.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");
}

fn wait_gone(d: &Daemon, words: &str, within: Duration) {
    let gone = support::daemon::poll(within, || processes_running(words).is_empty().then_some(()));
    assert!(
        gone.is_some(),
        "`{words}` is still running ({:?}) {within:?} later; log:\n{}",
        processes_running(words),
        d.log()
    );
}

/// A `sleep` whose command line no other run of these tests can have: `sleep <tag><daemon pid>`.
fn leftover(d: &Daemon, tag: u32) -> String {
    format!("sleep {tag}{}", d.pid)
}

#[test]
fn what_a_program_leaves_in_its_session_ends_with_it() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "kill_grace_secs = 1".into(),
        ..Default::default()
    });
    let (hup, nohup, term) = (leftover(&d, 71), leftover(&d, 72), leftover(&d, 73));
    // A job that ignores SIGHUP, one started with nohup, one that ignores SIGTERM as well.
    launch_sh(&d, "hup", &format!("trap '' HUP; {hup} & exit 0"));
    launch_sh(&d, "nohup", &format!("nohup {nohup} & exit 0"));
    launch_sh(&d, "term", &format!("trap '' HUP TERM; {term} & exit 0"));
    for id in ["hup", "nohup", "term"] {
        let s = d.wait_slot(id, "exited", |s| s.exit_code.is_some());
        assert_eq!(s.exit_code, Some(0), "{s:?}");
    }
    for words in [&hup, &nohup, &term] {
        wait_gone(&d, words, support::daemon::STEP);
    }
}

#[test]
fn leftovers_do_not_survive_the_daemon() {
    // A long grace: the daemon is stopped while the leftover's grace period still runs.
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "kill_grace_secs = 10".into(),
        ..Default::default()
    });
    let term = leftover(&d, 74);
    launch_sh(&d, "term", &format!("trap '' HUP TERM; {term} & exit 0"));
    d.wait_slot("term", "exited", |s| s.exit_code.is_some());
    let seen = support::daemon::poll(support::daemon::STEP, || {
        (!processes_running(&term).is_empty()).then_some(())
    });
    assert!(seen.is_some(), "`{term}` never ran");
    // SIGTERM; the drop waits for the daemon to exit.
    drop(d);
    let gone = support::daemon::poll(Duration::from_secs(10), || {
        processes_running(&term).is_empty().then_some(())
    });
    assert!(gone.is_some(), "`{term}` outlived the daemon");
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn removed_slots_leave_no_thread_or_descriptor() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "kill_grace_secs = 1".into(),
        ..Default::default()
    });
    // Warm up: the runtime's lazily started threads and descriptors are not the slots'.
    launch_sh(&d, "warm", "exit 0");
    d.wait_slot("warm", "exited", |s| s.exit_code.is_some());
    d.cli_ok(&["rm", "warm"]);
    let settled = || {
        support::daemon::poll(Duration::from_secs(20), || {
            let now = (threads_of(d.pid), support::daemon::open_fds(d.pid).0);
            std::thread::sleep(Duration::from_millis(200));
            (now == (threads_of(d.pid), support::daemon::open_fds(d.pid).0)).then_some(now)
        })
        .expect("the daemon's threads and descriptors settle")
    };
    let (threads, fds) = settled();
    for i in 0..5 {
        let id = format!("left{i}");
        // A child that ignores SIGHUP and holds the terminal open after the program exits.
        let sleep = leftover(&d, 80 + i);
        launch_sh(&d, &id, &format!("trap '' HUP; {sleep} & exit 0"));
    }
    for i in 0..5 {
        let id = format!("left{i}");
        d.wait_slot(&id, "exited", |s| s.exit_code.is_some());
        d.cli_ok(&["rm", &id]);
    }
    assert!(d.slots().is_empty());
    // Idle blocking-pool threads of the runtime linger for 10 s: allow for that.
    let back = support::daemon::poll(Duration::from_secs(40), || {
        let now = (threads_of(d.pid), support::daemon::open_fds(d.pid).0);
        (now.0 <= threads && now.1 <= fds).then_some(now)
    });
    assert!(
        back.is_some(),
        "before: {threads} threads, {fds} descriptors; after removing 5 slots: {} threads, {} descriptors ({:?})",
        threads_of(d.pid),
        support::daemon::open_fds(d.pid).0,
        support::daemon::open_fds(d.pid).1
    );
}

/// Sends `head` and hangs up once `asked` holds, long before the answer could come.
fn abandon(d: &Daemon, head: &str, asked: impl Fn() -> bool) {
    let mut stream = TcpStream::connect(addr(d)).expect("connect");
    stream.write_all(head.as_bytes()).expect("write");
    let seen = support::daemon::poll(support::daemon::STEP, || asked().then_some(()));
    assert!(seen.is_some(), "the request never arrived");
    drop(stream);
}

/// A program that ignores SIGHUP and survives SIGTERM (it says so on its screen).
const STUBBORN: &str =
    "trap 'echo got-term' TERM; trap '' HUP; echo ready; while :; do sleep 1; done";

#[test]
fn an_abandoned_kill_or_delete_runs_to_the_end() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "kill_grace_secs = 2".into(),
        ..Default::default()
    });
    let host = addr(&d).to_string();
    for (id, method, path) in [
        ("k", "POST", "/api/slots/k/kill"),
        ("r", "DELETE", "/api/slots/r"),
    ] {
        launch_sh(&d, id, STUBBORN);
        d.wait_screen(id, "ready", |t| t.contains("ready"));
        let pid = d.slot(id).pid.expect("running");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
            d.token
        );
        // The client hangs up once SIGTERM was delivered, before the grace period ends.
        abandon(&d, &head, || d.screen(id).text.contains("got-term"));
        let dead = support::daemon::poll(support::daemon::STEP, || {
            (!support::daemon::alive(pid)).then_some(())
        });
        assert!(
            dead.is_some(),
            "{method} {path}: the program is still running"
        );
        if method == "DELETE" {
            let removed = support::daemon::poll(support::daemon::STEP, || {
                d.slots().iter().all(|s| s.id != id).then_some(())
            });
            assert!(
                removed.is_some(),
                "{id} is still listed after an abandoned DELETE"
            );
        } else {
            let s = d.wait_slot(id, "exited", |s| s.exit_signal.is_some());
            assert!(s.pid.is_none(), "{s:?}");
        }
    }
}

fn create(d: &Daemon, spec: serde_json::Value) -> (u16, String) {
    d.http(
        "POST",
        "/api/slots",
        Some(&d.token),
        Some(("application/json", spec.to_string().into_bytes())),
    )
}

#[test]
fn a_program_that_cannot_be_executed_is_refused_not_started() {
    let d = Daemon::start();
    // One environment value over the kernel's 128 KiB per string: execve fails with E2BIG.
    let big = "x".repeat(200 * 1024);
    let (status, body) = create(
        &d,
        serde_json::json!({"id": "big", "command": "sh", "args": ["-c", "echo started; sleep 60"], "env": {"BIG": big}}),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("spawn_failed"), "{body}");
    assert!(body.contains("Argument list too long"), "{body}");
    // A script whose interpreter does not exist: it is there and executable, exec still fails.
    let script = d.dir().join("orphan-script");
    std::fs::write(&script, "#!/nonexistent/interpreter\necho hi\n").expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (status, body) = create(
        &d,
        serde_json::json!({"id": "script", "command": script.display().to_string()}),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("No such file or directory"), "{body}");
    // Neither was left behind as a slot.
    assert!(d.slots().is_empty(), "{:?}", d.slots());
    // A program that can be executed still starts.
    let (status, body) = create(
        &d,
        serde_json::json!({"id": "ok", "command": "sh", "args": ["-c", "echo started; sleep 60"], "env": {"SMALL": "x".repeat(100 * 1024)}}),
    );
    assert_eq!(status, 201, "{body}");
    d.wait_screen("ok", "started", |t| t.contains("started"));
}

#[test]
fn bad_working_directories_and_env_keys_are_named() {
    let d = Daemon::start();
    let file = d.dir().join("a-file");
    std::fs::write(&file, "not a directory").expect("file");
    let (status, body) = create(
        &d,
        serde_json::json!({"id": "f", "command": "cat", "cwd": file.display().to_string()}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a directory"), "{body}");
    let missing = d.dir().join("no-such-dir");
    let (status, body) = create(
        &d,
        serde_json::json!({"id": "m", "command": "cat", "cwd": missing.display().to_string()}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not exist"), "{body}");
    for key in ["A=B", ""] {
        let (status, body) = create(
            &d,
            serde_json::json!({"id": "e", "command": "cat", "env": {key: "x"}}),
        );
        assert_eq!(status, 400, "env key {key:?}: {body}");
        assert!(body.contains("invalid env key"), "{body}");
    }
    assert!(d.slots().is_empty(), "{:?}", d.slots());
}

fn task_json(id: &str, subject: &str, description: &str) -> String {
    serde_json::json!({
        "id": id, "subject": subject, "description": description, "status": "pending",
        "blocks": [], "blockedBy": [],
    })
    .to_string()
}

#[test]
fn task_files_outside_the_claude_dir_or_too_large_are_not_served() {
    let d = Daemon::start();
    let tasks = d.dir().join("claude").join("tasks");
    let outside = d.dir().join("outside");
    std::fs::create_dir_all(outside.join("secret-list")).expect("outside dirs");
    std::fs::write(
        outside.join("secret.json"),
        task_json("1", "SECRET-FILE", ""),
    )
    .expect("write");
    std::fs::write(
        outside.join("secret-list").join("1.json"),
        task_json("1", "SECRET-FOLDER", ""),
    )
    .expect("write");
    for list in ["linked-file", "huge", "sparse", "long", "plain"] {
        std::fs::create_dir_all(tasks.join(list)).expect("list dir");
    }
    // A task file and a list folder that are symlinks to places outside the claude dir.
    std::os::unix::fs::symlink(
        outside.join("secret.json"),
        tasks.join("linked-file").join("1.json"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret-list"), tasks.join("linked-folder"))
        .expect("symlink");
    // 10 MB of description; a 1 GiB sparse file; a description over the field cap.
    std::fs::write(
        tasks.join("huge").join("1.json"),
        task_json("1", "HUGE", &"h".repeat(10 << 20)),
    )
    .expect("write");
    std::fs::File::create(tasks.join("sparse").join("1.json"))
        .and_then(|f| f.set_len(1 << 30))
        .expect("sparse file");
    std::fs::write(
        tasks.join("long").join("1.json"),
        task_json("1", "LONG", &"l".repeat(100 * 1024)),
    )
    .expect("write");
    std::fs::write(
        tasks.join("plain").join("1.json"),
        task_json("1", "PLAIN", "an ordinary task"),
    )
    .expect("write");

    let body = support::daemon::poll(support::daemon::STEP, || {
        let (status, body) = d.http("GET", "/api/tasks", Some(&d.token), None);
        (status == 200 && body.contains("PLAIN") && body.contains("LONG")).then_some(body)
    })
    .unwrap_or_else(|| panic!("the ordinary lists never showed; log:\n{}", d.log()));
    // Give the watcher time to have handled every file: the symlinked folder came last.
    let settle = Instant::now() + Duration::from_secs(2);
    let body = support::daemon::poll(support::daemon::STEP, || {
        (Instant::now() >= settle).then(|| d.http("GET", "/api/tasks", Some(&d.token), None).1)
    })
    .unwrap_or(body);
    assert!(
        !body.contains("SECRET-FILE"),
        "a symlinked task file was served"
    );
    assert!(
        !body.contains("SECRET-FOLDER"),
        "a symlinked list folder was served"
    );
    assert!(!body.contains("HUGE"), "a 10 MB task file was served");
    let overview: serde_json::Value = serde_json::from_str(&body).expect("json");
    let long = overview["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|l| l["sessionId"] == "long"))
        .and_then(|l| l["tasks"][0]["description"].as_str())
        .expect("the long task")
        .to_string();
    assert!(long.len() <= 16 * 1024 + 3, "served {} bytes", long.len());
    assert!(long.ends_with('…'));
    assert!(
        body.len() < 256 * 1024,
        "the overview is {} bytes",
        body.len()
    );
    let rss = support::daemon::vm_rss_kib(d.pid);
    assert!(rss < 200 * 1024, "the daemon holds {rss} KiB");
    eprintln!("daemon RSS with a 10 MB and a 1 GiB sparse task file present: {rss} KiB");
}

#[test]
fn a_process_that_left_the_session_does_not_pin_a_removed_slot() {
    let d = Daemon::start_with(DaemonOptions {
        server_toml: "kill_grace_secs = 1".into(),
        ..Default::default()
    });
    launch_sh(&d, "warm", "exit 0");
    d.wait_slot("warm", "exited", |s| s.exit_code.is_some());
    d.cli_ok(&["rm", "warm"]);
    let baseline = support::daemon::poll(Duration::from_secs(20), || {
        let now = (threads_of(d.pid), support::daemon::open_fds(d.pid).0);
        std::thread::sleep(Duration::from_millis(200));
        (now == (threads_of(d.pid), support::daemon::open_fds(d.pid).0)).then_some(now)
    })
    .expect("the daemon's threads and descriptors settle");
    // `setsid` takes the child out of the slot's session: nothing can find it by session, and
    // it keeps the terminal open.
    let escaped = leftover(&d, 90);
    launch_sh(
        &d,
        "escaped",
        &format!("setsid {escaped} & sleep 0.5; exit 0"),
    );
    d.wait_slot("escaped", "exited", |s| s.exit_code.is_some());
    let holder = support::daemon::poll(support::daemon::STEP, || {
        processes_running(&escaped).first().copied()
    })
    .expect("the escaped process runs");
    d.cli_ok(&["rm", "escaped"]);
    let back = support::daemon::poll(Duration::from_secs(40), || {
        let now = (threads_of(d.pid), support::daemon::open_fds(d.pid).0);
        (now.0 <= baseline.0 && now.1 <= baseline.1).then_some(now)
    });
    let after = (threads_of(d.pid), support::daemon::open_fds(d.pid).0);
    // SAFETY: our own test's process, by pid.
    unsafe {
        libc::kill(holder as i32, libc::SIGKILL);
    }
    assert!(
        back.is_some(),
        "before: {baseline:?} (threads, descriptors); after removing the slot: {after:?}"
    );
}
