//! Semantic states: reads a slot's vt100 screen (plus window title, Claude Code's session file,
//! output activity and process exit) into a [`SemanticState`](crate::protocol::SemanticState),
//! and parses the dialog a `confirming` program shows.
//!
//! - [`rules`]: the rule files (data, one per [`Profile`](crate::protocol::Profile)), embedded and
//!   overridable from a directory; format in `docs/RULES.md`.
//! - [`classifier`]: the per-slot state machine, driven by the slot's parser thread.
//! - [`dialog`]: dialog parsing, and telling one dialog from another.
//! - `regions`: how a screen is cut into the regions rules read.
//!
//! Use: build a [`RuleBook`] once (`RuleBook::load(dir)`), then per slot
//! `Classifier::new(book.rules(profile))`; call `on_output` after every batch of output,
//! `on_tick` when `next_deadline()` has passed, `on_session_status` and `on_exit` as they happen.

pub mod classifier;
pub mod dialog;
pub mod hooks;
mod regions;
pub mod rules;

pub use classifier::{Classifier, Transition};
pub use dialog::same_dialog;
pub use regions::{composer_text, typed_text_shows};
pub use rules::{embedded_source, Region, Rule, RuleBook, RuleError, Rules};
