//! The per-slot state machine: combines the signals (exit, screen rules, window title, session
//! file, output activity) into one [`SemanticState`] and reports each change once.
//!
//! Every signal becomes a candidate with a priority (rules carry theirs; the session file and
//! output activity get theirs from the rule file); the highest wins. Busy -> idle is held for the
//! profile's `idle_hold` (the spinner blinks between tool calls), entering `confirming` or
//! `exited` is immediate. Timing is driven by the caller through [`Classifier::next_deadline`]:
//! nothing runs on a timer while the state is stable.

use super::dialog::parse_dialog;
use super::regions::{find_layout, read_row, RegionCache};
use super::rules::{Region, Rules};
use crate::protocol::{SemanticState, StateDetail};
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
}

#[derive(Debug, Clone)]
struct Candidate {
    state: SemanticState,
    priority: i64,
    reason: String,
    source: Source,
    dialog: Option<crate::protocol::Dialog>,
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
    lines: Vec<String>,
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
            lines: Vec::new(),
        }
    }

    /// After every batch of output has been fed to the screen. `title` = last OSC 0/2 title.
    pub fn on_output(&mut self, screen: &vt100::Screen, title: &str, now: Instant) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        self.seen_output = true;
        if let Some(a) = &self.rules.activity {
            self.quiet_at = Some(now + a.quiet);
        }
        self.evaluate(screen, title);
        self.decide(now)
    }

    /// Claude Code's `sessions/<pid>.json` status changed.
    pub fn on_session_status(&mut self, busy: bool, now: Instant) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        self.session_busy = Some(busy);
        self.decide(now)
    }

    /// Called when `now >= next_deadline()` (debounce expiry, shell quiet period).
    pub fn on_tick(&mut self, screen: &vt100::Screen, title: &str, now: Instant) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        self.evaluate(screen, title);
        self.decide(now)
    }

    /// The process ended: `exited`, immediately and for good.
    pub fn on_exit(&mut self) -> Option<Transition> {
        if self.state == SemanticState::Exited {
            return None;
        }
        let prev = self.state;
        self.state = SemanticState::Exited;
        self.detail = StateDetail { dialog: None, reason: Some("exit".to_string()) };
        self.idle_since = None;
        self.quiet_at = None;
        Some(Transition { state: self.state, prev, detail: self.detail.clone() })
    }

    /// When the caller must call [`Classifier::on_tick`] next; `None` while nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.state == SemanticState::Exited {
            return None;
        }
        let debounce = self.idle_since.map(|t| t + self.rules.idle_hold);
        match (debounce, self.quiet_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn state(&self) -> SemanticState {
        self.state
    }

    pub fn detail(&self) -> &StateDetail {
        &self.detail
    }

    /// Runs the rules over the screen: remembers the best screen rule and the best title rule.
    fn evaluate(&mut self, screen: &vt100::Screen, title: &str) {
        let rules = Arc::clone(&self.rules);
        self.cache.reset(find_layout(screen, &rules.layout));
        self.screen_candidate = None;
        self.title_candidate = None;
        for rule in rules.rules() {
            let is_title = rule.region == Region::Title;
            if (is_title && self.title_candidate.is_some()) || (!is_title && self.screen_candidate.is_some()) {
                continue;
            }
            if !rule.matches(self.cache.text(screen, &rules.layout, title, rule.region)) {
                continue;
            }
            let dialog = match rule.dialog {
                Some(kind) if rule.state == SemanticState::Confirming => {
                    let (start, end) = self.cache.row_range(screen, &rules.layout, rule.region);
                    Some(self.dialog_from_rows(screen, start, end, kind))
                }
                _ => None,
            };
            let c = Candidate {
                state: rule.state,
                priority: rule.priority,
                reason: rule.name.clone(),
                source: if is_title { Source::Title } else { Source::Screen },
                dialog,
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

    fn dialog_from_rows(
        &mut self,
        screen: &vt100::Screen,
        start: u16,
        end: u16,
        kind: crate::protocol::DialogKind,
    ) -> crate::protocol::Dialog {
        let n = usize::from(end.saturating_sub(start));
        if self.lines.len() < n {
            self.lines.resize_with(n, String::new);
        }
        for (i, r) in (start..end).enumerate() {
            self.lines[i].clear();
            read_row(screen, r, false, &mut self.lines[i]);
        }
        let refs: Vec<&str> = self.lines[..n].iter().map(String::as_str).collect();
        let cols = usize::from(screen.size().1);
        parse_dialog(&refs, cols, kind, &self.rules.layout.prompt_marker)
    }

    /// Combines the candidates and moves the state, honouring the debounce.
    fn decide(&mut self, now: Instant) -> Option<Transition> {
        let mut best: Option<Candidate> = None;
        let mut consider = |c: Candidate, starting: bool| {
            if starting && matches!(c.source, Source::Title | Source::Session) {
                return;
            }
            if best.as_ref().is_none_or(|b| c.priority > b.priority) {
                best = Some(c);
            }
        };
        let starting = self.state == SemanticState::Starting;
        if let Some(c) = &self.screen_candidate {
            consider(c.clone(), starting);
        }
        if let Some(c) = &self.title_candidate {
            consider(c.clone(), starting);
        }
        if let (Some(priority), Some(busy)) = (self.rules.session_priority, self.session_busy) {
            consider(
                Candidate {
                    state: if busy { SemanticState::Thinking } else { SemanticState::Idle },
                    priority,
                    reason: "session-status".to_string(),
                    source: Source::Session,
                    dialog: None,
                },
                starting,
            );
        }
        if let (Some(a), true) = (&self.rules.activity, self.seen_output) {
            let flowing = self.quiet_at.is_some_and(|q| now < q);
            if !flowing {
                self.quiet_at = None;
            }
            consider(
                Candidate {
                    state: if flowing { a.state } else { a.quiet_state },
                    priority: a.priority,
                    reason: if flowing { "output-flowing" } else { "output-quiet" }.to_string(),
                    source: Source::Activity,
                    dialog: None,
                },
                starting,
            );
        }

        let target = match best {
            Some(c) => c,
            // A dialog vanished and nothing says what came after: back to what came before it.
            None if self.state == SemanticState::Confirming => Candidate {
                state: self.before_confirming,
                priority: 0,
                reason: "dialog-gone".to_string(),
                source: Source::Screen,
                dialog: None,
            },
            None => {
                self.idle_since = None;
                return None;
            }
        };
        self.apply(target, now)
    }

    fn apply(&mut self, target: Candidate, now: Instant) -> Option<Transition> {
        let cur = self.state;
        if target.state == cur {
            self.idle_since = None;
            let redrawing = target.dialog.as_ref().is_some_and(|d| d.options.is_empty())
                && self.detail.dialog.as_ref().is_some_and(|d| !d.options.is_empty());
            // A dialog that lost its options for one frame is being redrawn: not a change.
            if cur == SemanticState::Confirming && !redrawing && target.dialog != self.detail.dialog {
                // Same state, different dialog (a new one, or the selection moved): report it.
                self.detail = StateDetail { dialog: target.dialog, reason: Some(target.reason) };
                return Some(Transition { state: cur, prev: cur, detail: self.detail.clone() });
            }
            return None;
        }
        // A title/session/activity "busy" says nothing about the kind: keep the screen's.
        if cur.is_busy() && target.state.is_busy() && target.source != Source::Screen {
            self.idle_since = None;
            return None;
        }
        if cur.is_busy() && target.state == SemanticState::Idle && !self.rules.idle_hold.is_zero() {
            let since = *self.idle_since.get_or_insert(now);
            if now < since + self.rules.idle_hold {
                return None;
            }
        }
        self.idle_since = None;
        if target.state == SemanticState::Confirming {
            self.before_confirming = cur;
        }
        self.state = target.state;
        self.detail = StateDetail { dialog: target.dialog, reason: Some(target.reason) };
        Some(Transition { state: self.state, prev: cur, detail: self.detail.clone() })
    }
}
