//! Quoting for identifiers and literals in the SQL we generate and display. Role, table, slot and
//! publication names can hold quotes, spaces, capitals and unicode; every name that reaches SQL
//! text goes through [`ident`], every value through [`literal`] (or a bind parameter).

/// Words `quote_ident` quotes (every keyword not in the unreserved category), from
/// `pg_get_keywords()` of PostgreSQL 15; later versions only add unreserved words.
const KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// Same result as PostgreSQL's `quote_ident`: bare when that is unambiguous, else double-quoted
/// with inner quotes doubled.
pub fn ident(name: &str) -> String {
    let simple = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if simple && KEYWORDS.binary_search(&name).is_err() {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `schema.name`, each part quoted as needed.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// Same result as PostgreSQL's `quote_literal`: safe whatever `standard_conforming_strings` is.
pub fn literal(value: &str) -> String {
    let doubled = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", doubled.replace('\\', "\\\\"))
    } else {
        format!("'{doubled}'")
    }
}

/// Whether the connected database holds UTF-8 text: where `order_probe` may have letters
/// beyond ASCII.
pub const DATABASE_IS_UTF8: &str = "SELECT getdatabaseencoding() = 'UTF8'";

/// Strings whose order tells collations apart: case, accents, punctuation, spaces and digits
/// around letters (the order of those changed with glibc 2.28), and, in a UTF-8 database,
/// letters beyond Latin-1, ligatures, combining marks and symbols.
const ORDER_PROBE: &[&str] = &[
    "a", "A", "b", "B", "z", "Z", "ab", "aB", "Ab", "AB", "a b", "a-b", "a_b", "a.b", "a,b", "a'b",
    "ab-", "-ab", "_ab", " ab", "1", "1-1", "11", "1 1", "1.1", "1a", "a1", "9", "10", "co-op",
    "coop", "co op", "(a)", "~", "@", "#", "$", "",
];
const ORDER_PROBE_UTF8: &[&str] = &[
    "á", "Á", "à", "ä", "Ä", "æ", "ø", "å", "ß", "ss", "é", "e\u{301}", "ç", "ñ", "ı", "İ", "ω",
    "Ω", "ж", "Ж", "中", "日", "😀", "ﬁ", "fi", "ǆ", "Ǆ", "ŉ", "ĳ", "ij", "a\u{a0}b",
];

/// `ORDER_PROBE` (and `ORDER_PROBE_UTF8` in a UTF-8 database, where its letters can be
/// written) as a `text[]`: sorted by two servers, a different order means they sort text
/// differently.
pub fn order_probe(utf8: bool) -> String {
    let mut probe: Vec<String> = ORDER_PROBE.iter().map(|p| literal(p)).collect();
    if utf8 {
        probe.extend(ORDER_PROBE_UTF8.iter().map(|p| literal(p)));
    }
    format!("ARRAY[{}]::text[]", probe.join(", "))
}

/// The order the connected database's default collation gives `order_probe`.
pub fn text_order(utf8: bool) -> String {
    format!(
        "SELECT array_agg(x ORDER BY x)::text FROM unnest({}) x",
        order_probe(utf8)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_list_is_sorted_for_binary_search() {
        assert!(KEYWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn identifiers_match_quote_ident() {
        assert_eq!(ident("app"), "app");
        assert_eq!(ident("app_2"), "app_2");
        assert_eq!(ident("App"), "\"App\"");
        assert_eq!(ident("Weird \"Role\""), "\"Weird \"\"Role\"\"\"");
        assert_eq!(ident("Order Items"), "\"Order Items\"");
        assert_eq!(ident("Ünïcode"), "\"Ünïcode\"");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("select"), "\"select\"");
        assert_eq!(ident("2fast"), "\"2fast\"");
        assert_eq!(ident(""), "\"\"");
        assert_eq!(qualified("public", "Order Items"), "public.\"Order Items\"");
    }

    #[test]
    fn literals_match_quote_literal() {
        assert_eq!(literal("abc"), "'abc'");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b'c"), "E'a\\\\b''c'");
    }
}
