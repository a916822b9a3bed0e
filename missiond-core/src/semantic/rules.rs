//! Rule files: the data that tells the classifier what a program's screen means.
//!
//! One TOML file per [`Profile`] is embedded in the binary (`rules/claude-code.toml`,
//! `rules/shell.toml`) and can be replaced by a file of the same name in an override directory,
//! because Claude Code changes its screens every few weeks and users must be able to follow
//! without a rebuild. The format is documented in `docs/RULES.md`.

use crate::protocol::{DialogKind, ErrorDetail, Meaning, Profile, SemanticState};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

const EMBEDDED_CLAUDE_CODE: &str = include_str!("rules/claude-code.toml");
const EMBEDDED_SHELL: &str = include_str!("rules/shell.toml");

/// The embedded default rule file of a profile, e.g. to print it as a starting point for an override.
pub fn embedded_source(profile: Profile) -> &'static str {
    match profile {
        Profile::ClaudeCode => EMBEDDED_CLAUDE_CODE,
        Profile::Shell => EMBEDDED_SHELL,
    }
}

/// The part of the screen (or the window title) a rule reads.
///
/// Scoping rules to a region is what keeps transcript prose from triggering them: a model answer
/// that quotes "Do you want to proceed?" sits above the prompt box, not in a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// Every row of the screen.
    Screen,
    /// The block of non-blank rows just above the prompt box (spinner, task list, status).
    AbovePrompt,
    /// The rows inside the prompt box, between its two rules.
    PromptBox,
    /// The rows below the prompt box.
    Footer,
    /// With no prompt box on screen: the rows below the lowest horizontal rule.
    Dialog,
    /// The row the cursor is on.
    CursorLine,
    /// The window title (OSC 0/2).
    Title,
}

impl Region {
    pub const ALL: [Region; 7] = [
        Region::Screen,
        Region::AbovePrompt,
        Region::PromptBox,
        Region::Footer,
        Region::Dialog,
        Region::CursorLine,
        Region::Title,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Screen => "screen",
            Region::AbovePrompt => "above_prompt",
            Region::PromptBox => "prompt_box",
            Region::Footer => "footer",
            Region::Dialog => "dialog",
            Region::CursorLine => "cursor_line",
            Region::Title => "title",
        }
    }

    pub fn parse(s: &str) -> Option<Region> {
        Region::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One named rule: when its patterns match its region, the program is in `state`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub region: Region,
    pub state: SemanticState,
    /// The dialog kind reported with a `confirming` state.
    pub dialog: Option<DialogKind>,
    pub priority: i64,
    /// With state `error`: the reason reported in `stateDetail.error`.
    pub error: Option<String>,
    all: Vec<Regex>,
    any: Vec<Regex>,
    none: Vec<Regex>,
}

impl Rule {
    /// True when every `all` pattern, at least one `any` pattern (if there are any) and no
    /// `none` pattern matches `text`.
    pub fn matches(&self, text: &str) -> bool {
        self.all.iter().all(|r| r.is_match(text))
            && (self.any.is_empty() || self.any.iter().any(|r| r.is_match(text)))
            && !self.none.iter().any(|r| r.is_match(text))
    }

    /// The error detail of an `error` rule that matched `text`: its reason, plus the named groups
    /// `message`, `attempt`, `of` and `retry_in_secs` of the first pattern that captures them.
    pub fn error_detail(&self, text: &str) -> Option<ErrorDetail> {
        let reason = self.error.clone()?;
        let mut detail = ErrorDetail {
            reason,
            ..ErrorDetail::default()
        };
        let caps = self
            .all
            .iter()
            .chain(&self.any)
            .filter(|r| r.capture_names().flatten().next().is_some())
            .find_map(|r| r.captures(text));
        if let Some(caps) = caps {
            let text = |name: &str| caps.name(name).map(|m| m.as_str().trim().to_string());
            let number = |name: &str| text(name).and_then(|t| t.parse().ok());
            detail.message = text("message");
            detail.attempt = number("attempt");
            detail.of = number("of");
            detail.retry_in_secs = number("retry_in_secs");
        }
        Some(detail)
    }
}

/// What answering with an option means (`[[meaning]]`): the first entry, in file order, whose
/// `label` matches an option's label gives that option its meaning.
#[derive(Debug, Clone)]
pub struct MeaningRule {
    /// `None` for `meaning = "none"`: labels that look like yes but are not (e.g. "Yes, and
    /// switch to auto mode"), listed before the entry they would otherwise match.
    pub meaning: Option<Meaning>,
    label: Regex,
    /// The dialog kinds it applies to; empty for every kind.
    dialogs: Vec<DialogKind>,
}

/// How the screen is cut into regions.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The character of the horizontal rules that frame the prompt box and dialogs.
    pub rule_char: String,
    /// The character in column 0 of the prompt box's first row.
    pub prompt_marker: String,
    /// At most this many rows form the `above_prompt` region.
    pub above_prompt_rows: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            rule_char: "─".to_string(),
            prompt_marker: "❯".to_string(),
            above_prompt_rows: 12,
        }
    }
}

/// Output activity as a signal: `state` while output flows, `quiet_state` after `quiet` without.
#[derive(Debug, Clone)]
pub struct Activity {
    pub state: SemanticState,
    pub quiet_state: SemanticState,
    pub quiet: Duration,
    pub priority: i64,
}

/// The parsed, compiled rules of one profile.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Where the rules came from (`embedded:claude-code.toml` or a file path).
    pub origin: String,
    pub layout: Layout,
    /// How long busy must look idle before the state says idle.
    pub idle_hold: Duration,
    /// Weight of Claude Code's session-file status; `None` ignores it.
    pub session_priority: Option<i64>,
    pub activity: Option<Activity>,
    /// Highest priority first; equal priorities keep file order.
    pub(crate) rules: Vec<Rule>,
    /// Option meanings, in file order.
    meanings: Vec<MeaningRule>,
    /// Matches a dialog's rows when Escape cancels (refuses) it.
    cancel: Option<Regex>,
}

/// A rule file that cannot be used, with the place of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}")]
pub struct RuleError {
    pub origin: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    layout: Option<RawLayout>,
    #[serde(default)]
    timing: Option<RawTiming>,
    #[serde(default)]
    session: Option<RawSession>,
    #[serde(default)]
    activity: Option<RawActivity>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    meaning: Vec<RawMeaning>,
    #[serde(default)]
    answers: Option<RawAnswers>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeaning {
    meaning: Spanned<String>,
    label: Spanned<String>,
    #[serde(default)]
    dialogs: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswers {
    cancel: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    rule_char: Option<Spanned<String>>,
    prompt_marker: Option<Spanned<String>>,
    above_prompt_rows: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiming {
    idle_hold_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    priority: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActivity {
    state: Spanned<String>,
    quiet_state: Option<Spanned<String>>,
    quiet_ms: u64,
    priority: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    region: Spanned<String>,
    state: Spanned<String>,
    #[serde(default)]
    dialog: Option<Spanned<String>>,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    all: Vec<Spanned<String>>,
    #[serde(default)]
    any: Vec<Spanned<String>>,
    #[serde(default)]
    none: Vec<Spanned<String>>,
    #[serde(default)]
    error: Option<Spanned<String>>,
}

impl Rules {
    /// Parses and compiles a rule file. `origin` names it in error messages.
    pub fn parse(source: &str, origin: &str) -> Result<Rules, RuleError> {
        let err = |span: Option<Range<usize>>, message: String| {
            let (line, column) = line_col(source, span.map(|s| s.start).unwrap_or(0));
            RuleError {
                origin: origin.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: RawFile =
            toml::from_str(source).map_err(|e| err(e.span(), e.message().trim().to_string()))?;

        let layout = match raw.layout {
            Some(l) => Layout {
                rule_char: one_char(l.rule_char, "─").map_err(|(s, m)| err(Some(s), m))?,
                prompt_marker: one_char(l.prompt_marker, "❯").map_err(|(s, m)| err(Some(s), m))?,
                above_prompt_rows: l.above_prompt_rows.unwrap_or(12),
            },
            None => Layout::default(),
        };
        let idle_hold =
            Duration::from_millis(raw.timing.and_then(|t| t.idle_hold_ms).unwrap_or(1000));
        let activity = match raw.activity {
            Some(a) => Some(Activity {
                state: rule_state(&a.state).map_err(|m| err(Some(a.state.span()), m))?,
                quiet_state: match &a.quiet_state {
                    Some(q) => rule_state(q).map_err(|m| err(Some(q.span()), m))?,
                    None => SemanticState::Idle,
                },
                quiet: Duration::from_millis(a.quiet_ms),
                priority: a.priority,
            }),
            None => None,
        };

        let mut rules = Vec::with_capacity(raw.rule.len());
        let mut seen: HashSet<String> = HashSet::new();
        for spanned in raw.rule {
            let rule_span = spanned.span();
            let r = spanned.into_inner();
            let name = r.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(err(Some(r.name.span()), "rule name is empty".into()));
            }
            if !seen.insert(name.clone()) {
                return Err(err(
                    Some(r.name.span()),
                    format!("duplicate rule name `{name}`"),
                ));
            }
            let region = Region::parse(r.region.get_ref()).ok_or_else(|| {
                let names: Vec<&str> = Region::ALL.iter().map(|r| r.as_str()).collect();
                err(
                    Some(r.region.span()),
                    format!(
                        "unknown region `{}` (expected one of: {})",
                        r.region.get_ref(),
                        names.join(", ")
                    ),
                )
            })?;
            let state = rule_state(&r.state).map_err(|m| err(Some(r.state.span()), m))?;
            let dialog = match &r.dialog {
                Some(d) => Some(dialog_kind(d.get_ref()).ok_or_else(|| {
                    err(
                        Some(d.span()),
                        format!(
                            "unknown dialog kind `{}` (expected permission, trust, question, api_key or other)",
                            d.get_ref()
                        ),
                    )
                })?),
                None if state == SemanticState::Confirming => Some(DialogKind::Other),
                None => None,
            };
            if r.all.is_empty() && r.any.is_empty() {
                return Err(err(
                    Some(rule_span),
                    format!("rule `{name}` has no patterns: give `all` or `any`"),
                ));
            }
            let error = match &r.error {
                Some(e) if state != SemanticState::Error => {
                    return Err(err(
                        Some(e.span()),
                        format!("rule `{name}` names an error but its state is not `error`"),
                    ))
                }
                Some(e) => Some(e.get_ref().clone()),
                None if state == SemanticState::Error => Some(name.clone()),
                None => None,
            };
            let compile = |pats: &[Spanned<String>]| -> Result<Vec<Regex>, RuleError> {
                pats.iter()
                    .map(|p| {
                        pattern(p).map_err(|e| {
                            err(Some(p.span()), format!("bad pattern in rule `{name}`: {e}"))
                        })
                    })
                    .collect()
            };
            rules.push(Rule {
                all: compile(&r.all)?,
                any: compile(&r.any)?,
                none: compile(&r.none)?,
                name,
                region,
                state,
                dialog,
                priority: r.priority,
                error,
            });
        }
        // Stable: equal priorities keep the order of the file.
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));

        let mut meanings = Vec::with_capacity(raw.meaning.len());
        for m in raw.meaning {
            let meaning = match (
                m.meaning.get_ref().as_str(),
                Meaning::parse(m.meaning.get_ref()),
            ) {
                (_, Some(meaning)) => Some(meaning),
                ("none", None) => None,
                (other, None) => {
                    return Err(err(
                        Some(m.meaning.span()),
                        format!("unknown meaning `{other}` (expected yes, always, no or none)"),
                    ))
                }
            };
            let label = pattern(&m.label)
                .map_err(|e| err(Some(m.label.span()), format!("bad label pattern: {e}")))?;
            let dialogs = m
                .dialogs
                .iter()
                .map(|d| {
                    dialog_kind(d.get_ref()).ok_or_else(|| {
                        err(
                            Some(d.span()),
                            format!("unknown dialog kind `{}`", d.get_ref()),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            meanings.push(MeaningRule {
                meaning,
                label,
                dialogs,
            });
        }
        let cancel = match raw.answers.and_then(|a| a.cancel) {
            Some(c) => Some(
                pattern(&c).map_err(|e| err(Some(c.span()), format!("bad cancel pattern: {e}")))?,
            ),
            None => None,
        };

        Ok(Rules {
            origin: origin.to_string(),
            layout,
            idle_hold,
            session_priority: raw.session.map(|s| s.priority),
            activity,
            rules,
            meanings,
            cancel,
        })
    }

    /// The embedded defaults of a profile.
    pub fn embedded(profile: Profile) -> Rules {
        let origin = format!("embedded:{}.toml", profile.as_str());
        match Rules::parse(embedded_source(profile), &origin) {
            Ok(r) => r,
            // Unreachable while the unit tests pass; never take the daemon down over it.
            Err(e) => {
                tracing::error!("{e}");
                Rules::empty(&origin)
            }
        }
    }

    fn empty(origin: &str) -> Rules {
        Rules {
            origin: origin.to_string(),
            layout: Layout::default(),
            idle_hold: Duration::from_millis(1000),
            session_priority: None,
            activity: None,
            rules: Vec::new(),
            meanings: Vec::new(),
            cancel: None,
        }
    }

    /// The rules, highest priority first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What answering a `kind` dialog with an option labelled `label` means.
    pub fn meaning_of(&self, kind: DialogKind, label: &str) -> Option<Meaning> {
        self.meanings
            .iter()
            .find(|m| {
                (m.dialogs.is_empty() || m.dialogs.contains(&kind)) && m.label.is_match(label)
            })
            .and_then(|m| m.meaning)
    }

    /// True when a dialog whose rows read `text` says Escape cancels it.
    pub fn cancellable(&self, text: &str) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_match(text))
    }
}

/// A rule file's regular expression: multi-line, so `^` and `$` match at each row.
fn pattern(p: &Spanned<String>) -> Result<Regex, regex::Error> {
    RegexBuilder::new(p.get_ref()).multi_line(true).build()
}

fn rule_state(s: &Spanned<String>) -> Result<SemanticState, String> {
    match SemanticState::parse(s.get_ref()) {
        Some(SemanticState::Exited) => {
            Err("state `exited` comes only from the process ending, not from a rule".into())
        }
        Some(st) => Ok(st),
        None => Err(format!(
            "unknown state `{}` (expected idle, thinking, tool_running, responding, confirming, error or starting)",
            s.get_ref()
        )),
    }
}

fn dialog_kind(s: &str) -> Option<DialogKind> {
    Some(match s {
        "permission" => DialogKind::Permission,
        "trust" => DialogKind::Trust,
        "question" => DialogKind::Question,
        "api_key" => DialogKind::ApiKey,
        "other" => DialogKind::Other,
        _ => return None,
    })
}

fn one_char(v: Option<Spanned<String>>, default: &str) -> Result<String, (Range<usize>, String)> {
    match v {
        None => Ok(default.to_string()),
        Some(s) if s.get_ref().chars().count() == 1 => Ok(s.get_ref().clone()),
        Some(s) => Err((
            s.span(),
            format!("expected exactly one character, got `{}`", s.get_ref()),
        )),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// The rules of every profile.
#[derive(Debug, Clone)]
pub struct RuleBook {
    claude_code: Arc<Rules>,
    shell: Arc<Rules>,
}

impl RuleBook {
    /// The embedded defaults of every profile.
    pub fn embedded() -> RuleBook {
        RuleBook {
            claude_code: Arc::new(Rules::embedded(Profile::ClaudeCode)),
            shell: Arc::new(Rules::embedded(Profile::Shell)),
        }
    }

    /// Embedded defaults, each replaced by `<dir>/<profile>.toml` when that file exists and parses.
    /// A broken file yields a warning naming file, line and problem; its embedded default stays.
    pub fn load(override_dir: Option<&Path>) -> (RuleBook, Vec<String>) {
        let mut book = RuleBook::embedded();
        let mut warnings = Vec::new();
        let Some(dir) = override_dir else {
            return (book, warnings);
        };
        for profile in [Profile::ClaudeCode, Profile::Shell] {
            let path = dir.join(format!("{}.toml", profile.as_str()));
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    warnings.push(format!(
                        "{}: cannot read rule file: {e}; using the embedded {} rules",
                        path.display(),
                        profile.as_str()
                    ));
                    continue;
                }
            };
            match Rules::parse(&source, &path.display().to_string()) {
                Ok(rules) => book.set(profile, Arc::new(rules)),
                Err(e) => warnings.push(format!(
                    "{e}; using the embedded {} rules",
                    profile.as_str()
                )),
            }
        }
        (book, warnings)
    }

    /// The rules of a profile (shared: cloning the `Arc` is cheap).
    pub fn rules(&self, profile: Profile) -> Arc<Rules> {
        match profile {
            Profile::ClaudeCode => Arc::clone(&self.claude_code),
            Profile::Shell => Arc::clone(&self.shell),
        }
    }

    fn set(&mut self, profile: Profile, rules: Arc<Rules>) {
        match profile {
            Profile::ClaudeCode => self.claude_code = rules,
            Profile::Shell => self.shell = rules,
        }
    }
}

impl Default for RuleBook {
    fn default() -> Self {
        RuleBook::embedded()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_files_parse() {
        for p in [Profile::ClaudeCode, Profile::Shell] {
            let r = Rules::parse(embedded_source(p), p.as_str());
            assert!(r.is_ok(), "{:?}", r.err());
        }
    }

    #[test]
    fn errors_carry_line_and_column() {
        let src = "[[rule]]\nname = \"x\"\nregion = \"nowhere\"\nstate = \"idle\"\nany = ['a']\n";
        let e = Rules::parse(src, "f.toml")
            .err()
            .map(|e| (e.line, e.column, e.message));
        let (line, column, message) = e.unwrap_or_default();
        assert_eq!((line, column), (3, 10));
        assert!(message.contains("unknown region `nowhere`"), "{message}");

        let e = Rules::parse(
            "[[rule]]\nname = \"x\"\nregion = \"title\"\nstate = \"idle\"\nany = ['(']\n",
            "f.toml",
        );
        assert_eq!(e.err().map(|e| e.line), Some(5));

        let e = Rules::parse("[[rule]\n", "f.toml");
        assert_eq!(e.err().map(|e| e.line), Some(1));
    }

    #[test]
    fn sorted_by_priority_stable() {
        let src = "[[rule]]\nname='a'\nregion='title'\nstate='idle'\nany=['a']\npriority=1\n\
                   [[rule]]\nname='b'\nregion='title'\nstate='idle'\nany=['a']\npriority=5\n\
                   [[rule]]\nname='c'\nregion='title'\nstate='idle'\nany=['a']\npriority=1\n";
        let r = Rules::parse(src, "t")
            .map(|r| r.rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>());
        assert_eq!(
            r.ok(),
            Some(vec!["b".to_string(), "a".to_string(), "c".to_string()])
        );
    }

    #[test]
    fn meanings_are_read_by_name_and_unknown_ones_refused() {
        let src = "[[meaning]]\nlabel='Yes, and'\nmeaning='none'\n\
                   [[meaning]]\nlabel='^Yes'\nmeaning='yes'\n";
        let r = Rules::parse(src, "t").map(|r| {
            r.meanings
                .iter()
                .map(|m| m.meaning.map(Meaning::as_str))
                .collect::<Vec<_>>()
        });
        assert_eq!(r.ok(), Some(vec![None, Some("yes")]));
        let e = Rules::parse("[[meaning]]\nlabel='x'\nmeaning='maybe'\n", "t");
        let message = e.err().map(|e| e.message).unwrap_or_default();
        assert!(message.contains("unknown meaning `maybe`"), "{message}");
    }
}
