//! The accept loop. A flood of idle connections must not starve the clients that hold the
//! token, so (unlike `axum::serve`):
//!
//! - a request's headers must arrive within [`HEADER_READ_TIMEOUT`]; hyper restarts that timer
//!   whenever a connection waits for its next request, so it also ends idle keep-alives;
//! - connections that have not yet shown a valid token are capped (see
//!   [`max_unauthenticated`]); past the cap the oldest of them is closed, never the new one,
//!   so a client that connects and sends its token right away is served;
//! - the soft limit on open files is raised to the hard limit at start
//!   ([`raise_fd_limit`]), and a failed `accept` (out of descriptors) is retried quietly.
//!
//! The token check marks a connection authenticated through the [`Connection`] handle that
//! every request carries in its extensions.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower_service::Service;

/// A request's headers must be complete this long after the connection began waiting for
/// them (after accepting, or after the previous response on a keep-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound of the unauthenticated connections kept open at once.
pub const MAX_UNAUTHENTICATED: usize = 512;
/// On shutdown, requests in flight get this long to finish.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// After a failed `accept`, wait this long before the next (descriptors may be exhausted).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// At most one log line per this period about failing `accept`s.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft limit on open files to the hard limit; returns the soft limit in force.
/// Slot programs get the original soft limit back (`pty::set_child_fd_limit`).
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    crate::pty::set_child_fd_limit(limit.rlim_cur);
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    limit.rlim_cur
}

/// How many connections without a token to keep: a quarter of the descriptors (the rest are
/// for slots, viewers and authenticated clients), at least 16, at most [`MAX_UNAUTHENTICATED`].
pub fn max_unauthenticated(fd_limit: u64) -> usize {
    (fd_limit / 4).clamp(16, MAX_UNAUTHENTICATED as u64) as usize
}

/// One accepted connection, as seen by the requests it carries.
#[derive(Clone)]
pub struct Connection(Arc<Entry>);

struct Entry {
    id: u64,
    registry: Weak<Registry>,
    authenticated: AtomicBool,
    /// Notified when the connection is evicted to make room for a newer one.
    evict: Notify,
}

impl Connection {
    /// A request on this connection showed a valid token: it no longer counts against the cap.
    pub fn authenticated(&self) {
        if !self.0.authenticated.swap(true, Ordering::AcqRel) {
            if let Some(registry) = self.0.registry.upgrade() {
                registry.forget(self.0.id);
            }
        }
    }
}

/// The unauthenticated connections, oldest first.
struct Registry {
    unauthenticated: Mutex<BTreeMap<u64, Arc<Entry>>>,
    max: usize,
    next_id: AtomicU64,
}

impl Registry {
    fn register(self: &Arc<Self>) -> Connection {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry {
            id,
            registry: Arc::downgrade(self),
            authenticated: AtomicBool::new(false),
            evict: Notify::new(),
        });
        let evicted = {
            let mut open = crate::supervisor::lock(&self.unauthenticated);
            open.insert(id, entry.clone());
            if open.len() > self.max {
                open.pop_first().map(|(_, oldest)| oldest)
            } else {
                None
            }
        };
        if let Some(oldest) = evicted {
            // notify_one keeps the permit if the connection's task is not waiting yet.
            oldest.evict.notify_one();
        }
        Connection(entry)
    }

    fn forget(&self, id: u64) {
        crate::supervisor::lock(&self.unauthenticated).remove(&id);
    }
}

/// Takes a connection off the registry when its task ends, however it ends.
struct Registered(Connection);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(registry) = self.0 .0.registry.upgrade() {
            registry.forget(self.0 .0.id);
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// (for at most [`SHUTDOWN_WAIT`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_unauthenticated: usize,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry {
        unauthenticated: Mutex::new(BTreeMap::new()),
        max: max_unauthenticated.max(1),
        next_id: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut last_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                // Keystroke echo must not wait on Nagle.
                let _ = tcp.set_nodelay(true);
                let connection = registry.register();
                tokio::spawn(serve_connection(
                    tcp,
                    peer,
                    app.clone(),
                    connection,
                    stop_rx.clone(),
                ));
            }
            Err(e) => {
                if last_logged.is_none_or(|at| at.elapsed() >= ACCEPT_LOG_EVERY) {
                    tracing::warn!("accept error: {e} (retrying; logged once per 10 s)");
                    last_logged = Some(Instant::now());
                }
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_WAIT, stop_tx.closed()).await;
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    app: Router,
    connection: Connection,
    mut stop: watch::Receiver<bool>,
) {
    let registered = Registered(connection.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(connection.clone());
        // The peer address, for handlers that record who acted (the audit trail).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let mut app = app.clone();
        async move { app.call(req).await }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let serving = http
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(serving);
    tokio::select! {
        result = serving.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection ended: {e}");
            }
        }
        // Dropping the connection closes its socket.
        _ = registered.0 .0.evict.notified() => {
            tracing::debug!("closed an unauthenticated connection to make room for a newer one");
        }
        _ = async { stop.wait_for(|stop| *stop).await.is_ok() } => {
            serving.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, serving).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_follows_the_fd_limit() {
        assert_eq!(max_unauthenticated(256), 64);
        assert_eq!(max_unauthenticated(20), 16);
        assert_eq!(max_unauthenticated(1 << 20), MAX_UNAUTHENTICATED);
    }

    #[test]
    fn the_oldest_unauthenticated_connection_is_evicted() {
        let registry = Arc::new(Registry {
            unauthenticated: Mutex::new(BTreeMap::new()),
            max: 2,
            next_id: AtomicU64::new(0),
        });
        let _first = registry.register();
        let second = registry.register();
        second.authenticated();
        let _third = registry.register();
        let _fourth = registry.register();
        let open: Vec<u64> = registry
            .unauthenticated
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        assert_eq!(
            open,
            vec![2, 3],
            "the first was evicted, the second authenticated"
        );
    }
}
