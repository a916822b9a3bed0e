//! Who may talk to the daemon: the token on every route but `/health` and the static viewer,
//! and the `Origin` of every WebSocket upgrade (cross-site WebSocket hijacking would let any
//! web page type into a terminal).

use super::error::ApiError;
use super::AppState;
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
    let presented = bearer(req.headers()).or_else(|| query_token(req.uri()));
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
            "read_only",
            "this token is read-only: it may watch slots but not change them",
        )
        .into_response();
    }
    req.extensions_mut().insert(access);
    next.run(req).await
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
                "origin_forbidden",
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
    fn compares_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
