//! Text that leaves the process: what any layer may use to echo outside input safely. MigrationNames
//! read from a database, lines read from a log and values typed by the operator can hold
//! terminal control sequences (`ESC ]0;…BEL` retitles the terminal, `ESC [2J` clears it) or be
//! megabytes long; nothing of the kind reaches a terminal or a message unescaped or unclipped.

use std::borrow::Cow;
use std::fmt::Write;

/// A character a terminal may act on rather than print: C0 and C1 controls, DEL, and the
/// bidirectional overrides that reorder what is shown ("trojan source").
fn is_hazard(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Multi-line text for a terminal: every hazard escaped, line breaks and tabs kept.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| is_hazard(c) && c != '\n' && c != '\t')
}

/// One line of text: every hazard escaped, line breaks and tabs too, so an outside value can
/// never forge a line of its own.
pub fn one_line(s: &str) -> Cow<'_, str> {
    escape_where(s, is_hazard)
}

fn escape_where(s: &str, hazard: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&hazard) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hazard(c) {
            escape_char(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON for a terminal: serde_json escapes C0 controls but passes DEL, C1 controls and the
/// bidirectional overrides through; they can only stand inside strings, where `\uXXXX` is the
/// same value.
pub fn json_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_hazard(c) && c != '\n') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hazard(c) && c != '\n' {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Longest echo of an outside value in a message, in characters.
pub const ECHO_MAX: usize = 80;

/// An outside value as a message may quote it: one line, escaped, at most `ECHO_MAX`
/// characters, with how much was left out.
pub fn echo(s: &str) -> String {
    clip(s, ECHO_MAX)
}

/// `one_line(s)` cut to `max` characters, saying how many bytes were left out.
pub fn clip(s: &str, max: usize) -> String {
    let mut end = s.len();
    for (n, (i, _)) in s.char_indices().enumerate() {
        if n == max {
            end = i;
            break;
        }
    }
    let shown = one_line(&s[..end]);
    if end == s.len() {
        shown.into_owned()
    } else {
        format!("{shown}… ({} more bytes)", s.len() - end)
    }
}

/// Test inputs for text parsers: the parser's own syntax tokens mixed with wide and control
/// characters. Random bytes seldom put a multi-byte character right against the syntax a parser
/// slices around (a byte offset off by one inside a character panics); this does on most runs.
#[cfg(test)]
pub(crate) fn token_soup(
    syntax: &[&'static str],
    max_tokens: usize,
) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let mut tokens: Vec<&'static str> = syntax.to_vec();
    tokens.extend([
        "é", "\u{FFFD}", "日本", "🦀", "\u{0}", "\u{1b}", "\u{85}", " ", "\n", "\r",
    ]);
    prop::collection::vec(prop::sample::select(tokens), 0..max_tokens).prop_map(|t| t.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sequences_are_escaped() {
        let evil = "t\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{202e}x";
        let safe = terminal_safe(evil);
        assert!(!safe.chars().any(is_hazard), "{safe}");
        assert_eq!(
            safe, "t\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u{202e}x",
            "readable escapes"
        );
        assert_eq!(terminal_safe("a\nb\tc"), "a\nb\tc");
        assert_eq!(one_line("a\nb\rc"), "a\\nb\\rc");
        assert!(matches!(terminal_safe("plain ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_json_and_inert() {
        let v = serde_json::json!({"name": "a\u{1b}[2J\u{9b}1m\u{7f}\u{202e}b\n"});
        let text = serde_json::to_string_pretty(&v).unwrap();
        let safe = json_safe(&text);
        assert!(!safe.chars().any(|c| is_hazard(c) && c != '\n'), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn echoes_are_clipped_on_char_boundaries() {
        let long = "é".repeat(10_000);
        let e = echo(&long);
        assert!(e.chars().count() < ECHO_MAX + 30, "{e}");
        assert!(e.ends_with(&format!("({} more bytes)", 2 * (10_000 - ECHO_MAX))));
        assert_eq!(echo("short"), "short");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc… (1 more bytes)");
    }
}
