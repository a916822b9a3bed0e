//! Claude Code's signals in: `POST /hooks/{slot}/hook` and `/hooks/{slot}/statusline` (sent by
//! `missiond hook` / `missiond statusline` with the slot's own secret), and `GET /api/doctor`.

use super::error::ApiError;
use super::AppState;
use crate::protocol::codes;
use crate::protocol::signals::{CheckStatus, DoctorCheck, DoctorReport};
use crate::protocol::{Profile, SlotStatus};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use std::sync::Arc;

/// Largest hook body accepted (the hook command sends a trimmed copy of Claude Code's JSON).
pub const MAX_HOOK_BODY: usize = 256 * 1024;
/// The header carrying the slot's hook secret.
pub const SECRET_HEADER: &str = "x-missiond-hook-secret";
/// A running slot with hooks on that has not been heard from in this long is reported.
const HOOKS_SILENT_AFTER_MS: u64 = 30_000;

/// One hook or status-line run of a slot's Claude Code.
pub async fn hook(
    State(state): State<Arc<AppState>>,
    Path((id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    crate::config::validate_slot_id(&id).map_err(ApiError::bad_request)?;
    if kind != "hook" && kind != "statusline" {
        return Err(ApiError::not_found(format!(
            "no hook kind '{kind}': use /hooks/{{slot}}/hook or /hooks/{{slot}}/statusline"
        )));
    }
    let slot = state.supervisor.get(&id)?;
    let presented = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !slot.signals().accepts(presented) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::error::UNAUTHORIZED,
            format!("missing or wrong {SECRET_HEADER} for slot '{id}'"),
        ));
    }
    let payload: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the {kind} body is not JSON: {e}")))?;
    if !payload.is_object() {
        return Err(ApiError::bad_request(format!(
            "the {kind} body must be a JSON object"
        )));
    }
    if kind == "hook" {
        slot.hook(&payload);
    } else {
        // A transcript may be read to fill in figures: off the async threads.
        let usage =
            tokio::task::spawn_blocking(move || crate::supervisor::usage_from_statusline(&payload))
                .await
                .map_err(|e| ApiError::bad_request(format!("status line: {e}")))?;
        slot.statusline(usage);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/doctor`: the daemon's view of its setup, as a list of checks.
pub async fn doctor(State(state): State<Arc<AppState>>) -> Json<DoctorReport> {
    Json(report(&state))
}

fn check(name: impl Into<String>, status: CheckStatus, detail: impl Into<String>) -> DoctorCheck {
    DoctorCheck {
        name: name.into(),
        status,
        detail: detail.into(),
        fix: None,
    }
}

fn with_fix(mut c: DoctorCheck, fix: impl Into<String>) -> DoctorCheck {
    c.fix = Some(fix.into());
    c
}

/// Every check: token files, rule files, hooks set-up, and per Claude Code slot its release,
/// hooks, status line and drift.
pub fn report(state: &AppState) -> DoctorReport {
    let mut checks = Vec::new();
    checks.extend(token_checks(&state.state_dir));
    let sup = &state.supervisor;
    for profile in [Profile::ClaudeCode, Profile::Shell] {
        let origin = sup.rules_origin(profile);
        checks.push(check(
            format!("rules {}", profile.as_str()),
            CheckStatus::Ok,
            format!("in force: {origin}"),
        ));
    }
    let signals = sup.signals();
    if signals.settings.hooks && signals.settings.exe.is_none() {
        checks.push(with_fix(
            check(
                "hooks",
                CheckStatus::Warn,
                "the daemon does not know its own executable: Claude Code slots get no hooks",
            ),
            "run the daemon as `missiond serve` from an installed binary",
        ));
    }
    checks.push(recordings_check(sup.settings().recordings.as_deref()));
    let now = crate::supervisor::now_millis();
    for slot in sup
        .list()
        .into_iter()
        .filter(|s| s.profile == Profile::ClaudeCode)
    {
        let Ok(handle) = sup.get(&slot.id) else {
            continue;
        };
        let stats = handle.signal_stats();
        let name = |what: &str| format!("slot {}: {what}", slot.id);
        checks.push(match &slot.claude_version {
            Some(v) => check(name("release"), CheckStatus::Ok, format!("Claude Code {v}")),
            None => check(
                name("release"),
                CheckStatus::Warn,
                "not known (`--version` gave no answer)",
            ),
        });
        let running = slot.status == SlotStatus::Running;
        let age = slot.started_at.map(|t| now.saturating_sub(t)).unwrap_or(0);
        checks.push(if !stats.hooks_on {
            check(name("hooks"), CheckStatus::Ok, "off: the screen alone decides the state")
        } else if stats.hook_count > 0 {
            let last = stats
                .last_hook
                .map(|(at, event)| format!("{event}, {}s ago", now.saturating_sub(at) / 1000))
                .unwrap_or_default();
            check(
                name("hooks"),
                CheckStatus::Ok,
                format!("{} heard, the last: {last}", stats.hook_count),
            )
        } else if running && age > HOOKS_SILENT_AFTER_MS {
            with_fix(
                check(name("hooks"), CheckStatus::Fail, "none heard since the start"),
                "check that Claude Code can run the missiond binary and reach the daemon on loopback; `hooks = false` turns them off",
            )
        } else {
            check(name("hooks"), CheckStatus::Ok, "on, none heard yet")
        });
        if stats.hooks_on {
            checks.push(if stats.statusline_count > 0 {
                check(
                    name("status line"),
                    CheckStatus::Ok,
                    format!("{} updates", stats.statusline_count),
                )
            } else {
                check(name("status line"), CheckStatus::Warn, "no update yet")
            });
        }
        if let Some(drift) = stats.drift_seen {
            checks.push(with_fix(
                check(
                    name("drift"),
                    CheckStatus::Fail,
                    format!(
                        "the screen said {} while the hooks said {} (Claude Code {})",
                        drift.screen,
                        drift.hooks,
                        drift.claude_version.as_deref().unwrap_or("unknown")
                    ),
                ),
                "the state rules may be wrong for this release: update them (docs/RULES.md)",
            ));
        }
    }
    DoctorReport { checks }
}

/// Where runs are recorded, how much disk they take against the limits.
fn recordings_check(recordings: Option<&crate::recording::Recordings>) -> DoctorCheck {
    let Some(recordings) = recordings else {
        return with_fix(
            check(
                "recordings",
                CheckStatus::Warn,
                "not recorded: the recordings directory could not be opened",
            ),
            "see the daemon's log at start; the state directory must be writable",
        );
    };
    let usage = recordings.usage();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let detail = format!(
        "{}: {} run(s), {:.1} MiB of {:.0} MiB (per slot {:.0} MiB, {} days){}",
        usage.dir,
        usage.runs,
        mib(usage.total_bytes),
        mib(usage.limits.max_total_bytes),
        mib(usage.limits.max_slot_bytes),
        usage.limits.max_age_days,
        if usage.limits.enabled {
            ""
        } else {
            "; off unless a slot asks"
        }
    );
    check("recordings", CheckStatus::Ok, detail)
}

/// The token files exist only for their owner (mode 0600).
fn token_checks(dir: &std::path::Path) -> Vec<DoctorCheck> {
    use std::os::unix::fs::PermissionsExt;
    ["token", "token-ro"]
        .iter()
        .filter_map(|name| {
            let path = dir.join(name);
            let meta = std::fs::metadata(&path).ok()?;
            let mode = meta.permissions().mode() & 0o777;
            Some(if mode & 0o077 == 0 {
                check(
                    format!("token file {name}"),
                    CheckStatus::Ok,
                    format!("{} mode {mode:o}", path.display()),
                )
            } else {
                with_fix(
                    check(
                        format!("token file {name}"),
                        CheckStatus::Fail,
                        format!("{} is readable by others (mode {mode:o})", path.display()),
                    ),
                    format!("chmod 600 {}", path.display()),
                )
            })
        })
        .collect()
}
