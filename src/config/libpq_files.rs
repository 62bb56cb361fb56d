//! The files libpq reads for connection settings and passwords: `pg_service.conf` and `.pgpass`.
//! Same locations, format and permission rule as libpq, so operators' existing setups work.

use std::path::{Path, PathBuf};

use super::conninfo::{ConnInfo, ConnInfoError};

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Service files in libpq's order: `$PGSERVICEFILE` or `~/.pg_service.conf`, then
/// `$PGSYSCONFDIR/pg_service.conf` (Debian's libpq default: /etc/postgresql-common).
pub fn service_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    match std::env::var_os("PGSERVICEFILE") {
        Some(p) => v.push(PathBuf::from(p)),
        None => v.extend(home().map(|h| h.join(".pg_service.conf"))),
    }
    let sys = std::env::var_os("PGSYSCONFDIR")
        .map_or_else(|| PathBuf::from("/etc/postgresql-common"), PathBuf::from);
    v.push(sys.join("pg_service.conf"));
    v
}

/// The settings of service `name` from the first file that defines it.
pub fn lookup_service(name: &str, files: &[PathBuf]) -> Result<ConnInfo, ConnInfoError> {
    for f in files {
        // A missing file is libpq's normal case; one that exists but cannot be read is a mistake
        // to name, not a reason to say the service is undefined.
        let text = match crate::files::read_text_capped(f, 1024 * 1024, "service file") {
            Ok(t) => t,
            Err(crate::files::ReadError::NotFound(_)) => continue,
            Err(e) => return Err(ConnInfoError(format!("service file: {e}"))),
        };
        if let Some(ci) = parse_service(&text, name, f)? {
            return Ok(ci);
        }
    }
    Err(ConnInfoError(format!(
        "service `{}` is not defined in {}",
        crate::text::echo(name),
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )))
}

fn parse_service(text: &str, name: &str, file: &Path) -> Result<Option<ConnInfo>, ConnInfoError> {
    let mut found: Option<ConnInfo> = None;
    let mut in_section = false;
    for (no, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(sec) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if found.is_some() && in_section {
                break;
            }
            in_section = sec == name;
            if in_section {
                found = Some(ConnInfo::default());
            }
            continue;
        }
        if !in_section {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| {
            ConnInfoError(format!("{}:{}: expected key=value", file.display(), no + 1))
        })?;
        let mut one = super::conninfo::parse(&format!(
            "{}='{}'",
            k.trim(),
            v.trim().replace('\\', "\\\\").replace('\'', "\\'")
        ))
        .map_err(|e| ConnInfoError(format!("{}:{}: {e}", file.display(), no + 1)))?;
        if let Some(ci) = found.as_mut() {
            ci.params.append(&mut one.params);
        }
    }
    Ok(found)
}

/// Why a password file that exists is not used, when it is not: libpq ignores one that group or
/// others can read, and one that is not a regular readable file. `None` when it is usable or
/// absent.
pub fn passfile_problem(file: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("password file {}: {e}", file.display())),
        Ok(m) => m,
    };
    if !meta.is_file() {
        return Some(format!(
            "password file {} is not a regular file",
            file.display()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Some(format!(
            "password file {} was ignored: group or others can read it; chmod 0600 it",
            file.display()
        ));
    }
    crate::files::open_regular(file)
        .err()
        .map(|e| format!("password file: {e}"))
}

/// `$PGPASSFILE`, else `~/.pgpass`.
pub fn default_passfile() -> Option<PathBuf> {
    std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".pgpass")))
}

/// Split a .pgpass line on unescaped `:`, undoing `\:` and `\\`.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The password for host/port/db/user from a .pgpass file, or `None`. Like libpq, the file is
/// ignored (with a warning) when group or others can read it. A socket path matches `localhost`.
pub fn pgpass_lookup(
    file: &Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    if let Some(problem) = passfile_problem(file) {
        tracing::warn!("{problem}");
        return None;
    }
    let text = crate::files::read_text_capped(file, 1024 * 1024, "password file").ok()?;
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(pgpass_fields)
        .filter(|f| f.len() == 5)
        .find(|f| {
            let m = |pat: &str, v: &str| pat == "*" || pat == v;
            m(&f[0], host) && m(&f[1], &port) && m(&f[2], dbname) && m(&f[3], user)
        })
        .map(|f| f[4].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    #[test]
    fn pgpass_matching_wildcards_and_escapes() {
        let f = file(
            "# comment\nother:5432:*:app:nope\ndb\\:1:5432:*:app:pa\\:ss\\\\word\n*:*:*:*:fallback\n",
            0o600,
        );
        assert_eq!(
            pgpass_lookup(f.path(), "db:1", 5432, "x", "app").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            pgpass_lookup(f.path(), "zzz", 1, "x", "y").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            pgpass_lookup(f.path(), "other", 5432, "d", "app").as_deref(),
            Some("nope")
        );
    }

    #[test]
    fn pgpass_socket_host_matches_localhost_and_loose_permissions_are_ignored() {
        let f = file("localhost:5432:*:u:sock\n", 0o600);
        assert_eq!(
            pgpass_lookup(f.path(), "/var/run/postgresql", 5432, "d", "u").as_deref(),
            Some("sock")
        );
        let loose = file("*:*:*:*:leaked\n", 0o644);
        assert_eq!(pgpass_lookup(loose.path(), "h", 1, "d", "u"), None);
    }

    #[test]
    fn service_file_sections() {
        let f = file(
            "[a]\nhost=h1\n[blue]\n# c\nhost = blue.db\nport=6543\ndbname=my db\n[c]\nhost=h3\n",
            0o644,
        );
        let ci = lookup_service(
            "blue",
            &[PathBuf::from("/nonexistent"), f.path().to_path_buf()],
        )
        .unwrap();
        assert_eq!(ci.get("host"), Some("blue.db"));
        assert_eq!(ci.get("port"), Some("6543"));
        assert_eq!(ci.get("dbname"), Some("my db"));
        let e = lookup_service("nope", &[f.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("service `nope` is not defined"), "{e}");
        let bad = file("[x]\nbogus=1\n", 0o644);
        let e = lookup_service("x", &[bad.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2: unknown connection keyword `bogus`"), "{e}");
    }

    #[test]
    fn unreadable_service_files_and_ignored_passfiles_are_named() {
        let d = tempfile::tempdir().unwrap();
        let bad = d.path().join("svc.conf");
        std::fs::write(&bad, b"[app]\nhost=\xff\n").unwrap();
        let e = lookup_service("app", std::slice::from_ref(&bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not UTF-8") && e.contains("svc.conf"), "{e}");
        let e = lookup_service("app", &[d.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("directory"), "{e}");
        let e = lookup_service("app", &[d.path().join("none.conf")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not defined"), "{e}");
        let pass = d.path().join("pgpass");
        std::fs::write(&pass, "*:*:*:*:pw\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(passfile_problem(&pass).unwrap().contains("chmod 0600"));
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(passfile_problem(&pass), None);
        assert!(
            passfile_problem(d.path())
                .unwrap()
                .contains("not a regular file")
        );
        assert_eq!(passfile_problem(&d.path().join("none")), None);
    }
}
