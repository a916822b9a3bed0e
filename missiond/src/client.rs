//! Talking to the daemon: REST calls with the token, WebSocket upgrades, and turning every way a
//! call can fail into one line a person can act on.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::ConnArgs;
use missiond_core::protocol::ErrorBody;

/// Why a verb failed: the one-line reason printed after `missiond: ` and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit_code: 1,
        }
    }
}

/// Names this client in the daemon's audit trail.
const CLIENT_HEADER: &str = missiond_core::server::actor::CLIENT_HEADER;
const USER_AGENT: &str = concat!("missiond-cli/", env!("CARGO_PKG_VERSION"));

/// How long a client waits for an upgrading daemon (its hand-over takes well under a second).
const UPGRADE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The error code of a daemon refusing requests while it upgrades itself.
const UPGRADING: &str = missiond_core::protocol::codes::error::UPGRADING;

/// One try of a REST call.
enum Attempt {
    /// The daemon answered (any status).
    Answer(StatusCode, String),
    /// The connection was made, then lost before the answer (an upgrade's `execve`, a crash).
    Lost(reqwest::Error),
    /// No connection could be made.
    Unreachable(reqwest::Error),
}

/// The daemon refused the request because it is handing over to a new image.
fn refused_while_upgrading(status: StatusCode, body: &str) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE
        && serde_json::from_str::<ErrorBody>(body).is_ok_and(|b| b.error.code == UPGRADING)
}

/// A WebSocket connection to the daemon.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The daemon's address and the token, plus an HTTP connection pool.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(conn: &ConnArgs) -> Result<Client, Failure> {
        let mut base = conn
            .url
            .clone()
            .unwrap_or_else(missiond_core::config::default_url)
            .trim_end_matches('/')
            .to_string();
        // `--url 127.0.0.1:9120` means what `serve --listen` means.
        if !base.contains("://") {
            base = format!("http://{base}");
        }
        if !base.starts_with("http://") {
            return Err(Failure::new(format!(
                "'{base}' is not a daemon URL; expected http://HOST:PORT"
            )));
        }
        let token = missiond_core::config::load_token()
            .map_err(|e| Failure::new(format!("cannot read the access token: {e}")))?;
        // The audit trail tells the CLI from other clients by this header.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            CLIENT_HEADER,
            reqwest::header::HeaderValue::from_static("cli"),
        );
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .default_headers(headers)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| Failure::new(format!("cannot create an HTTP client: {e}")))?;
        Ok(Client { base, token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`, decoding the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `POST path` with a JSON body (or none), decoding the JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Failure> {
        self.call(Method::POST, path, body).await
    }

    /// A call whose answer is JSON of any shape (or empty, which gives `null`).
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Failure> {
        let text = self.call_text(method, path, body).await?;
        let text = if text.trim().is_empty() {
            "null"
        } else {
            text.as_str()
        };
        serde_json::from_str(text).map_err(|e| {
            Failure::new(format!(
                "the daemon at {} sent an answer this client does not understand ({e})",
                self.base
            ))
        })
    }

    /// A call whose successful answer is returned as text (used for `screen --ansi`).
    ///
    /// Through a daemon upgrade: a request the daemon refused while handing over (503
    /// `upgrading`: it was not carried out) is sent again to the new daemon, and so is a `GET`
    /// whose connection the upgrade cut (reading twice changes nothing). A `POST` whose
    /// connection was cut is not: it may have been carried out, and the error says so.
    pub async fn call_text<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<String, Failure> {
        let deadline = std::time::Instant::now() + UPGRADE_WAIT;
        loop {
            let attempt = self.call_once(method.clone(), path, body).await;
            let again = match &attempt {
                Attempt::Answer(status, text) => refused_while_upgrading(*status, text),
                Attempt::Lost(_) => method == Method::GET,
                Attempt::Unreachable(_) => false,
            };
            if !again || std::time::Instant::now() >= deadline {
                return match attempt {
                    Attempt::Answer(status, text) if status.is_success() => Ok(text),
                    Attempt::Answer(status, text) => Err(self.status_failure(status, &text)),
                    Attempt::Lost(e) if method != Method::GET => {
                        let mut failure = self.transport_failure(&e);
                        failure.message.push_str(
                            "; it may have been carried out: look before trying again (`missiond ls`, `missiond screen ID`)",
                        );
                        Err(failure)
                    }
                    Attempt::Lost(e) | Attempt::Unreachable(e) => Err(self.transport_failure(&e)),
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn call_once<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Attempt {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let lost = |e: reqwest::Error| {
            if e.is_connect() {
                Attempt::Unreachable(e)
            } else {
                Attempt::Lost(e)
            }
        };
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return lost(e),
        };
        let status = resp.status();
        match resp.text().await {
            Ok(text) => Attempt::Answer(status, text),
            Err(e) => lost(e),
        }
    }

    /// Connects again to a WebSocket the daemon closed for an upgrade (close code 1012), for
    /// as long as an upgrade may take.
    pub async fn reconnect(&self, path: &str) -> Option<Socket> {
        let deadline = std::time::Instant::now() + UPGRADE_WAIT;
        while std::time::Instant::now() < deadline {
            if let Ok(socket) = self.websocket(path).await {
                return Some(socket);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    }

    /// `POST /api/daemon/upgrade`: `Ok` once the daemon answers `/health` again after its
    /// `execve` (the upgrade's own connection closes without an answer when it succeeds).
    pub async fn upgrade(&self, body: &serde_json::Value) -> Result<(), Failure> {
        let url = format!("{}/api/daemon/upgrade", self.base);
        let mut req = self.http.post(&url).json(body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(self.status_failure(status, &text));
                }
            }
            Err(e) if e.is_connect() => return Err(self.transport_failure(&e)),
            // The connection closed with the old image: the new one is starting.
            Err(_) => {}
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let health = format!("{}/health", self.base);
        while std::time::Instant::now() < deadline {
            if let Ok(resp) = self.http.get(&health).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(Failure::new(format!(
            "the daemon at {} did not answer within 30 s of the upgrade",
            self.base
        )))
    }

    fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        if e.is_connect() {
            Failure::new(format!(
                "cannot reach the daemon at {} (is `missiond serve` running?)",
                self.base
            ))
        } else if e.is_timeout() {
            Failure::new(format!(
                "the daemon at {} did not answer in time",
                self.base
            ))
        } else {
            Failure::new(format!(
                "lost the connection to the daemon at {} ({})",
                self.base,
                root_cause(e)
            ))
        }
    }

    /// Turn an error status into the daemon's own message, with a hint where one helps.
    fn status_failure(&self, status: StatusCode, body: &str) -> Failure {
        let message = serde_json::from_str::<ErrorBody>(body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| {
                let body = body.trim();
                if body.is_empty() {
                    format!("the daemon answered {status}")
                } else {
                    format!("the daemon answered {status}: {}", first_line(body))
                }
            });
        if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            return Failure::new(format!(
                "{message} (no access token found here: set MISSIOND_TOKEN, or run `missiond token` where the daemon runs)"
            ));
        }
        Failure::new(message)
    }

    /// Open a WebSocket to `path` (e.g. `/pty/ID`), sending the token as a Bearer header.
    pub async fn websocket(&self, path: &str) -> Result<Socket, Failure> {
        let ws_url = format!("ws://{}{}", self.base.trim_start_matches("http://"), path);
        let mut request = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| Failure::new(format!("bad WebSocket URL {ws_url}: {e}")))?;
        request
            .headers_mut()
            .insert(CLIENT_HEADER, HeaderValue::from_static("cli"));
        request
            .headers_mut()
            .insert("User-Agent", HeaderValue::from_static(USER_AGENT));
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Failure::new("the access token contains characters a header cannot carry")
            })?;
            request.headers_mut().insert("Authorization", value);
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _response)) => Ok(socket),
            Err(e) => Err(self.websocket_failure(e)),
        }
    }

    fn websocket_failure(&self, e: tokio_tungstenite::tungstenite::Error) -> Failure {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match e {
            WsError::Io(_) => Failure::new(format!(
                "cannot reach the daemon at {} (is `missiond serve` running?)",
                self.base
            )),
            WsError::Http(resp) => {
                let status = resp.status();
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let status =
                    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                self.status_failure(status, &body)
            }
            other => Failure::new(format!("WebSocket to {} failed: {other}", self.base)),
        }
    }
}

/// Percent-encode a path segment or query value (slot ids are plain, but be safe).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The innermost error: reqwest's own text ("error sending request for url") hides the reason.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_ids_and_escapes_the_rest() {
        assert_eq!(encode("agent_1-x"), "agent_1-x");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
