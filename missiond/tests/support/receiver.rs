//! A real HTTP receiver on 127.0.0.1 for notification tests: it records every request (time,
//! headers, body) and answers 200, or (`Hang`) accepts connections and never answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Answer,
    /// Accept, read nothing, answer nothing: a dead receiver that holds the connection.
    Hang,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    /// Wall clock when it arrived, in milliseconds since the epoch (the daemon's clock too).
    pub at_ms: u64,
    /// Lower-case header names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    accepted: usize,
}

pub struct Receiver {
    pub url: String,
    log: Arc<(Mutex<Log>, Condvar)>,
}

impl Receiver {
    pub fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let log: Arc<(Mutex<Log>, Condvar)> = Arc::default();
        let shared = log.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                {
                    let (lock, cv) = &*shared;
                    lock.lock().unwrap().accepted += 1;
                    cv.notify_all();
                }
                match mode {
                    Mode::Hang => held.push(stream),
                    Mode::Answer => {
                        let shared = shared.clone();
                        std::thread::spawn(move || serve(stream, &shared));
                    }
                }
            }
        });
        Receiver { url, log }
    }

    /// Waits until `n` requests arrived; returns all of them.
    pub fn wait(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let (lock, cv) = &*self.log;
        let deadline = Instant::now() + timeout;
        let mut log = lock.lock().unwrap();
        while log.received.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "the receiver got {} requests, not {n}: {:#?}",
                    log.received.len(),
                    log.received
                );
            }
            log = cv.wait_timeout(log, left).unwrap().0;
        }
        log.received.clone()
    }

    /// Waits until `n` connections were accepted.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) {
        let (lock, cv) = &*self.log;
        let deadline = Instant::now() + timeout;
        let mut log = lock.lock().unwrap();
        while log.accepted < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} connections accepted",
                log.accepted
            );
            log = cv.wait_timeout(log, left).unwrap().0;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.0.lock().unwrap().received.clone()
    }
}

fn serve(stream: TcpStream, log: &(Mutex<Log>, Condvar)) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let at = Instant::now();
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        {
            let (lock, cv) = log;
            lock.lock().unwrap().received.push(Received {
                at,
                at_ms,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            cv.notify_all();
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if reader.get_mut().write_all(answer).is_err() {
            return;
        }
    }
}
