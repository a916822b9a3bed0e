//! Who sent a request, for the audit trail: the client kind it says it is, the token it
//! carried, its address and its User-Agent.
//!
//! The token kind and the address are what the daemon knows; the client kind and the
//! User-Agent are what the client says (the CLI sends `X-Missiond-Client: cli`, the viewer
//! `X-Missiond-Client: viewer`; a WebSocket from a page carries an `Origin`).

use super::auth::Access;
use crate::protocol::audit::{Actor, ClientKind, TokenKind};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use std::convert::Infallible;
use std::net::SocketAddr;

/// The header a first-party client names itself with.
pub const CLIENT_HEADER: &str = "x-missiond-client";
/// Longest User-Agent kept in the record.
const MAX_USER_AGENT: usize = 256;

/// Extractor: the [`Actor`] of this request.
pub struct RequestActor(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for RequestActor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token = match parts.extensions.get::<Access>() {
            Some(Access::Full) => TokenKind::Full,
            Some(Access::ReadOnly) => TokenKind::ReadOnly,
            None => TokenKind::None,
        };
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.to_string());
        Ok(RequestActor(Actor {
            client: client_kind(&parts.headers),
            token,
            remote,
            user_agent: header_text(&parts.headers, header::USER_AGENT.as_str())
                .map(|ua| truncate(ua, MAX_USER_AGENT)),
        }))
    }
}

fn client_kind(headers: &HeaderMap) -> ClientKind {
    match header_text(headers, CLIENT_HEADER) {
        Some("cli") => ClientKind::Cli,
        Some("viewer") => ClientKind::Viewer,
        _ if headers.contains_key(header::ORIGIN) => ClientKind::Viewer,
        _ => ClientKind::Rest,
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
