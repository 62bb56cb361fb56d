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

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnInfo {
    pub params: BTreeMap<String, String>,
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

    fn set(&mut self, key: &str, value: String) -> Result<(), ConnInfoError> {
        if !KEYWORDS.contains(&key) {
            return Err(ConnInfoError(format!(
                "unknown connection keyword `{key}`; known: {}",
                KEYWORDS.join(", ")
            )));
        }
        self.params.insert(key.to_string(), value);
        Ok(())
    }
}

/// Parse either form. Errors never quote the input (it may hold a password).
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

fn parse_pairs(s: &str) -> Result<ConnInfo, ConnInfoError> {
    let mut out = ConnInfo::default();
    let mut chars = s.chars().peekable();
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
                "missing `=` after `{key}`: write key=value pairs separated by spaces, or a postgresql:// URI"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(ConnInfoError(format!(
                            "unterminated quoted value for `{key}`"
                        )));
                    }
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(ConnInfoError(format!(
                                "unterminated quoted value for `{key}`"
                            )));
                        }
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

fn parse_uri(rest: &str) -> Result<ConnInfo, ConnInfoError> {
    let mut out = ConnInfo::default();
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (before_query, None),
    };
    let hostspec = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
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
            hosts
        }
        None => authority,
    };
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
        hosts.push(host);
        ports.push(port.unwrap_or_default());
    }
    if !hosts.is_empty() {
        out.set("host", hosts.join(","))?;
    }
    if ports.iter().any(|p| !p.is_empty()) {
        out.set("port", ports.join(","))?;
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        out.set("dbname", percent_decode(db)?)?;
    }
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| ConnInfoError(format!("URI parameter `{}` has no `=value`", pair)))?;
        out.set(&percent_decode(k)?, percent_decode(v)?)?;
    }
    Ok(out)
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
    fn defaults_fill_only_missing_keys() {
        let ci = parse("host=a")
            .unwrap()
            .with_defaults(&parse("host=b port=7 user=u").unwrap());
        assert_eq!(ci.get("host"), Some("a"));
        assert_eq!(ci.get("port"), Some("7"));
        assert_eq!(describe(&ci), "u@a:7/?");
    }
}
