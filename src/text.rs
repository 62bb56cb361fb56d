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

/// `s` on one line, cut to `width` terminal columns with `…` when it does not fit (wide
/// characters count two).
pub fn fit(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let s = one_line(s);
    if unicode_width::UnicodeWidthStr::width(s.as_ref()) <= width {
        return s.into_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// `s` (made one line first) in rows of at most `width` columns, broken at spaces where one
/// is in the second half of the row, else mid-word. Never empty.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    wrap_hanging(s, width, width)
}

/// [`wrap`] with the first row `first` columns wide and the others `rest` (a first row that
/// starts further left or right than its continuations).
pub fn wrap_hanging(s: &str, first: usize, rest: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthChar;
    let (first, rest) = (first.max(8), rest.max(8));
    let s = one_line(s);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    // (byte offset in `row`, columns before it) of the last space.
    let mut space: Option<(usize, usize)> = None;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        let width = if rows.is_empty() { first } else { rest };
        if used + w > width {
            if let Some((at, cols)) = space.filter(|(_, cols)| *cols > width / 2) {
                let tail = row.split_off(at + 1);
                rows.push(row.trim_end().to_string());
                row = tail;
                used -= cols + 1;
            } else {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            space = None;
        }
        if c == ' ' {
            space = Some((row.len(), used));
        }
        row.push(c);
        used += w;
    }
    rows.push(row);
    rows
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

/// Text from an outside program (the router's command) with secrets masked: each of
/// `secrets` (values longer than 3 bytes), a URI's password (`scheme://user:pw@` →
/// `scheme://user:***@`), and a `password=…` or `password: …` value, quoted or not.
pub fn redact_secrets(s: &str, secrets: &[String]) -> String {
    let mut out = s.to_string();
    let mut by_len: Vec<&String> = secrets.iter().filter(|v| v.len() > 3).collect();
    // longest first, so a secret that contains another is masked whole
    by_len.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in by_len {
        out = out.replace(v.as_str(), "***");
    }
    mask_uri_passwords(&mask_password_values(&out))
}

fn mask_uri_passwords(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '/' || c == '?' || c == '"' || c == '\'')
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn mask_password_values(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(k) = lower[from..].find("password") {
        let key_end = from + k + "password".len();
        from = key_end;
        let after = &s[key_end..];
        let sep = after.len() - after.trim_start_matches([' ', '\t']).len();
        let Some(op) = after[sep..]
            .chars()
            .next()
            .filter(|c| *c == '=' || *c == ':')
        else {
            continue;
        };
        let value_start = key_end + sep + op.len_utf8();
        let v = &s[value_start..];
        let lead = v.len() - v.trim_start_matches([' ', '\t']).len();
        let v = &v[lead..];
        let len = match v.chars().next() {
            Some(q @ ('\'' | '"')) => v[1..].find(q).map_or(v.len(), |j| j + 2),
            _ => v
                .find(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '&')
                .unwrap_or(v.len()),
        };
        if len == 0 {
            continue;
        }
        out.push_str(&s[last..value_start + lead]);
        out.push_str("***");
        last = value_start + lead + len;
        from = last;
    }
    out.push_str(&s[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_keeps_every_character() {
        let s = "cutover done: GREEN serves; writes were unavailable for 31 ms";
        let rows = wrap(s, 20);
        assert!(rows.iter().all(|r| r.chars().count() <= 20), "{rows:?}");
        assert_eq!(rows[0], "cutover done: GREEN");
        assert_eq!(rows.join(" "), s);
        assert_eq!(wrap("", 10), vec![String::new()]);
        let long = "x".repeat(25);
        assert_eq!(
            wrap(&long, 10),
            vec!["x".repeat(10), "x".repeat(10), "x".repeat(5)]
        );
    }

    proptest::proptest! {
        #[test]
        fn wrap_never_exceeds_the_width_nor_loses_text(s in "[a-z 日]{0,80}", w in 8usize..40) {
            let rows = wrap(&s, w);
            for r in &rows {
                proptest::prop_assert!(unicode_width::UnicodeWidthStr::width(r.as_str()) <= w, "{:?}", rows);
            }
            let kept: String = rows.concat().chars().filter(|c| *c != ' ').collect();
            let want: String = s.chars().filter(|c| *c != ' ').collect();
            proptest::prop_assert_eq!(kept, want);
        }
    }

    #[test]
    fn fit_cuts_at_columns_with_an_ellipsis() {
        assert_eq!(fit("ready", 10), "ready");
        assert_eq!(fit("ready: press C", 8), "ready: …");
        assert_eq!(fit("日本語テキスト", 7), "日本語…");
        assert!(!fit("a\nb", 9).contains('\n'));
        assert_eq!(fit("abc", 0), "");
    }

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

    #[test]
    fn secrets_in_a_programs_output_are_masked() {
        let secrets = vec!["hunter22".to_string(), "ab".to_string()];
        let out = redact_secrets(
            "login postgres://app:s3cr%40t@db:5432/app ok; host=x password='pa ss' \
             PASSWORD=plain; token hunter22, ab stays; Password: colon",
            &secrets,
        );
        for leak in ["s3cr", "pa ss", "plain", "hunter22", "colon"] {
            assert!(!out.contains(leak), "{leak} in {out}");
        }
        assert!(out.contains("postgres://app:***@db:5432/app"), "{out}");
        assert!(out.contains("ab stays"), "{out}");
        assert_eq!(redact_secrets("no secret here", &[]), "no secret here");
        assert_eq!(redact_secrets("password", &[]), "password");
        assert_eq!(redact_secrets("a://b@c x://", &[]), "a://b@c x://");
    }

    mod redact_props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a program prints, masking never panics, and a secret it was given never
            /// survives.
            #[test]
            fn never_panics_and_never_leaks(
                text in "\\PC{0,60}",
                secret in "[a-zA-Z0-9]{4,12}",
                glue in prop::sample::select(vec!["", " ", "password=", "://u:", "@", "'"]),
            ) {
                let s = format!("{text}{glue}{secret}{text}");
                let out = redact_secrets(&s, std::slice::from_ref(&secret));
                prop_assert!(!out.contains(&secret), "{out}");
            }
        }
    }
}
