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
}
