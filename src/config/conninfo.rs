//! libpq connection strings: `key=value` pairs or a `postgresql://` URI, parsed into keyword →
//! value pairs. Parsed by us, not by tokio-postgres, because libpq's `service`, `sslrootcert`
//! and `passfile` must be honoured and a password must be found and refused before anything is
//! printed.

use std::collections::BTreeMap;
use std::fmt;

/// Keywords we understand. Anything else is an error that names the keyword.
pub const KEYWORDS: &[&str] = &[
    "application_name",
    "connect_timeout",
    "dbname",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_idle",
    "options",
    "passfile",
    "password",
    "port",
    "service",
    "sslmode",
    "sslrootcert",
    "target_session_attrs",
    "user",
];

/// `Debug` redacts the password (a service file may have supplied one).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnInfo {
    pub params: BTreeMap<String, String>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.params {
            if k == "password" {
                m.entry(k, &"********");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfoError(pub String);

impl fmt::Display for ConnInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnInfoError {}

impl ConnInfo {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// Fill keys this one lacks from `defaults` (a service file entry).
    pub fn with_defaults(mut self, defaults: &ConnInfo) -> ConnInfo {
        for (k, v) in &defaults.params {
            self.params.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self
    }

    /// The same server and credentials, another database of it.
    #[must_use]
    pub fn with_dbname(mut self, dbname: &str) -> ConnInfo {
        self.params.insert("dbname".into(), dbname.into());
        self
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), ConnInfoError> {
        if !KEYWORDS.contains(&key) {
            return Err(ConnInfoError(format!(
                "unknown connection keyword `{}`; known: {}",
                crate::text::echo(key),
                KEYWORDS.join(", ")
            )));
        }
        self.params.insert(key.to_string(), value);
        Ok(())
    }
}

/// Parse either form. Errors never quote a value, and once a password has been seen they
/// quote nothing of the input at all (a stray space or `/` in it must not echo a fragment).
pub fn parse(s: &str) -> Result<ConnInfo, ConnInfoError> {
    let t = s.trim();
    if let Some(rest) = t
        .strip_prefix("postgresql://")
        .or_else(|| t.strip_prefix("postgres://"))
    {
        parse_uri(rest)
    } else {
        parse_pairs(t)
    }
}

/// How an error may name a piece of the input: quoted, or not at all after a password.
fn named(secret_seen: bool, what: &str) -> String {
    if secret_seen {
        "a word after the password (is there an unquoted space or quote in it? write password='…')"
            .to_string()
    } else {
        format!("`{}`", crate::text::echo(what))
    }
}

fn parse_pairs(s: &str) -> Result<ConnInfo, ConnInfoError> {
    let mut out = ConnInfo::default();
    let mut chars = s.chars().peekable();
    let mut secret_seen = false;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(ConnInfoError(format!(
                "missing `=` after {}: write key=value pairs separated by spaces, or a postgresql:// URI",
                named(secret_seen, &key)
            )));
        }
        if !KEYWORDS.contains(&key.as_str()) {
            return Err(ConnInfoError(format!(
                "unknown connection keyword {}; known: {}",
                named(secret_seen, &key),
                KEYWORDS.join(", ")
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let unterminated = || {
            ConnInfoError(format!(
                "unterminated quoted value for `{key}`: close it with '"
            ))
        };
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(unterminated()),
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(unterminated()),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        secret_seen |= key == "password";
        out.set(&key, value)?;
    }
}

fn percent_decode(s: &str) -> Result<String, ConnInfoError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ConnInfoError("invalid percent-encoding in the URI".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConnInfoError("the URI decodes to invalid UTF-8".into()))
}

/// `user[:password]` and what follows it. The password may hold `/`, `?`, `:` and `@`, so a
/// userinfo with a password ends at the LAST `@`; without one, libpq's rule applies (the first
/// `@` before any `/`), so an `@` in a query value is not taken for one. (A query value holding
/// `@` in a URI with a password must be percent-encoded.)
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let Some(last) = rest.rfind('@') else {
        return (None, rest);
    };
    if rest[..last].contains(':') {
        return (Some(&rest[..last]), &rest[last + 1..]);
    }
    match rest.find(['@', '/']) {
        Some(i) if rest.as_bytes()[i] == b'@' => (Some(&rest[..i]), &rest[i + 1..]),
        _ => (None, rest),
    }
}

fn parse_uri(rest: &str) -> Result<ConnInfo, ConnInfoError> {
    let mut out = ConnInfo::default();
    let (userinfo, after) = split_userinfo(rest);
    let secret = userinfo.is_some_and(|u| u.contains(':'));
    let quote = |what: &str| -> String {
        if secret {
            "(not shown: the URI holds a password; percent-encode `/ ? @ : #` in it)".to_string()
        } else {
            format!("`{}`", crate::text::echo(what))
        }
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            out.set("user", percent_decode(user)?)?;
        }
        if let Some(p) = password {
            out.set("password", percent_decode(p)?)?;
        }
    }
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let tail = &after[end..];
    let (before_q, query) = match tail.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (tail, None),
    };
    uri_hosts(&after[..end], &mut out, &quote)?;
    if let Some(db) = before_q.strip_prefix('/').filter(|p| !p.is_empty()) {
        out.set("dbname", percent_decode(db)?)?;
    }
    uri_query(query.unwrap_or(""), &mut out, &quote)?;
    Ok(out)
}

/// `host[:port],…` (IPv6 in brackets) into `host` and `port` lists, as libpq keeps them.
fn uri_hosts(
    hostspec: &str,
    out: &mut ConnInfo,
    quote: &dyn Fn(&str) -> String,
) -> Result<(), ConnInfoError> {
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for h in hostspec.split(',').filter(|h| !h.is_empty()) {
        let (host, port) = if let Some(r) = h.strip_prefix('[') {
            let (addr, after) = r
                .split_once(']')
                .ok_or_else(|| ConnInfoError("unclosed `[` in the URI's host".into()))?;
            (
                addr.to_string(),
                after.strip_prefix(':').map(str::to_string),
            )
        } else {
            match h.rsplit_once(':') {
                Some((a, p)) => (percent_decode(a)?, Some(p.to_string())),
                None => (percent_decode(h)?, None),
            }
        };
        if let Some(p) = &port
            && !p.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ConnInfoError(format!(
                "the URI's port {} is not a number",
                quote(p)
            )));
        }
        hosts.push(host);
        ports.push(port.unwrap_or_default());
    }
    if !hosts.is_empty() {
        out.set("host", hosts.join(","))?;
    }
    if ports.iter().any(|p| !p.is_empty()) {
        out.set("port", ports.join(","))?;
    }
    Ok(())
}

/// `key=value&…`, known keywords only.
fn uri_query(
    query: &str,
    out: &mut ConnInfo,
    quote: &dyn Fn(&str) -> String,
) -> Result<(), ConnInfoError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            ConnInfoError(format!("URI parameter {} has no `=value`", quote(pair)))
        })?;
        let k = percent_decode(k)?;
        if !KEYWORDS.contains(&k.as_str()) {
            return Err(ConnInfoError(format!(
                "unknown connection keyword {} in the URI; known: {}",
                quote(&k),
                KEYWORDS.join(", ")
            )));
        }
        out.set(&k, percent_decode(v)?)?;
    }
    Ok(())
}

/// The connection described without secrets, for messages: `user@host:port/dbname`.
pub fn describe(ci: &ConnInfo) -> String {
    format!(
        "{}@{}:{}/{}",
        ci.get("user").unwrap_or("?"),
        ci.get("host").or(ci.get("hostaddr")).unwrap_or("(socket)"),
        ci.get("port").unwrap_or("5432"),
        ci.get("dbname").unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_pairs_with_quotes_and_escapes() {
        let ci =
            parse(r"host=db.example port = 5433 dbname='my db' user=app application_name='it\'s'")
                .unwrap();
        assert_eq!(ci.get("host"), Some("db.example"));
        assert_eq!(ci.get("port"), Some("5433"));
        assert_eq!(ci.get("dbname"), Some("my db"));
        assert_eq!(ci.get("application_name"), Some("it's"));
    }

    #[test]
    fn uri_with_everything() {
        let ci = parse("postgresql://Weird%20User:s3cr%40t@[::1]:5433,h2:6000/d%C3%BCb?sslmode=require&application_name=x").unwrap();
        assert_eq!(ci.get("user"), Some("Weird User"));
        assert_eq!(ci.get("password"), Some("s3cr@t"));
        assert_eq!(ci.get("host"), Some("::1,h2"));
        assert_eq!(ci.get("port"), Some("5433,6000"));
        assert_eq!(ci.get("dbname"), Some("düb"));
        assert_eq!(ci.get("sslmode"), Some("require"));
        let bare = parse("postgres://localhost").unwrap();
        assert_eq!(bare.get("host"), Some("localhost"));
        assert_eq!(bare.get("dbname"), None);
    }

    #[test]
    fn errors_name_the_problem_without_echoing_secrets() {
        let e = parse("host=x passwd=hunter2").unwrap_err().to_string();
        assert!(e.contains("unknown connection keyword `passwd`"), "{e}");
        assert!(!e.contains("hunter2"));
        let e = parse("host=x dbname='abc").unwrap_err().to_string();
        assert!(e.contains("unterminated"), "{e}");
        let e = parse("hostx").unwrap_err().to_string();
        assert!(e.contains("missing `=`"), "{e}");
        let e = parse("postgresql://u:p@h/db?sslmode")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `=value`"), "{e}");
        let e = parse("postgresql://h/%zz").unwrap_err().to_string();
        assert!(e.contains("percent"), "{e}");
    }

    #[test]
    fn debug_redacts_the_password() {
        let ci = parse("host=h password=S3cretPw").unwrap();
        let d = format!("{ci:?} {ci:#?}");
        assert!(!d.contains("S3cretPw") && d.contains("********"), "{d}");
    }

    #[test]
    fn defaults_fill_only_missing_keys() {
        let ci = parse("host=a")
            .unwrap()
            .with_defaults(&parse("host=b port=7 user=u").unwrap());
        assert_eq!(ci.get("host"), Some("a"));
        assert_eq!(ci.get("port"), Some("7"));
        assert_eq!(describe(&ci), "u@a:7/?");
    }

    #[test]
    fn uri_passwords_with_separators_are_passwords() {
        for (uri, pw) in [
            ("postgresql://u:S3/cret@h:5433/db", "S3/cret"),
            ("postgresql://u:S3?cret@h:5433/db", "S3?cret"),
            ("postgresql://u:S3@cr:et@h:5433/db", "S3@cr:et"),
            (
                "postgresql://u:a/b?c@d@h:5433/db?sslmode=disable",
                "a/b?c@d",
            ),
        ] {
            let ci = parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(ci.get("password"), Some(pw), "{uri}");
            assert_eq!(ci.get("host"), Some("h"), "{uri}");
            assert_eq!(ci.get("port"), Some("5433"), "{uri}");
            assert_eq!(ci.get("dbname"), Some("db"), "{uri}");
        }
        // an @ in a query value, no password: libpq's reading
        let ci = parse("postgresql://u@h/db?application_name=a@b").unwrap();
        assert_eq!(
            (ci.get("user"), ci.get("host"), ci.get("application_name")),
            (Some("u"), Some("h"), Some("a@b"))
        );
        let ci = parse("postgresql://h/db?application_name=a@b").unwrap();
        assert_eq!((ci.get("user"), ci.get("host")), (None, Some("h")));
    }

    #[test]
    fn no_fragment_of_a_password_in_any_error() {
        for bad in [
            "host=x password=S3cr3t Tail",
            "host=x password=S3cr3t Tail=1",
            "host=x password=S3cr3t' Tail",
            "postgresql://u:S3cr3t@h:S3cr3t/db",
            "postgresql://u:S3cr3t@h/db?S3cr3t",
            "postgresql://u:S3cr3t@h/db?S3cr3t=1",
            "postgresql://u:S3cr%zz3t@h/db",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            for frag in ["S3cr", "cr3t", "Tail"] {
                assert!(!e.contains(frag), "{bad} → {e}");
            }
        }
    }

    #[test]
    fn long_or_hostile_keywords_are_clipped_and_escaped() {
        let e = parse(&format!("{}=1", "k".repeat(100_000)))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 1000, "{} bytes", e.len());
        let e = parse("\u{1b}]0;x\u{7}=1").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}') && !e.contains('\u{7}'), "{e}");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever surrounds a password, in either form, an error does not depend on its
            /// letters: the same text with the password's letters changed gives the same error,
            /// so no piece of it can be in the message.
            #[test]
            fn errors_do_not_depend_on_the_password(
                pw in "[g-zG-Z/?@:#&= '%\\\\]{6,24}",
                before in "[a-z=/:@?&% ]{0,12}",
                after in "[a-z=/:@?&% ]{0,12}",
                uri in any::<bool>(),
            ) {
                let rot = |p: &str| -> String {
                    p.chars().map(|c| match c {
                        'g'..='y' | 'G'..='Y' => char::from(c as u8 + 1),
                        'z' => 'g',
                        'Z' => 'G',
                        c => c,
                    }).collect()
                };
                let text = |pw: &str| if uri {
                    format!("postgresql://{before}u:{pw}@h{after}")
                } else {
                    format!("{before} password={pw}{after}")
                };
                let e1 = parse(&text(&pw)).err().map(|e| e.to_string());
                let e2 = parse(&text(&rot(&pw))).err().map(|e| e.to_string());
                prop_assert_eq!(e1, e2);
            }

            #[test]
            fn token_soup_no_panic(s in crate::text::token_soup(&[
                "postgresql://", "postgres://", "host=", "password=", "user=", "=", "'", "\\",
                "@", ":", "/", "?", "&", "%", "%2", "%C3", "%A9", "%ZZ", "[", "]", "::1", ",", "h",
                "5432",
            ], 40)) {
                let _ = parse(&s);
            }

            #[test]
            fn any_text_no_panic(s in ".{0,200}") {
                let _ = parse(&s);
                let _ = parse(&format!("postgresql://{s}"));
            }
        }
    }
}
