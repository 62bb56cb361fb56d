//! What PostgreSQL accepts as a name, checked before any name reaches SQL. PostgreSQL silently
//! truncates identifiers to 63 bytes (NAMEDATALEN - 1): `ALTER ROLE` on a 64-byte name alters
//! the 63-byte role while a comparison with the full name matches nothing, so a longer name is
//! refused, never passed on.

/// Longest identifier PostgreSQL keeps whole, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// A role, publication, subscription or user name as given by the operator.
pub fn identifier(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty: PostgreSQL names have 1 to 63 bytes".into());
    }
    if name.contains('\0') {
        return Err(format!(
            "\"{}\" contains a NUL byte, which no PostgreSQL name can hold",
            crate::text::echo(name)
        ));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "\"{}\" is {} bytes long: PostgreSQL keeps only the first {MAX_IDENTIFIER_BYTES} bytes of a name, so it \
             would act on another name than the one checked; shorten it",
            crate::text::echo(name),
            name.len()
        ));
    }
    Ok(())
}

/// A replication slot name: PostgreSQL allows only lower-case letters, digits and underscores.
pub fn slot(name: &str) -> Result<(), String> {
    identifier(name)?;
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "\"{}\": PostgreSQL slot names may hold only lower-case letters, digits and underscores",
            crate::text::echo(name)
        ))
    }
}

/// Which databases of the instance the migration replicates (`[replication] databases`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseSet {
    /// The database of each side's connection, as before the key existed.
    #[default]
    Dsn,
    /// These databases, in this order.
    Listed(Vec<String>),
    /// Every database that accepts connections, except templates, `rdsadmin`, and `postgres`
    /// unless it holds user tables; resolved on the source when an action runs.
    All,
}

impl DatabaseSet {
    /// Whether each database's slot and subscription carry the database in their name. One
    /// listed database keeps today's names; `all` never does, so its names do not change when
    /// a database is added to the instance.
    pub fn per_database_names(&self) -> bool {
        match self {
            DatabaseSet::Dsn => false,
            DatabaseSet::Listed(v) => v.len() > 1,
            DatabaseSet::All => true,
        }
    }
}

/// A stable form of a database name that is valid in a slot name: lower-case ASCII letters,
/// digits and `_`. A name that does not map one to one (upper case, other characters, or
/// too long) gets a hash of its bytes, so `App` and `app` never share a slot.
pub fn database_tag(db: &str, max: usize) -> String {
    let mut tag: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact = tag == db && !tag.is_empty();
    if exact && tag.len() <= max {
        return tag;
    }
    let hash = format!("{:08x}", fnv1a(db.as_bytes()));
    tag.truncate(max.saturating_sub(hash.len() + 1));
    if tag.is_empty() {
        hash
    } else {
        format!("{tag}_{hash}")
    }
}

/// `base` for database `db`: `base_tag`, at most 63 bytes, a valid slot name when `base` is.
pub fn for_database(base: &str, db: &str) -> String {
    let prefix = family_prefix(base);
    let room = MAX_IDENTIFIER_BYTES - prefix.len();
    format!("{prefix}{}", database_tag(db, room))
}

/// What every per-database name made from `base` starts with: `base_`, the base cut so that
/// the tag keeps at least 20 bytes.
pub fn family_prefix(base: &str) -> String {
    let mut cut = base.len().min(42);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_", &base[..cut])
}

/// What is said of one of several replicated databases starts with `[db] `; nothing when one
/// database is replicated (`None`).
pub fn db_prefix(db: Option<&str>) -> String {
    db.map(|d| format!("[{}] ", crate::sql::ident(d)))
        .unwrap_or_default()
}

/// `databases = "all"` on an instance's databases as the inventory lists them: every database
/// that accepts connections (templates and `rdsadmin` are not listed), and `postgres` only when
/// it holds user tables.
pub fn select_all(dbs: &[super::observed::Database]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for d in dbs.iter().filter(|d| d.allow_conn) {
        if d.name == "postgres" {
            match d.tables {
                Some(0) => continue,
                Some(_) => {}
                None => {
                    return Err(format!(
                        "databases = \"all\": whether \"postgres\" holds user tables cannot be read ({}); list the databases instead",
                        d.error.as_deref().unwrap_or("not read")
                    ));
                }
            }
        }
        out.push(d.name.clone());
    }
    if out.is_empty() {
        return Err("databases = \"all\": the instance has no database to replicate".into());
    }
    Ok(out)
}

/// FNV-1a, 32 bits: stable across builds and platforms (names derived from it live in the
/// catalogues of both servers for the whole migration).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_postgresql_would_change_are_refused() {
        assert!(identifier("app").is_ok());
        assert!(identifier("Weird \"App\" ünï").is_ok());
        assert!(identifier(&"a".repeat(63)).is_ok());
        let e = identifier(&"a".repeat(64)).unwrap_err();
        assert!(e.contains("64 bytes"), "{e}");
        // 62 ASCII + one 2-byte character = 64 bytes
        assert!(identifier(&format!("{}é", "a".repeat(62))).is_err());
        assert!(identifier("").unwrap_err().contains("empty"));
        assert!(identifier("a\0b").unwrap_err().contains("NUL"));
        let e = identifier(&"x".repeat(10_000_000)).unwrap_err();
        assert!(e.len() < 400, "a huge name is not echoed whole");
    }

    #[test]
    fn slot_names_are_lower_case_ascii() {
        assert!(slot("pgcutover_slot_2").is_ok());
        assert!(slot("Debezium").unwrap_err().contains("lower-case"));
        assert!(slot("cdc-1").is_err());
        assert!(slot(&"a".repeat(64)).unwrap_err().contains("63"));
        assert!(slot("").is_err());
    }
    #[test]
    fn database_tags_are_stable_valid_and_distinct() {
        assert_eq!(database_tag("billing", 48), "billing");
        let u = database_tag("Ünïcode \"db\"", 48);
        assert!(slot(&u).is_ok(), "{u}");
        assert_eq!(u, database_tag("Ünïcode \"db\"", 48), "stable");
        assert_ne!(database_tag("App", 48), database_tag("app", 48));
        assert_ne!(database_tag("a-b", 48), database_tag("a_b", 48));
        let long = "x".repeat(63);
        let t = database_tag(&long, 48);
        assert!(t.len() <= 48, "{t}");
        assert_ne!(t, database_tag(&format!("{}y", "x".repeat(62)), 48));
        for db in ["app", "Ünïcode \"db\"", &long, "日本語", "-"] {
            let name = for_database("pgcutover_slot", db);
            assert!(slot(&name).is_ok(), "{name}");
            let name = for_database(&"s".repeat(63), db);
            assert!(slot(&name).is_ok(), "{name}");
        }
        assert_eq!(
            for_database("pgcutover_slot", "billing"),
            "pgcutover_slot_billing"
        );
    }

    #[test]
    fn one_listed_database_keeps_the_names() {
        assert!(!DatabaseSet::Dsn.per_database_names());
        assert!(!DatabaseSet::Listed(vec!["app".into()]).per_database_names());
        assert!(DatabaseSet::Listed(vec!["a".into(), "b".into()]).per_database_names());
        assert!(DatabaseSet::All.per_database_names());
    }

    #[test]
    fn all_means_every_database_that_takes_connections() {
        let db = |name: &str, allow: bool, tables: Option<i64>| crate::domain::observed::Database {
            name: name.into(),
            allow_conn: allow,
            tables,
            bytes: None,
            error: None,
        };
        let dbs = [
            db("app", true, Some(3)),
            db("empty", true, Some(0)),
            db("postgres", true, Some(0)),
            db("closed", false, Some(1)),
            db("unread", true, None),
        ];
        assert_eq!(select_all(&dbs).unwrap(), ["app", "empty", "unread"]);
        let with_tables = [db("postgres", true, Some(1))];
        assert_eq!(select_all(&with_tables).unwrap(), ["postgres"]);
        assert!(
            select_all(&[db("postgres", true, None)])
                .unwrap_err()
                .contains("postgres")
        );
        assert!(select_all(&[db("postgres", true, Some(0))]).is_err());
    }
}
