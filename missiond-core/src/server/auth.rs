//! Who may talk to the daemon: the token on every route but `/health` and the static viewer,
//! the `Origin` of every WebSocket upgrade (cross-site WebSocket hijacking would let any
//! web page type into a terminal), and the `Host` of every request (DNS rebinding would let
//! a web page on a name that resolves to 127.0.0.1 read the API as same-origin).

use super::error::ApiError;
use super::AppState;
use crate::protocol::codes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What a request may do once its token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Full,
    /// The read-only token: may watch, never type, launch or kill.
    ReadOnly,
}

/// Middleware: rejects requests without a valid token (401) before any handler or upgrade.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    // `?token=` only where a browser cannot send a header: WebSocket upgrades. Elsewhere it
    // would end up in histories, logs and Referer headers.
    let presented = bearer(req.headers()).or_else(|| {
        is_websocket_upgrade(req.headers())
            .then(|| query_token(req.uri()))
            .flatten()
    });
    let access = match presented {
        Some(t) if constant_time_eq(t.as_bytes(), state.token.as_bytes()) => Access::Full,
        Some(t) if constant_time_eq(t.as_bytes(), state.read_only_token.as_bytes()) => {
            Access::ReadOnly
        }
        _ => return ApiError::unauthorized().into_response(),
    };
    if access == Access::ReadOnly && req.method() != axum::http::Method::GET {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            codes::error::READ_ONLY,
            "this token is read-only: it may watch slots but not change them",
        )
        .into_response();
    }
    if let Some(connection) = req.extensions().get::<super::connections::Connection>() {
        connection.authenticated();
    }
    req.extensions_mut().insert(access);
    next.run(req).await
}

/// Middleware: answers only requests addressed to one of the daemon's own names (see
/// [`host_allowed`]); a request without `Host` (HTTP/1.0 tools) passes.
pub async fn check_host(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(host) = req.headers().get(header::HOST) {
        let host = host.to_str().unwrap_or("");
        if !host_allowed(host, &state.listen, &state.allowed_origins) {
            return ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                codes::error::HOST_FORBIDDEN,
                format!("requests for host '{host}' are refused: reach the daemon as 127.0.0.1, localhost or its listen address, or add the origin to server.allowed_origins"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Loopback names and addresses, the listen address (any IP address when listening on all
/// of them: a rebinding attack needs a name), and the hosts of `server.allowed_origins`.
pub fn host_allowed(host: &str, listen: &std::net::SocketAddr, allowed_origins: &[String]) -> bool {
    let name = host_name(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
        return ip.is_loopback() || ip == listen.ip() || listen.ip().is_unspecified();
    }
    allowed_origins.iter().any(|origin| {
        let authority = origin
            .trim_end_matches('/')
            .split_once("://")
            .map_or(origin.as_str(), |(_, a)| a);
        host_name(authority).eq_ignore_ascii_case(name)
    })
}

/// `host[:port]` or `[v6][:port]` without the port.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Middleware for WebSocket routes: the upgrade must come from no browser page at all (no
/// `Origin`: command-line clients), from the daemon's own origin, or from the allow-list.
pub async fn check_origin(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !origin_allowed(origin, host, &state) {
            return ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                codes::error::ORIGIN_FORBIDDEN,
                format!("WebSocket from origin {origin} refused: add it to server.allowed_origins to allow it"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

fn origin_allowed(origin: &str, host: &str, state: &AppState) -> bool {
    if state
        .allowed_origins
        .iter()
        .any(|o| o.trim_end_matches('/') == origin)
    {
        return true;
    }
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let Some(authority) = authority else {
        return false;
    };
    // The page must come from this very server: same host:port as the request targets, and
    // that host must be one of the daemon's own names (not a rebinding attacker's domain).
    let port = state.listen.port();
    let own = [
        state.listen.to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ];
    authority == host && own.iter().any(|o| o == authority)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

fn query_token(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// Compares in time that depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let listen: std::net::SocketAddr = "127.0.0.1:9120".parse().unwrap();
        let none: Vec<String> = Vec::new();
        for ok in [
            "127.0.0.1:9120",
            "127.0.0.1",
            "localhost:9120",
            "LOCALHOST",
            "[::1]:9120",
            "127.0.0.2:9120",
        ] {
            assert!(host_allowed(ok, &listen, &none), "{ok}");
        }
        for bad in [
            "evil.example:9120",
            "localhost.evil.example",
            "10.0.0.1:9120",
            "",
        ] {
            assert!(!host_allowed(bad, &listen, &none), "{bad}");
        }
        let allowed = vec!["https://box.lan:8443/".to_string()];
        assert!(host_allowed("box.lan:9120", &listen, &allowed));
        let all: std::net::SocketAddr = "0.0.0.0:9120".parse().unwrap();
        assert!(host_allowed("192.168.1.5:9120", &all, &none));
        assert!(!host_allowed("rebind.example:9120", &all, &none));
    }

    #[test]
    fn compares_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
