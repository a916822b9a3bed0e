//! The per-slot state machine: combines the signals (exit, screen rules, window title, session
//! file, output activity) into one [`SemanticState`] and reports each change once.
//!
//! Every signal becomes a candidate with a priority (rules carry theirs; the session file and
//! output activity get theirs from the rule file); the highest wins. Busy -> idle is held for the
//! profile's `idle_hold` (the spinner blinks between tool calls), entering `confirming` or
//! `exited` is immediate. Timing is driven by the caller through [`Classifier::next_deadline`]:
//! nothing runs on a timer while the state is stable.

use super::dialog::parse_dialog;
use super::hooks::{HookSignal, HookWitness};
use super::regions::RegionCache;
use super::rules::{Region, Rules};
use crate::protocol::signals::Drift;
use crate::protocol::{Dialog, DialogKind, ErrorDetail, SemanticState, StateDetail};
use std::sync::Arc;
use std::time::Instant;

/// One state change: the new state, the one before, and the detail (dialog, deciding rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: SemanticState,
    pub prev: SemanticState,
    pub detail: StateDetail,
}

/// Where a candidate came from; the window title and the session file cannot end `starting`
/// (Claude Code sets its idle title before it has drawn a prompt that accepts input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Screen,
    Title,
    Session,
    Activity,
    /// Claude Code's hooks: they name the busy kind (a tool), never end `starting` or a dialog.
    Hooks,
}

/// Why a candidate says what it says; turned into text only when the state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// Index into the rules.
    Rule(usize),
    Named(&'static str),
}

/// A rule's verdict on the last evaluated screen.
#[derive(Debug, Clone)]
struct Candidate {
    state: SemanticState,
    priority: i64,
    reason: Reason,
    source: Source,
    dialog: Option<Dialog>,
    error: Option<ErrorDetail>,
}

/// The winning signal of one decision; `dialog_of` names the rule candidate whose dialog goes
/// with it (read by reference, copied only when the state detail changes).
#[derive(Debug, Clone, Copy)]
struct Target {
    state: SemanticState,
    reason: Reason,
    source: Source,
    dialog_of: Option<Source>,
}

/// Reads one slot's screen into states. Create one per process run; feed it from the slot's
/// parser thread.
#[derive(Debug)]
pub struct Classifier {
    rules: Arc<Rules>,
    state: SemanticState,
    detail: StateDetail,
    /// The best screen rule and the best title rule on the last evaluated screen.
    screen_candidate: Option<Candidate>,
    title_candidate: Option<Candidate>,
    /// Last status from Claude Code's session file (`true` = busy).
    session_busy: Option<bool>,
    /// While output is "flowing" (activity signal): when it turns quiet.
    quiet_at: Option<Instant>,
    /// Whether any output has been seen (the activity signal says nothing before).
    seen_output: bool,
    /// Since when a busy state has looked idle (debounce).
    idle_since: Option<Instant>,
    /// The state before the current dialog, returned to when the dialog vanishes with no other signal.
    before_confirming: SemanticState,
    cache: RegionCache,
    /// What Claude Code's hooks said (the second witness).
    hooks: HookWitness,
    /// The screen and the hooks disagree (see [`super::hooks`]).
    drift: Option<Box<Drift>>,
}

impl Classifier {
    /// A classifier in `starting`.
    pub fn new(rules: Arc<Rules>) -> Classifier {
        Classifier {
            rules,
            state: SemanticState::Starting,
            detail: StateDetail::default(),
            screen_candidate: None,
            title_candidate: None,
            session_busy: None,
            quiet_at: None,
            seen_output: false,
            idle_since: None,
            before_confirming: SemanticState::Starting,
            cache: RegionCache::default(),
            hooks: HookWitness::default(),
            drift: None,
        }
    }

    /// After every batch of output has been fed to the screen. `title` = last OSC 0/2 title.
    pub fn on_output(
        &mut self,
        screen: &vt100::Screen,
        title: &str,
        now: Instant,
    ) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        self.seen_output = true;
        if let Some(a) = &self.rules.activity {
            self.quiet_at = Some(now + a.quiet);
        }
        self.evaluate(screen, title);
        let t = self.decide(now);
        self.witness(t, now)
    }

    /// Claude Code's `sessions/<pid>.json` status changed.
    pub fn on_session_status(&mut self, busy: bool, now: Instant) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        self.session_busy = Some(busy);
        if !busy {
            self.hooks.session_idle();
        }
        let t = self.decide(now);
        self.witness(t, now)
    }

    /// One of Claude Code's hooks ran (see [`super::hooks`]).
    pub fn on_hook(&mut self, signal: &HookSignal, now: Instant) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        self.hooks.hear(signal);
        let t = self.decide(now);
        self.witness(t, now)
    }

    /// Called when `now >= next_deadline()` (debounce expiry, shell quiet period).
    pub fn on_tick(
        &mut self,
        screen: &vt100::Screen,
        title: &str,
        now: Instant,
    ) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        self.evaluate(screen, title);
        let t = self.decide(now);
        self.witness(t, now)
    }

    /// Compares the state with the hooks after a decision; a drift that begins or ends is
    /// news even in the same state.
    fn witness(&mut self, t: Option<Transition>, now: Instant) -> Option<Transition> {
        if !self.hooks.heard() || self.state == SemanticState::Starting {
            return t;
        }
        let drift = self
            .hooks
            .compare(self.state, now)
            .map(|(since, screen, hooks)| {
                let ago = now.saturating_duration_since(since).as_millis() as u64;
                Box::new(Drift {
                    screen: screen.as_str().to_string(),
                    hooks: hooks.to_string(),
                    since: crate::supervisor::now_millis().saturating_sub(ago),
                    claude_version: None,
                })
            });
        let same = |a: &Option<Box<Drift>>, b: &Option<Box<Drift>>| match (a, b) {
            (Some(a), Some(b)) => a.screen == b.screen && a.hooks == b.hooks,
            (None, None) => true,
            _ => false,
        };
        if same(&drift, &self.drift) {
            return t;
        }
        self.drift = drift;
        self.detail.drift = self.drift.clone();
        match t {
            Some(mut t) => {
                t.detail.drift = self.drift.clone();
                Some(t)
            }
            None => Some(Transition {
                state: self.state,
                prev: self.state,
                detail: self.detail.clone(),
            }),
        }
    }

    /// The process ended: `exited`, immediately and for good.
    pub fn on_exit(&mut self) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        let prev = self.state;
        self.state = SemanticState::Exited;
        self.detail = StateDetail {
            reason: Some("exit".to_string()),
            ..StateDetail::default()
        };
        self.idle_since = None;
        self.quiet_at = None;
        self.drift = None;
        Some(Transition {
            state: self.state,
            prev,
            detail: self.detail.clone(),
        })
    }

    /// When the caller must call [`Classifier::on_tick`] next; `None` while nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.state == SemanticState::Exited {
            return None;
        }
        let debounce = self.idle_since.map(|t| t + self.rules.idle_hold);
        let drift = self
            .hooks
            .deadline()
            .filter(|_| self.drift.is_none() && self.hooks.heard());
        [debounce, self.quiet_at, drift].into_iter().flatten().min()
    }

    pub fn state(&self) -> SemanticState {
        self.state
    }

    /// Busy, as drawn on the screen, under rules that do not time the output itself: reading
    /// such a screen a little later changes no state but the moment it is seen (a shell's
    /// `quiet_ms` would, so its slots are never read late).
    pub fn busy_on_screen(&self) -> bool {
        self.state.is_busy() && self.rules.activity.is_none()
    }

    pub fn detail(&self) -> &StateDetail {
        &self.detail
    }

    /// Runs the rules over the screen: remembers the best screen rule and the best title rule.
    fn evaluate(&mut self, screen: &vt100::Screen, title: &str) {
        let rules = Arc::clone(&self.rules);
        self.cache.load(screen);
        self.screen_candidate = None;
        self.title_candidate = None;
        for (index, rule) in rules.rules().iter().enumerate() {
            let is_title = rule.region == Region::Title;
            if (is_title && self.title_candidate.is_some())
                || (!is_title && self.screen_candidate.is_some())
            {
                continue;
            }
            let text = self.cache.text(screen, &rules.layout, title, rule.region);
            if !rule.matches(text) {
                continue;
            }
            let error = rule.error_detail(text);
            let dialog = match rule.dialog {
                Some(kind) if rule.state == SemanticState::Confirming => {
                    let (start, end) = self.cache.row_range(screen, &rules.layout, rule.region);
                    let mut dialog = self.dialog_from_rows(start, end, kind);
                    for option in &mut dialog.options {
                        option.meaning = rules.meaning_of(kind, &option.label);
                    }
                    dialog.cancellable = rules.cancellable(self.cache.text(
                        screen,
                        &rules.layout,
                        title,
                        rule.region,
                    ));
                    Some(dialog)
                }
                _ => None,
            };
            let c = Candidate {
                state: rule.state,
                priority: rule.priority,
                reason: Reason::Rule(index),
                source: if is_title {
                    Source::Title
                } else {
                    Source::Screen
                },
                dialog,
                error,
            };
            if is_title {
                self.title_candidate = Some(c);
            } else {
                self.screen_candidate = Some(c);
            }
            if self.title_candidate.is_some() && self.screen_candidate.is_some() {
                break;
            }
        }
    }

    fn dialog_from_rows(&self, start: u16, end: u16, kind: DialogKind) -> Dialog {
        let refs: Vec<&str> = self
            .cache
            .rows(start, end)
            .iter()
            .map(String::as_str)
            .collect();
        let cols = usize::from(self.cache.cols());
        parse_dialog(&refs, cols, kind, &self.rules.layout.prompt_marker)
    }

    /// Combines the candidates and moves the state, honouring the debounce.
    fn decide(&mut self, now: Instant) -> Option<Transition> {
        let starting = self.state == SemanticState::Starting;
        // The best candidate so far with its priority; earlier signals win ties.
        let mut best: Option<(i64, Target)> = None;
        let mut consider = |priority: i64, t: Target| {
            if starting && matches!(t.source, Source::Title | Source::Session) {
                return;
            }
            if best.as_ref().is_none_or(|(p, _)| priority > *p) {
                best = Some((priority, t));
            }
        };
        for c in [&self.screen_candidate, &self.title_candidate]
            .into_iter()
            .flatten()
        {
            let dialog_of = c.dialog.as_ref().map(|_| c.source);
            consider(
                c.priority,
                Target {
                    state: c.state,
                    reason: c.reason,
                    source: c.source,
                    dialog_of,
                },
            );
        }
        if let (Some(priority), Some(busy)) = (self.rules.session_priority, self.session_busy) {
            let state = if busy {
                SemanticState::Thinking
            } else {
                SemanticState::Idle
            };
            let reason = Reason::Named("session-status");
            consider(
                priority,
                Target {
                    state,
                    reason,
                    source: Source::Session,
                    dialog_of: None,
                },
            );
        }
        if let (Some(a), true) = (&self.rules.activity, self.seen_output) {
            let flowing = self.quiet_at.is_some_and(|q| now < q);
            if !flowing {
                self.quiet_at = None;
            }
            let (state, reason) = if flowing {
                (a.state, "output-flowing")
            } else {
                (a.quiet_state, "output-quiet")
            };
            let reason = Reason::Named(reason);
            consider(
                a.priority,
                Target {
                    state,
                    reason,
                    source: Source::Activity,
                    dialog_of: None,
                },
            );
        }

        let target = match best {
            // A busy screen while a hook says a tool runs: the hook names the kind.
            Some((_, t))
                if t.state.is_busy()
                    && t.state != SemanticState::ToolRunning
                    && self.hooks.tool().is_some() =>
            {
                Target {
                    state: SemanticState::ToolRunning,
                    reason: Reason::Named("hook-pre-tool-use"),
                    source: Source::Hooks,
                    dialog_of: None,
                }
            }
            Some((_, t)) => t,
            // A dialog vanished and nothing says what came after: back to what came before it.
            None if self.state == SemanticState::Confirming => Target {
                state: self.before_confirming,
                reason: Reason::Named("dialog-gone"),
                source: Source::Screen,
                dialog_of: None,
            },
            None => {
                self.idle_since = None;
                return None;
            }
        };
        self.apply(target, now)
    }

    fn target_dialog(&self, t: &Target) -> Option<&Dialog> {
        match t.dialog_of {
            Some(Source::Screen) => self.screen_candidate.as_ref()?.dialog.as_ref(),
            Some(Source::Title) => self.title_candidate.as_ref()?.dialog.as_ref(),
            _ => None,
        }
    }

    /// The error detail of the rule behind `t`, when it is an `error` rule.
    fn target_error(&self, t: &Target) -> Option<&ErrorDetail> {
        let candidate = match t.source {
            Source::Screen => self.screen_candidate.as_ref()?,
            Source::Title => self.title_candidate.as_ref()?,
            _ => return None,
        };
        (candidate.reason == t.reason)
            .then_some(candidate.error.as_ref())
            .flatten()
    }

    fn reason_text(&self, reason: Reason) -> String {
        match reason {
            Reason::Rule(i) => self
                .rules
                .rules()
                .get(i)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            Reason::Named(s) => s.to_string(),
        }
    }

    /// In the same state, another dialog (or a moved selection) or another error is still
    /// reported; anything else is not.
    fn same_state_news(&mut self, t: &Target) -> Option<Transition> {
        let detail = match self.state {
            SemanticState::Confirming => {
                let dialog = self.target_dialog(t);
                let redrawing = dialog.is_some_and(|d| d.options.is_empty())
                    && self
                        .detail
                        .dialog
                        .as_ref()
                        .is_some_and(|d| !d.options.is_empty());
                // A dialog that lost its options for one frame is being redrawn: not a change.
                if redrawing || dialog == self.detail.dialog.as_ref() {
                    return None;
                }
                StateDetail {
                    dialog: dialog.cloned(),
                    ..StateDetail::default()
                }
            }
            SemanticState::Error => {
                let error = self.target_error(t).cloned();
                // The countdown to the next retry ticks every second: that alone is no news.
                let without_countdown = |e: &ErrorDetail| ErrorDetail {
                    retry_in_secs: None,
                    ..e.clone()
                };
                if error.as_ref().map(without_countdown)
                    == self.detail.error.as_ref().map(without_countdown)
                {
                    return None;
                }
                StateDetail {
                    error,
                    ..StateDetail::default()
                }
            }
            SemanticState::ToolRunning => {
                let tool = self.hooks.tool();
                if tool.is_none() || tool == self.detail.tool.as_deref() {
                    return None;
                }
                StateDetail {
                    tool: tool.cloned().map(Box::new),
                    ..StateDetail::default()
                }
            }
            _ => return None,
        };
        self.detail = StateDetail {
            reason: Some(self.reason_text(t.reason)),
            drift: self.drift.clone(),
            ..detail
        };
        Some(Transition {
            state: self.state,
            prev: self.state,
            detail: self.detail.clone(),
        })
    }

    fn apply(&mut self, t: Target, now: Instant) -> Option<Transition> {
        let cur = self.state;
        if t.state == cur {
            self.idle_since = None;
            return self.same_state_news(&t);
        }
        // A title/session/activity "busy" says nothing about the kind: keep the screen's.
        if cur.is_busy() && t.state.is_busy() && !matches!(t.source, Source::Screen | Source::Hooks)
        {
            self.idle_since = None;
            return None;
        }
        if cur.is_busy() && t.state == SemanticState::Idle && !self.rules.idle_hold.is_zero() {
            let since = *self.idle_since.get_or_insert(now);
            if now < since + self.rules.idle_hold {
                return None;
            }
        }
        self.idle_since = None;
        if t.state == SemanticState::Confirming {
            self.before_confirming = cur;
        }
        self.state = t.state;
        let dialog = self.target_dialog(&t).cloned();
        let error = self.target_error(&t).cloned();
        let tool = match t.state {
            SemanticState::ToolRunning => self.hooks.tool().cloned().map(Box::new),
            _ => None,
        };
        self.detail = StateDetail {
            dialog,
            error,
            reason: Some(self.reason_text(t.reason)),
            tool,
            drift: self.drift.clone(),
        };
        Some(Transition {
            state: t.state,
            prev: cur,
            detail: self.detail.clone(),
        })
    }
}
