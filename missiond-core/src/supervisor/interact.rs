//! Talking to the program in a slot the way a person would: type a prompt and press Enter,
//! answer a dialog, wait for a state ([`Slot::prompt`], [`Slot::confirm`], [`Slot::wait_for`]).

use super::{Slot, StateView, SupervisorError};
use crate::protocol::{Answer, Dialog, Meaning, PromptRequest, SemanticState};
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// How long a submitted prompt may take to show that the turn started.
const TURN_START: Duration = Duration::from_secs(3);
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
/// How long one arrow key may take to move the selection on screen before the screen is read
/// again and the next key chosen from what it shows.
const STEP_SHOWS: Duration = Duration::from_millis(1500);
/// How long the selection may take, in all, to reach the asked option before the confirm gives
/// up without submitting anything.
const SELECT_BOUND: Duration = Duration::from_secs(8);
/// How long a dialog may look different (a redraw under way) before it counts as another one.
const DIALOG_SETTLES: Duration = Duration::from_millis(1000);

impl Slot {
    /// Waits until `accept(state)` holds, returning that view, or times out with the state it is in.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        accept: impl Fn(SemanticState) -> bool,
    ) -> Result<StateView, SupervisorError> {
        wait_view(self, timeout, |v| accept(v.state)).await
    }
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

impl Slot {
    /// Types `text` as one prompt and submits it; only when the slot waits for one: `idle`, or
    /// `error` after a turn that ended in an error (the prompt box is back).
    pub async fn prompt(&self, req: &PromptRequest) -> Result<StateView, SupervisorError> {
        let slot = self;
        let run = slot.live_run()?;
        let state = slot.state().state;
        if !matches!(state, SemanticState::Idle | SemanticState::Error) {
            return Err(SupervisorError::Conflict(format!(
                "slot '{}' is {}, not idle: wait for it (`missiond wait {} --state idle`)",
                slot.id(),
                state.as_str(),
                slot.id()
            )));
        }
        if req.text.trim().is_empty() {
            return Err(SupervisorError::Invalid(format!(
                "the prompt is empty; to press Enter alone use `missiond send {} --enter ''`",
                slot.id()
            )));
        }
        let input_err = |e: crate::pty::PtyError| SupervisorError::Input(slot.id().to_string(), e);
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
        let before = slot.state();
        for attempt in 0..2 {
            // Enter only on what was asked: the text must show where the program takes input.
            text_visible(slot, &run, &req.text).await?;
            run.write(Bytes::from_static(b"\r")).map_err(input_err)?;
            if turn_started(slot, &run, before.state).await {
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
        // The prompt box empties before the state moves: see the turn leave its state first, or
        // idle would be the answer at once. A change since Enter counts (a turn may be over already).
        let _ = wait_view(slot, TURN_BUSY, |v| {
            v.state != before.state || v.since != before.since
        })
        .await;
        let timeout = Duration::from_millis(req.timeout_ms.unwrap_or(300_000).min(3_600_000));
        slot.wait_for(timeout, |s| {
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
}

/// Waits until the typed `text` shows where the program takes input: in Claude Code's prompt
/// box, or on the cursor's row of a program that echoes. If it does not within
/// [`TEXT_SHOWS`], fails saying what the screen shows (nothing is submitted).
async fn text_visible(slot: &Slot, run: &super::Run, text: &str) -> Result<(), SupervisorError> {
    let deadline = Instant::now() + TEXT_SHOWS;
    loop {
        let wanted = text.to_string();
        let shows = run
            .inspect(move |screen, _| crate::semantic::typed_text_shows(screen.vt(), &wanted))
            .await
            .ok_or_else(|| SupervisorError::NotRunning(slot.id().to_string()))?;
        match shows {
            Ok(()) => return Ok(()),
            Err(seen) if Instant::now() >= deadline => {
                return Err(SupervisorError::Conflict(format!(
                    "slot '{}': the prompt did not show on screen within {} s ({seen}); Enter \
                     was not pressed, the text may still be typed in the program",
                    slot.id(),
                    TEXT_SHOWS.as_secs()
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The turn started when the slot left the state it was prompted in, or the prompt box took
/// the text away.
async fn turn_started(slot: &Slot, run: &super::Run, prompted_in: SemanticState) -> bool {
    let deadline = Instant::now() + TURN_START;
    let mut rx = slot.watch_state();
    loop {
        if rx.borrow_and_update().state != prompted_in {
            return true;
        }
        let composer = run
            .inspect(|screen, _| crate::semantic::composer_text(screen.vt()))
            .await;
        match composer {
            Some(Some(text)) if text.trim().is_empty() => return true,
            // No prompt box (a shell): Enter was pressed on text the screen showed; done.
            Some(None) => return true,
            _ => {}
        }
        let step = Instant::now() + Duration::from_millis(100);
        if step > deadline {
            return false;
        }
        let _ = tokio::time::timeout_at(step, rx.changed()).await;
    }
}

impl Slot {
    /// Answers the dialog the slot shows, by option number or by meaning, and waits until that
    /// dialog is gone.
    ///
    /// The invariant: Enter is pressed only when the screen shows the asked option selected on the
    /// same dialog that was asked about. The selection is moved one arrow key at a time and read
    /// back from the screen after each (Claude Code 2.1.150-2.1.200 read a burst of arrows and
    /// Enter as Enter alone); if it does not get there within [`SELECT_BOUND`], nothing is
    /// submitted, the dialog stays open and the error says what the screen shows.
    pub async fn confirm(&self, answer: Answer) -> Result<StateView, SupervisorError> {
        let slot = self;
        let run = slot.live_run()?;
        let view = slot.state();
        let asked = match (&view.state, &view.detail.dialog) {
            (SemanticState::Confirming, Some(dialog)) => dialog.clone(),
            _ => {
                return Err(SupervisorError::Conflict(format!(
                    "slot '{}' is {}, not waiting for a confirmation",
                    slot.id(),
                    view.state.as_str()
                )))
            }
        };
        let episode = Episode {
            dialog: asked.clone(),
            since: view.since,
        };
        let write = |keys: &'static [u8]| {
            run.write(Bytes::from_static(keys))
                .map_err(|e| SupervisorError::Input(slot.id().to_string(), e))
        };
        let n = match target(&asked, answer)? {
            Target::Option(n) => n,
            Target::Escape => {
                // Escape refuses a dialog that offers it; pressed again only while the same dialog
                // still shows (the first one was dropped).
                let deadline = Instant::now() + DIALOG_GONE;
                loop {
                    write(b"\x1b")?;
                    match gone(slot, &episode, deadline).await? {
                        Some(view) => return Ok(view),
                        None => continue,
                    }
                }
            }
        };
        let deadline = Instant::now() + DIALOG_GONE;
        loop {
            select(slot, &run, &episode, n).await?;
            write(b"\r")?;
            if let Some(view) = gone(slot, &episode, deadline).await? {
                return Ok(view);
            }
            // The same dialog still asks: Claude Code redrew it and dropped the Enter (its trust
            // dialog does so about a second after start). Select again from what it shows now.
        }
    }
}

/// What a confirm presses: Enter on an option, or Escape.
enum Target {
    Option(u32),
    Escape,
}

/// The option (or key) that gives `answer` on `dialog`.
fn target(dialog: &Dialog, answer: Answer) -> Result<Target, SupervisorError> {
    let listed = || {
        dialog
            .options
            .iter()
            .map(|o| {
                let meaning = o.meaning.map(Meaning::as_str).unwrap_or("no meaning");
                format!("{}. {} ({meaning})", o.n, o.label)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match answer {
        Answer::Option(n) if dialog.options.iter().any(|o| o.n == n) => Ok(Target::Option(n)),
        Answer::Option(_) if dialog.options.is_empty() => Err(SupervisorError::Invalid(
            "the dialog has no options to choose from: answer it in its terminal".to_string(),
        )),
        Answer::Option(n) => Err(SupervisorError::Invalid(format!(
            "option {n} does not exist: the dialog's options are {}",
            listed()
        ))),
        Answer::Meaning(meaning) => match dialog.option_meaning(meaning) {
            Some(option) => Ok(Target::Option(option.n)),
            None if meaning == Meaning::No && dialog.cancellable => Ok(Target::Escape),
            None => Err(SupervisorError::Invalid(format!(
                "the dialog has no option meaning \"{}\"{}: its options are {}",
                meaning.as_str(),
                if meaning == Meaning::No {
                    " and does not offer Escape"
                } else {
                    ""
                },
                listed()
            ))),
        },
    }
}

/// The dialog a confirm was asked about, and the moment it came up: a dialog that looks the
/// same but came up later (the next tool call) is another one.
struct Episode {
    dialog: Dialog,
    since: u64,
}

impl Episode {
    /// True while `view` shows this dialog, whatever is selected.
    fn shows(&self, view: &StateView) -> bool {
        view.state == SemanticState::Confirming
            && view.since == self.since
            && view
                .detail
                .dialog
                .as_ref()
                .is_some_and(|d| crate::semantic::same_dialog(d, &self.dialog))
    }
}

/// Moves the selection to option `n` one arrow key at a time, reading it back from the screen
/// after each key; returns once the screen shows `n` selected on the asked dialog.
async fn select(
    slot: &Slot,
    run: &super::Run,
    episode: &Episode,
    n: u32,
) -> Result<(), SupervisorError> {
    let mut rx = slot.watch_state();
    let bound = Instant::now() + SELECT_BOUND;
    let mut away_since: Option<Instant> = None;
    loop {
        let view = rx.borrow_and_update().clone();
        let now = Instant::now();
        let shown = view.detail.dialog.as_ref().filter(|_| episode.shows(&view));
        let current = shown.and_then(|d| d.options.iter().position(|o| o.selected));
        let wanted = shown.and_then(|d| d.options.iter().position(|o| o.n == n));
        let (Some(shown), Some(current), Some(wanted)) = (shown, current, wanted) else {
            // One odd frame (a redraw in progress, the marker between two rows) is not yet
            // another dialog.
            let since = *away_since.get_or_insert(now);
            if now >= since + DIALOG_SETTLES {
                let why = if episode.shows(&view) {
                    "the dialog shows no selected option to move from".to_string()
                } else {
                    format!(
                        "the dialog changed before option {n} was selected (the slot is now {})",
                        view.state.as_str()
                    )
                };
                return Err(SupervisorError::Conflict(format!(
                    "slot '{}': {why}; nothing was submitted",
                    slot.id()
                )));
            }
            let _ = tokio::time::timeout(DIALOG_SETTLES, rx.changed()).await;
            continue;
        };
        away_since = None;
        if current == wanted {
            return Ok(());
        }
        if now >= bound {
            let selected = &shown.options[current];
            return Err(SupervisorError::Conflict(format!(
                "slot '{}': the selection did not reach option {n} within {} s: the screen shows \
                 option {} ({}) selected; nothing was submitted and the dialog is still open",
                slot.id(),
                SELECT_BOUND.as_secs(),
                selected.n,
                selected.label
            )));
        }
        let key: &'static [u8] = if wanted > current {
            b"\x1b[B"
        } else {
            b"\x1b[A"
        };
        run.write(Bytes::from_static(key))
            .map_err(|e| SupervisorError::Input(slot.id().to_string(), e))?;
        // The move shows as a new dialog view; if it does not within a step, the key was dropped
        // or is late: the loop reads the screen again and presses whatever moves toward `n`.
        let _ = tokio::time::timeout_at(bound.min(now + STEP_SHOWS), rx.changed()).await;
    }
}

/// Waits for the asked dialog to go after an answer key: the view then (`Some`), or `None` when
/// the same dialog still shows after [`ANSWER_SHOWS`] (the key was dropped). Past `deadline`
/// an error.
async fn gone(
    slot: &Slot,
    episode: &Episode,
    deadline: Instant,
) -> Result<Option<StateView>, SupervisorError> {
    let left = deadline.saturating_duration_since(Instant::now());
    match wait_view(slot, left.min(ANSWER_SHOWS), |v| !episode.shows(v)).await {
        Ok(view) => Ok(Some(view)),
        Err(SupervisorError::Timeout(_)) if left > ANSWER_SHOWS => Ok(None),
        Err(SupervisorError::Timeout(_)) => Err(SupervisorError::Timeout(format!(
            "slot '{}': the answer was sent but the dialog still shows after {} s",
            slot.id(),
            DIALOG_GONE.as_secs()
        ))),
        Err(e) => Err(e),
    }
}
