//! Talking to the program in a slot the way a person would: type a prompt and press Enter,
//! answer a dialog, wait for a state.

use super::{Slot, StateView, SupervisorError};
use crate::protocol::{PromptRequest, SemanticState};
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// How long a submitted prompt may take to show that the turn started.
const TURN_START: Duration = Duration::from_secs(3);
/// Pause between pasting a prompt and pressing Enter: Claude Code treats an Enter that arrives
/// with the paste as part of the pasted text.
const PASTE_SETTLE: Duration = Duration::from_millis(150);
/// How long typed text may take to show in the prompt box. Claude Code draws its prompt box
/// (and so looks idle) up to a second or more before it reads its input: typed text waits in
/// the terminal until then.
const TEXT_SHOWS: Duration = Duration::from_secs(10);
/// With `wait`: how long a submitted turn may take to move the state off `idle` before the
/// prompt is taken to have been a local command that finished at once.
const TURN_BUSY: Duration = Duration::from_secs(10);
/// How long a confirmed dialog may take to go away.
const DIALOG_GONE: Duration = Duration::from_secs(10);
/// How long the keys of an answer may take to show on the dialog before they are sent again:
/// Claude Code redraws a fresh trust dialog shortly after start, dropping an answer given to the
/// first one.
const ANSWER_SHOWS: Duration = Duration::from_secs(3);

/// Waits until `accept(state)` holds, returning that view, or times out with the state it is in.
pub async fn wait_for(
    slot: &Slot,
    timeout: Duration,
    accept: impl Fn(SemanticState) -> bool,
) -> Result<StateView, SupervisorError> {
    wait_view(slot, timeout, |v| accept(v.state)).await
}

async fn wait_view(
    slot: &Slot,
    timeout: Duration,
    accept: impl Fn(&StateView) -> bool,
) -> Result<StateView, SupervisorError> {
    let mut rx = slot.watch_state();
    let deadline = Instant::now() + timeout;
    loop {
        let view = rx.borrow_and_update().clone();
        if accept(&view) {
            return Ok(view);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return Err(SupervisorError::NotFound(slot.id().to_string())),
            Err(_) => {
                return Err(SupervisorError::Timeout(format!(
                    "slot '{}' is still {} after {:.1} s",
                    slot.id(),
                    view.state.as_str(),
                    timeout.as_secs_f64()
                )))
            }
        }
    }
}

/// Types `text` as one prompt and submits it; only when the slot is idle.
pub async fn prompt(slot: &Slot, req: &PromptRequest) -> Result<StateView, SupervisorError> {
    let run = slot.live_run()?;
    let state = slot.state().state;
    if state != SemanticState::Idle {
        return Err(SupervisorError::Conflict(format!(
            "slot '{}' is {}, not idle: wait for it (`missiond wait {} --state idle`)",
            slot.id(),
            state.as_str(),
            slot.id()
        )));
    }
    let input_err =
        |e: crate::pty::PtyError| SupervisorError::Input(slot.id().to_string(), e.to_string());
    let bracketed = run
        .inspect(|screen, _| screen.vt().bracketed_paste())
        .await
        .unwrap_or(false);
    let mut typed = Vec::with_capacity(req.text.len() + 12);
    if bracketed {
        typed.extend_from_slice(b"\x1b[200~");
        typed.extend_from_slice(req.text.as_bytes());
        typed.extend_from_slice(b"\x1b[201~");
    } else {
        typed.extend_from_slice(req.text.replace('\n', "\r").as_bytes());
    }
    run.write(Bytes::from(typed)).map_err(input_err)?;
    // An empty prompt box only means "submitted" once the text has been in it.
    let has_composer = !req.text.trim().is_empty() && text_shown(slot, &run).await;
    if !has_composer {
        tokio::time::sleep(PASTE_SETTLE).await;
    }
    let before = slot.state();
    for attempt in 0..2 {
        run.write(Bytes::from_static(b"\r")).map_err(input_err)?;
        if turn_started(slot, &run, has_composer).await {
            break;
        }
        if attempt == 1 {
            return Err(SupervisorError::Timeout(format!(
                "slot '{}' did not start a turn after Enter was pressed twice",
                slot.id()
            )));
        }
    }
    if !req.wait {
        return Ok(slot.state());
    }
    // The prompt box empties before the state moves: see the turn leave idle first, or idle
    // would be the answer at once. A change since Enter counts (a turn may be over already).
    let _ = wait_view(slot, TURN_BUSY, |v| {
        v.state != SemanticState::Idle || v.since != before.since
    })
    .await;
    let timeout = Duration::from_millis(req.timeout_ms.unwrap_or(300_000).min(3_600_000));
    wait_for(slot, timeout, |s| {
        matches!(
            s,
            SemanticState::Idle
                | SemanticState::Confirming
                | SemanticState::Exited
                | SemanticState::Error
        )
    })
    .await
}

/// Waits until the typed text shows in the prompt box (or the slot left idle); false when the
/// screen has no prompt box or the text never showed.
async fn text_shown(slot: &Slot, run: &super::Run) -> bool {
    let deadline = Instant::now() + TEXT_SHOWS;
    let mut rx = slot.watch_state();
    loop {
        if rx.borrow_and_update().state != SemanticState::Idle {
            return true;
        }
        match run
            .inspect(|screen, _| crate::semantic::composer_text(screen.vt()))
            .await
        {
            Some(Some(text)) if !text.trim().is_empty() => return true,
            Some(Some(_)) => {}
            _ => return false,
        }
        let step = Instant::now() + Duration::from_millis(50);
        if step > deadline {
            return false;
        }
        tokio::time::sleep_until(step).await;
    }
}

/// The turn started when the slot left idle or (if the text was seen in it) the prompt box
/// emptied.
async fn turn_started(slot: &Slot, run: &super::Run, has_composer: bool) -> bool {
    let deadline = Instant::now() + TURN_START;
    let mut rx = slot.watch_state();
    loop {
        if rx.borrow_and_update().state != SemanticState::Idle {
            return true;
        }
        if has_composer {
            let composer = run
                .inspect(|screen, _| crate::semantic::composer_text(screen.vt()))
                .await;
            if matches!(composer, Some(Some(ref text)) if text.trim().is_empty()) {
                return true; // the prompt box took the text away: the turn is on its way
            }
        }
        let step = Instant::now() + Duration::from_millis(100);
        if step > deadline {
            return false;
        }
        let _ = tokio::time::timeout_at(step, rx.changed()).await;
    }
}

/// Answers the dialog the slot shows with option `n`, then waits until that dialog is gone.
pub async fn confirm(slot: &Slot, n: u32) -> Result<StateView, SupervisorError> {
    let run = slot.live_run()?;
    let view = slot.state();
    let dialog = match (&view.state, &view.detail.dialog) {
        (SemanticState::Confirming, Some(dialog)) => dialog.clone(),
        _ => {
            return Err(SupervisorError::Conflict(format!(
                "slot '{}' is {}, not waiting for a confirmation",
                slot.id(),
                view.state.as_str()
            )))
        }
    };
    // Moving the selection redraws the dialog: only another dialog (or none) means answered.
    let still_asking = |v: &StateView| {
        v.state == SemanticState::Confirming
            && v.detail
                .dialog
                .as_ref()
                .is_some_and(|d| crate::semantic::same_dialog(d, &dialog))
    };
    let deadline = Instant::now() + DIALOG_GONE;
    let mut shown = dialog.clone();
    loop {
        let keys = crate::semantic::keys_for_option(&shown, n)
            .map_err(|e| SupervisorError::Invalid(e.to_string()))?;
        run.write(Bytes::from(keys))
            .map_err(|e| SupervisorError::Input(slot.id().to_string(), e.to_string()))?;
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_view(slot, left.min(ANSWER_SHOWS), |v| !still_asking(v)).await {
            Err(SupervisorError::Timeout(_)) if left > ANSWER_SHOWS => {
                // The same dialog is still asking: the keys were dropped. Answer again, from the
                // selection it shows now.
                let view = slot.state();
                match view.detail.dialog.clone() {
                    Some(d) if still_asking(&view) => shown = d,
                    _ => return Ok(view),
                }
            }
            done => return done,
        }
    }
}
