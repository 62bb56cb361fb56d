//! The statements verify sends, built from the table's columns and key: every identifier quoted,
//! every key value a typed literal, so the journaled text is the executed text.

use crate::sql::{ident, literal, qualified};

/// How much of a row without a key a mismatch shows.
pub const SHOWN_ROW: usize = 200;

/// The session settings under which both sides print every value the same way, whatever their
/// versions (15 → 18 must not differ by a float's digits or a timestamp's zone).
pub fn session(statement_timeout_ms: u64) -> String {
    format!(
        "SET extra_float_digits = 3; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
         SET TimeZone = 'UTC'; SET bytea_output = 'hex'; SET lc_monetary = 'C'; \
         SET application_name = 'pgcutover_verify'; SET statement_timeout = {statement_timeout_ms}; \
         SET default_transaction_read_only = on"
    )
}

/// Every user table of the database (leaf partitions, not their parents) with its columns and
/// types in order, its key (primary key, else the replica identity index), its estimated
/// rows, and which of the key's columns are ordered by a collation (text).
pub const TABLES: &str = r"
SELECT n.nspname, c.relname,
  (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_attribute a
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  key.names, greatest(c.reltuples, 0)::bigint, key.collated
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
  SELECT array_agg(a.attname::text ORDER BY k.ord) AS names,
         array_agg(a.attcollation <> 0 ORDER BY k.ord) AS collated
  FROM (SELECT i.indkey FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)
        ORDER BY i.indisprimary DESC LIMIT 1) i
  CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) key
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname";

/// A table as verify reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub columns: Vec<String>,
    pub types: Vec<String>,
    /// Empty: no key; the table is read as one chunk.
    pub key: Vec<String>,
    pub estimate: i64,
    /// For each key column: whether a collation orders it (text), so that two servers may
    /// order it differently.
    pub key_collated: Vec<bool>,
}

/// The range of a whole table: what a chunk without bounds reads.
pub const WHOLE: &str = "true";

impl Table {
    pub fn qualified(&self) -> String {
        qualified(&self.schema, &self.name)
    }

    fn key_type(&self, k: &str) -> &str {
        self.columns
            .iter()
            .position(|c| c == k)
            .and_then(|i| self.types.get(i))
            .map_or("text", String::as_str)
    }

    fn key_list(&self) -> String {
        self.key
            .iter()
            .map(|k| ident(k))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(k1, k2)`, or `k1` alone.
    fn key_expr(&self) -> String {
        if self.key.len() == 1 {
            ident(&self.key[0])
        } else {
            format!("({})", self.key_list())
        }
    }

    /// Key values read as text, as typed literals in the same shape.
    fn key_value(&self, values: &[String]) -> String {
        let lits: Vec<String> = self
            .key
            .iter()
            .zip(values)
            .map(|(k, v)| format!("{}::{}", literal(v), self.key_type(k)))
            .collect();
        if lits.len() == 1 {
            lits[0].clone()
        } else {
            format!("({})", lits.join(", "))
        }
    }

    /// The rows of a chunk: above `lower` (exclusive) and up to `upper` (inclusive).
    pub fn range(&self, lower: Option<&[String]>, upper: Option<&[String]>) -> String {
        let mut parts = Vec::new();
        if let Some(l) = lower {
            parts.push(format!("{} > {}", self.key_expr(), self.key_value(l)));
        }
        if let Some(u) = upper {
            parts.push(format!("{} <= {}", self.key_expr(), self.key_value(u)));
        }
        if parts.is_empty() {
            WHOLE.into()
        } else {
            parts.join(" AND ")
        }
    }

    /// The key's columns as text, named apart from the columns: `ORDER BY id` after
    /// `SELECT id::text` would order by the text (`10` before `9`).
    fn key_text(&self) -> Vec<String> {
        self.key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{}::text AS pgcutover_k{i}", ident(k)))
            .collect()
    }

    /// The row as one value of every column, in their order.
    fn row(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        format!("ROW({})", cols.join(", "))
    }

    /// The key of the chunk of `rows` rows after `lower` (and up to `upper`, when given): its
    /// last row's, as text.
    pub fn boundary(
        &self,
        lower: Option<&[String]>,
        upper: Option<&[String]>,
        rows: u64,
    ) -> String {
        let cols = self.key_text();
        format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {} OFFSET {} LIMIT 1",
            cols.join(", "),
            self.qualified(),
            self.range(lower, upper),
            self.key_list(),
            rows.saturating_sub(1)
        )
    }

    /// The last key now: the upper end of the last chunk, so rows appended while verify runs
    /// are not in any chunk (they are newer than the run) instead of keeping it hot.
    pub fn last_key(&self) -> String {
        let cols = self.key_text();
        let desc: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("{} DESC", ident(k)))
            .collect();
        format!(
            "SELECT {} FROM {} ORDER BY {} LIMIT 1",
            cols.join(", "),
            self.qualified(),
            desc.join(", ")
        )
    }

    /// The key as `rows` names it: the value, or the row of values.
    fn key_shown(&self) -> String {
        if self.key.len() == 1 {
            format!("{}::text", ident(&self.key[0]))
        } else {
            format!("ROW({})::text", self.key_list())
        }
    }

    /// Rows past `end` (the source's largest key when the table was started): their key as
    /// `rows` names it and their key values. Read on the target, those the source lacks are
    /// rows only the target has, which no chunk covers.
    pub fn past(&self, end: &[String], limit: usize) -> String {
        format!(
            "SELECT {} AS pgcutover_key, {} FROM {} WHERE {} > {} ORDER BY {} LIMIT {limit}",
            self.key_shown(),
            self.key_text().join(", "),
            self.qualified(),
            self.key_expr(),
            self.key_value(end),
            self.key_list()
        )
    }

    /// Which of these keys (key values as text) the table has, as `rows` names them.
    pub fn having(&self, keys: &[Vec<String>]) -> String {
        let values: Vec<String> = keys.iter().map(|k| self.key_value(k)).collect();
        format!(
            "SELECT {} AS pgcutover_key FROM {} WHERE {} IN ({})",
            self.key_shown(),
            self.qualified(),
            self.key_expr(),
            values.join(", ")
        )
    }

    /// Count and an order-independent hash (the sum of each row's first 64 bits of md5), and
    /// the server's LSN once they were computed: past every commit the statement saw. The
    /// insert position, not the write position (`pg_current_wal_lsn`): a commit made with
    /// `synchronous_commit = off` is seen before it is written, and the target must wait for
    /// it too, or a row it lacks for a moment would be taken for a mismatch.
    pub fn digest(&self, range: &str) -> String {
        format!(
            "SELECT count(*), coalesce(sum(('x' || left(md5({}::text), 16))::bit(64)::bigint::numeric), 0)::text, \
             pg_current_wal_insert_lsn()::text FROM {} WHERE {range}",
            self.row(),
            self.qualified()
        )
    }

    /// The order the server gives `sql::order_probe` under each collated key column's own
    /// collation (one column each); `None` when no key column has one. Read on both sides:
    /// if the orders differ, so do the rows a range of the key holds.
    pub fn key_order(&self, utf8: bool) -> Option<String> {
        let probe = crate::sql::order_probe(utf8);
        let cols: Vec<String> = self
            .key
            .iter()
            .zip(&self.key_collated)
            .filter(|(_, collated)| **collated)
            // the column's collation wins over the literals' default in the union
            .map(|(k, _)| {
                format!(
                    "(SELECT array_agg(x ORDER BY x)::text FROM (SELECT {}::text FROM {} WHERE false \
                     UNION ALL SELECT unnest({probe})) p(x))",
                    ident(k),
                    self.qualified()
                )
            })
            .collect();
        (!cols.is_empty()).then(|| format!("SELECT {}", cols.join(", ")))
    }

    /// What tells a row apart when a whole table is narrowed: its key as `rows` names it, or
    /// the row itself when there is no key.
    fn identity(&self) -> String {
        if self.key.is_empty() {
            format!("{}::text", self.row())
        } else {
            self.key_shown()
        }
    }

    /// A range's rows in 256 groups by a hash of their identity, with each group's count and
    /// hash: a table read whole is narrowed group by group, only where the groups differ.
    pub fn groups(&self, range: &str) -> String {
        format!(
            "SELECT left(md5({}), 2), count(*)::text || ' ' || \
             coalesce(sum(('x' || left(md5({}::text), 16))::bit(64)::bigint::numeric), 0)::text \
             FROM {} WHERE {range} GROUP BY 1",
            self.identity(),
            self.row(),
            self.qualified()
        )
    }

    /// The rows of one group (`groups`): with a key, each row's key and hash (as `rows`);
    /// without one, each distinct row's hash, its text (cut to `SHOWN_ROW` characters) and
    /// copies.
    pub fn group_rows(&self, range: &str, group: &str) -> String {
        let in_group = format!("left(md5({}), 2) = {}", self.identity(), literal(group));
        if self.key.is_empty() {
            format!(
                "SELECT md5(r), left(r, {SHOWN_ROW}), count(*) FROM \
                 (SELECT {}::text AS r FROM {} WHERE ({range}) AND {in_group}) s GROUP BY r",
                self.row(),
                self.qualified()
            )
        } else {
            format!(
                "SELECT {} AS pgcutover_key, md5({}::text) FROM {} WHERE ({range}) AND {in_group}",
                self.key_shown(),
                self.row(),
                self.qualified()
            )
        }
    }

    /// Each row's key and hash, in key order: to name the rows a chunk of a keyed table
    /// differs by (a table read whole is narrowed by `groups`).
    pub fn rows(&self, range: &str) -> String {
        format!(
            "SELECT {} AS pgcutover_key, md5({}::text) FROM {} WHERE {range} ORDER BY {}",
            self.key_shown(),
            self.row(),
            self.qualified(),
            self.key_list()
        )
    }
}

/// Where the subscriber has applied to, seen from the source: its slot's confirmed position.
pub fn slot_confirmed(slot: &str) -> String {
    format!(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = {}",
        literal(slot)
    )
}

/// Where the subscriber has applied to, seen from the target: its origin's remote LSN, which
/// moves with every commit applied (the slot's moves with the subscriber's feedback).
pub fn origin_applied(subscription: &str) -> String {
    format!(
        "SELECT os.remote_lsn::text FROM pg_replication_origin_status os \
         JOIN pg_subscription s ON os.external_id = 'pg_' || s.oid WHERE s.subname = {}",
        literal(subscription)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: &[&str]) -> Table {
        Table {
            schema: "Ünïcode".into(),
            name: "Order Items".into(),
            columns: vec!["id".into(), "at".into(), "Note".into()],
            types: vec![
                "bigint".into(),
                "timestamp with time zone".into(),
                "text".into(),
            ],
            key: key.iter().map(|k| (*k).to_string()).collect(),
            estimate: 0,
            key_collated: key.iter().map(|k| *k == "Note").collect(),
        }
    }

    #[test]
    fn ranges_are_typed_literals_on_the_key() {
        let one = t(&["id"]);
        assert_eq!(
            one.range(Some(&["10".into()]), Some(&["20".into()])),
            "id > '10'::bigint AND id <= '20'::bigint"
        );
        assert_eq!(one.range(None, None), "true");
        let two = t(&["id", "Note"]);
        assert_eq!(
            two.range(Some(&["1".into(), "it's".into()]), None),
            r#"(id, "Note") > ('1'::bigint, 'it''s'::text)"#
        );
        assert_eq!(
            one.boundary(Some(&["10".into()]), None, 1000),
            r#"SELECT id::text AS pgcutover_k0 FROM "Ünïcode"."Order Items" WHERE id > '10'::bigint ORDER BY id OFFSET 999 LIMIT 1"#
        );
        // a hot chunk's middle, within it
        assert_eq!(
            one.boundary(Some(&["10".into()]), Some(&["20".into()]), 5),
            r#"SELECT id::text AS pgcutover_k0 FROM "Ünïcode"."Order Items" WHERE id > '10'::bigint AND id <= '20'::bigint ORDER BY id OFFSET 4 LIMIT 1"#
        );
        assert!(
            two.last_key()
                .ends_with(r#"ORDER BY id DESC, "Note" DESC LIMIT 1"#),
            "{}",
            two.last_key()
        );
    }

    #[test]
    fn the_key_order_is_probed_under_each_text_key_column_s_own_collation() {
        assert_eq!(t(&["id"]).key_order(true), None, "no text in the key");
        let q = t(&["id", "Note"]).key_order(false).unwrap();
        assert_eq!(q.matches("SELECT array_agg").count(), 1, "{q}");
        assert!(
            q.contains(r#"(SELECT "Note"::text FROM "Ünïcode"."Order Items" WHERE false UNION ALL SELECT unnest(ARRAY['a', 'A'"#),
            "{q}"
        );
        assert!(q.contains("'a''b'"), "quoted: {q}");
        assert!(!q.contains('ß'), "ASCII only outside UTF-8: {q}");
        assert!(t(&["Note"]).key_order(true).unwrap().contains("'ß'"));
    }

    #[test]
    fn a_table_read_whole_is_grouped_by_what_tells_its_rows_apart() {
        let keyed = t(&["id"]);
        assert!(
            keyed
                .groups(WHOLE)
                .starts_with("SELECT left(md5(id::text), 2), count(*)::text"),
            "{}",
            keyed.groups(WHOLE)
        );
        assert_eq!(
            keyed.group_rows(WHOLE, "0f"),
            r#"SELECT id::text AS pgcutover_key, md5(ROW(id, at, "Note")::text) FROM "Ünïcode"."Order Items" WHERE (true) AND left(md5(id::text), 2) = '0f'"#
        );
        let keyless = t(&[]);
        assert!(
            keyless
                .groups(WHOLE)
                .starts_with(r#"SELECT left(md5(ROW(id, at, "Note")::text), 2)"#),
            "{}",
            keyless.groups(WHOLE)
        );
        let rows = keyless.group_rows(WHOLE, "0f");
        assert!(
            rows.starts_with("SELECT md5(r), left(r, 200), count(*) FROM"),
            "{rows}"
        );
        assert!(rows.ends_with("GROUP BY r"), "{rows}");
    }

    #[test]
    fn the_digest_hashes_every_column_in_order() {
        let d = t(&["id"]).digest("true");
        assert!(d.contains(r#"md5(ROW(id, at, "Note")::text)"#), "{d}");
        assert!(
            d.contains(r#"FROM "Ünïcode"."Order Items" WHERE true"#),
            "{d}"
        );
        let r = t(&["id"]).rows("id > '1'::bigint");
        assert!(
            r.starts_with("SELECT id::text AS pgcutover_key, md5("),
            "{r}"
        );
        assert!(r.ends_with("ORDER BY id"), "{r}");
    }
}
