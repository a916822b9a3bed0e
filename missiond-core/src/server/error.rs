//! REST errors: `{"error": {"code", "message"}}` with the right HTTP status.

use crate::protocol::codes;
use crate::protocol::{ErrorBody, ErrorInfo};
use crate::supervisor::SupervisorError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, codes::error::BAD_REQUEST, message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::error::UNAUTHORIZED,
            "missing or wrong token: send `Authorization: Bearer <token>` (see `missiond token`)",
        )
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, codes::error::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorInfo {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<SupervisorError> for ApiError {
    fn from(e: SupervisorError) -> ApiError {
        use SupervisorError::*;
        let (status, code) = match &e {
            NotFound(_) => (StatusCode::NOT_FOUND, codes::error::SLOT_NOT_FOUND),
            Exists(_) => (StatusCode::CONFLICT, codes::error::SLOT_EXISTS),
            Invalid(_) => (StatusCode::BAD_REQUEST, codes::error::INVALID),
            NotRunning(_) => (StatusCode::CONFLICT, codes::error::NOT_RUNNING),
            Spawn(..) => (StatusCode::UNPROCESSABLE_ENTITY, codes::error::SPAWN_FAILED),
            Input(..) => (StatusCode::SERVICE_UNAVAILABLE, codes::error::INPUT_FAILED),
            KillTimeout(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::error::KILL_TIMEOUT,
            ),
            TooManyViewers(..) => (
                StatusCode::SERVICE_UNAVAILABLE,
                codes::error::TOO_MANY_VIEWERS,
            ),
            Conflict(_) => (StatusCode::CONFLICT, codes::error::CONFLICT),
            Timeout(_) => (StatusCode::REQUEST_TIMEOUT, codes::error::TIMEOUT),
            WorktreeUnsaved(_) => (StatusCode::CONFLICT, codes::error::WORKTREE_UNSAVED),
            NotAWorktree(_) => (StatusCode::CONFLICT, codes::error::NOT_A_WORKTREE),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// `Json<T>` whose rejections (bad JSON, wrong type, body too large) are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    codes::error::TOO_LARGE
                } else {
                    codes::error::BAD_JSON
                };
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!("request body is larger than {} bytes", super::MAX_BODY)
                } else {
                    rejection.body_text()
                };
                Err(ApiError::new(status, code, message))
            }
        }
    }
}

/// `Query<T>` whose rejections (a missing or malformed parameter) are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// A query parameter with a fixed set of values: the typed value when it is one of them, else
/// the text as given, so the handler can answer with its own message naming what is accepted.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum Choice<T> {
    Known(T),
    Unknown(String),
}

#[cfg(test)]
mod choice_tests {
    use super::Choice;
    use crate::protocol::SemanticState;

    #[derive(Debug, serde::Deserialize)]
    struct Q {
        state: Choice<SemanticState>,
    }

    fn parse(query: &str) -> Result<Q, String> {
        let uri: axum::http::Uri = format!("/x?{query}").parse().map_err(|e| format!("{e}"))?;
        axum::extract::Query::<Q>::try_from_uri(&uri)
            .map(|q| q.0)
            .map_err(|e| e.body_text())
    }

    #[test]
    fn known_values_are_typed_and_others_kept_as_text() {
        let q = parse("state=tool_running").map(|q| q.state);
        assert_eq!(q.ok(), Some(Choice::Known(SemanticState::ToolRunning)));
        let q = parse("state=sleeping").map(|q| q.state);
        assert_eq!(q.ok(), Some(Choice::Unknown("sleeping".to_string())));
        assert!(parse("").is_err(), "a required choice stays required");
    }
}
