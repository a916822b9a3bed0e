//! Dialogs: reading a dialog's title, question, body and options from its screen rows, and
//! telling one dialog from another (moving the selection redraws a dialog but does not make it
//! another one). Answering is `Slot::confirm`'s (supervisor/interact.rs): one key at a time, read back.
//!
//! The parser is generic over Claude Code's dialogs (permission, trust, API key, questions): a
//! title line first, `╌` rules around a body, a question ending in `?`, then a list of options
//! with `❯` on the selected one, numbered (`❯ 1. Yes`) or not (`❯ No, exit`).

use crate::protocol::{Dialog, DialogKind, DialogOption};

/// True when two dialogs ask the same thing (kind, title, question, body, option labels),
/// whichever option is selected.
pub fn same_dialog(a: &Dialog, b: &Dialog) -> bool {
    a.kind == b.kind
        && a.title == b.title
        && a.question == b.question
        && a.body == b.body
        && a.options.len() == b.options.len()
        && a.options
            .iter()
            .zip(&b.options)
            .all(|(x, y)| x.n == y.n && x.label == y.label)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    /// A horizontal rule: `─` (solid) or `╌` (dashed, around a dialog's body).
    Rule {
        dashed: bool,
    },
    Text,
}

fn line_kind(line: &str) -> LineKind {
    let t = line.trim();
    if t.is_empty() {
        return LineKind::Blank;
    }
    if t.chars().count() >= 3 && t.chars().all(|c| matches!(c, '─' | '━' | '═')) {
        return LineKind::Rule { dashed: false };
    }
    if t.chars().count() >= 3 && t.chars().all(|c| matches!(c, '╌' | '┄' | '┈' | '╍')) {
        return LineKind::Rule { dashed: true };
    }
    LineKind::Text
}

/// The number of an option line (`❯ 1. Yes`, `  4. Chat about this`), with or without the
/// selection `marker`; `None` for any other line.
pub(crate) fn option_number(line: &str, marker: &str) -> Option<u32> {
    numbered(option_text(line, marker).0).map(|(n, _)| n)
}

/// `1. Label` (after the marker is removed): the number and the label.
fn numbered(text: &str) -> Option<(u32, &str)> {
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    if digits == 0 {
        return None;
    }
    let rest = text[digits..].strip_prefix('.')?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let n = text[..digits].parse().ok()?;
    Some((n, rest.trim()))
}

/// The text of an option line without indent and `❯`; whether it carried the marker.
fn option_text<'a>(line: &'a str, marker: &str) -> (&'a str, bool) {
    let t = line.trim_start();
    match t.strip_prefix(marker) {
        Some(rest) => (rest.trim_start(), true),
        None => (t, false),
    }
}

/// Parses a dialog from the rows of its region. `cols` is the screen width (to rejoin option
/// labels that were word-wrapped), `marker` the selection mark (`❯`).
pub(crate) fn parse_dialog(lines: &[&str], cols: usize, kind: DialogKind, marker: &str) -> Dialog {
    let kinds: Vec<LineKind> = lines.iter().map(|l| line_kind(l)).collect();
    let is_text = |i: usize| kinds[i] == LineKind::Text;
    // A rule followed by a numbered option splits one option list (AskUserQuestion draws a `─`
    // rule above its `4. Chat about this`): it neither opens nor ends the options.
    let splits_options = |i: usize| {
        matches!(kinds[i], LineKind::Rule { .. })
            && (i + 1..lines.len())
                .find(|&j| kinds[j] != LineKind::Blank)
                .is_some_and(|j| is_text(j) && option_number(lines[j], marker).is_some())
    };

    // The selected option: the last text line that starts with the marker.
    let selected = (0..lines.len()).rev().find(|&i| {
        is_text(i) && option_text(lines[i], marker).1 && !option_text(lines[i], marker).0.is_empty()
    });

    let mut options: Vec<DialogOption> = Vec::new();
    let mut option_lines: Vec<usize> = Vec::new();
    // The options live after the last rule above the selected line (or anywhere, if none is selected).
    let area_start = selected
        .and_then(|s| {
            (0..s)
                .rev()
                .find(|&i| matches!(kinds[i], LineKind::Rule { .. }) && !splits_options(i))
                .map(|i| i + 1)
        })
        .unwrap_or(0);
    let numbered_selected =
        selected.is_some_and(|s| numbered(option_text(lines[s], marker).0).is_some());

    if numbered_selected || selected.is_none() {
        // Numbered options; wrapped label lines are joined, description lines are skipped.
        let mut prev_len: Option<usize> = None;
        for i in area_start..lines.len() {
            match kinds[i] {
                LineKind::Blank => prev_len = None,
                LineKind::Rule { .. } => {
                    if !options.is_empty() && !splits_options(i) {
                        break;
                    }
                    prev_len = None;
                }
                LineKind::Text => {
                    let (text, marked) = option_text(lines[i], marker);
                    if let Some((n, label)) = numbered(text) {
                        options.push(DialogOption {
                            n,
                            label: label.to_string(),
                            selected: marked,
                            meaning: None,
                        });
                        option_lines.push(i);
                        prev_len = Some(lines[i].chars().count());
                    } else if let (Some(len), Some(last)) = (prev_len, options.last_mut()) {
                        let first_word = text.split_whitespace().next().unwrap_or("");
                        // Word wrap: the next word did not fit on the previous row.
                        if len + 1 + first_word.chars().count() >= cols.saturating_sub(2) {
                            last.label.push(' ');
                            last.label.push_str(text.trim());
                            prev_len = Some(lines[i].chars().count());
                        } else {
                            prev_len = None;
                        }
                    }
                }
            }
        }
    } else if let Some(s) = selected {
        // Unnumbered options: the block of text lines around the selected one.
        let mut start = s;
        while start > 0 && is_text(start - 1) {
            start -= 1;
        }
        let mut end = s + 1;
        while end < lines.len() && is_text(end) {
            end += 1;
        }
        for (k, i) in (start..end).enumerate() {
            let (text, marked) = option_text(lines[i], marker);
            options.push(DialogOption {
                n: k as u32 + 1,
                label: text.trim().to_string(),
                selected: marked,
                meaning: None,
            });
            option_lines.push(i);
        }
    }

    let options_start = option_lines.first().copied().unwrap_or(lines.len());

    // Paragraphs (runs of text lines) before the options, last first; the question is the
    // nearest one with a `?`, cut after its last `?`.
    let mut question = String::new();
    let mut question_start = options_start;
    let mut i = options_start;
    while i > 0 {
        if !is_text(i - 1) {
            i -= 1;
            continue;
        }
        let end = i;
        let mut start = i - 1;
        while start > 0 && is_text(start - 1) {
            start -= 1;
        }
        let para = lines[start..end]
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(q) = para.rfind('?') {
            question = para[..=q].to_string();
            question_start = start;
            break;
        }
        i = start;
    }

    // Title: the first text line, unless it already is the question or an option.
    let title_line = (0..lines.len())
        .find(|&i| is_text(i))
        .filter(|&t| t < question_start && t < options_start);
    let title = title_line
        .map(|t| lines[t].trim().trim_end_matches(':').trim_end().to_string())
        .unwrap_or_default();

    // Body: what lies between the first two dashed rules; else the text between title and question.
    let dashed: Vec<usize> = (0..lines.len())
        .filter(|&i| kinds[i] == LineKind::Rule { dashed: true })
        .take(2)
        .collect();
    let text_lines = |from: usize, to: usize| {
        lines[from..to.max(from)]
            .iter()
            .filter(|l| line_kind(l) == LineKind::Text)
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let body = if dashed.len() == 2 {
        dedent(&lines[dashed[0] + 1..dashed[1]])
    } else {
        let from = title_line.map(|t| t + 1).unwrap_or(0);
        match text_lines(from, question_start.min(options_start)) {
            // A dialog that opens with its question (2.0.x trust: "Do you trust the files in
            // this folder?", then the folder and a warning) has its body below the question.
            body if body.is_empty() && !question.is_empty() => {
                let question_end = (question_start..options_start)
                    .find(|&i| !is_text(i))
                    .unwrap_or(options_start);
                text_lines(question_end, options_start)
            }
            body => body,
        }
    };

    Dialog {
        kind,
        title,
        question,
        body,
        options,
        cancellable: false,
    }
}

/// Joins lines, removing their common indent and trailing blank lines.
fn dedent(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let mut out = lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    let lead = out.len() - out.trim_start_matches('\n').len();
    out.drain(..lead);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_label_is_joined_and_description_skipped() {
        let lines = [
            " Do you want to go?",
            " ❯ 1. Yes, and switch to accept edits (auto-approve file edits",
            "    and common file commands)",
            "   2. No",
            "      a description",
            "",
            " Esc to cancel",
        ];
        let d = parse_dialog(&lines, 64, DialogKind::Permission, "❯");
        assert_eq!(d.question, "Do you want to go?");
        assert_eq!(d.options.len(), 2);
        assert_eq!(
            d.options[0].label,
            "Yes, and switch to accept edits (auto-approve file edits and common file commands)"
        );
        assert_eq!(d.options[1].label, "No");
        assert!(d.options[0].selected && !d.options[1].selected);
    }

    #[test]
    fn question_options_split_by_a_rule_are_one_list() {
        // AskUserQuestion in Claude Code 2.1.330 (the region below the rule that opens it).
        let rule = "─".repeat(60);
        let lines = [
            " ☐ Colour",
            "",
            "Which colour do you like?",
            "",
            "❯ 1. Red",
            "     Choose Red",
            "  2. Blue",
            "     Choose Blue",
            "  3. Type something.",
            rule.as_str(),
            "  4. Chat about this",
            "",
            "Enter to select · ↑/↓ to navigate · Esc to cancel",
        ];
        let d = parse_dialog(&lines, 60, DialogKind::Question, "❯");
        assert_eq!(d.title, "☐ Colour");
        assert_eq!(d.question, "Which colour do you like?");
        let labels: Vec<&str> = d.options.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(
            labels,
            ["Red", "Blue", "Type something.", "Chat about this"]
        );
        assert_eq!(
            d.options.iter().map(|o| o.n).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(d.options[0].selected);

        // The selection on the option below the rule: still the whole list.
        let mut moved = lines;
        moved[4] = "  1. Red";
        moved[10] = "❯ 4. Chat about this";
        let m = parse_dialog(&moved, 60, DialogKind::Question, "❯");
        assert!(same_dialog(&d, &m), "{m:?}");
        assert!(m.options[3].selected && !m.options[0].selected);
    }

    #[test]
    fn same_dialog_ignores_the_selection() {
        let mk = |sel: usize| Dialog {
            kind: DialogKind::Other,
            title: String::new(),
            question: String::new(),
            body: String::new(),
            cancellable: false,
            options: (0..3)
                .map(|i| DialogOption {
                    n: i as u32 + 1,
                    label: format!("o{i}"),
                    selected: i == sel,
                    meaning: None,
                })
                .collect(),
        };
        assert!(same_dialog(&mk(0), &mk(2)));
        let mut other = mk(0);
        other.options[1].label.push('!');
        assert!(!same_dialog(&mk(0), &other));
    }
}
