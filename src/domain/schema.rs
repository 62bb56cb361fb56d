//! The schema catalogue of one side (one query's rows) and the BLUE-vs-GREEN diff, in memory.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Extension,
    Table,
    Column,
    Index,
    Constraint,
    View,
    MaterializedView,
    Sequence,
    ForeignTable,
}

impl ObjectKind {
    /// In declaration order: `ALL[k as usize] == k`.
    pub const ALL: [ObjectKind; 9] = [
        ObjectKind::Extension,
        ObjectKind::Table,
        ObjectKind::Column,
        ObjectKind::Index,
        ObjectKind::Constraint,
        ObjectKind::View,
        ObjectKind::MaterializedView,
        ObjectKind::Sequence,
        ObjectKind::ForeignTable,
    ];

    pub fn parse(s: &str) -> Option<ObjectKind> {
        Some(match s {
            "extension" => ObjectKind::Extension,
            "table" => ObjectKind::Table,
            "column" => ObjectKind::Column,
            "index" => ObjectKind::Index,
            "constraint" => ObjectKind::Constraint,
            "view" => ObjectKind::View,
            "materialized_view" => ObjectKind::MaterializedView,
            "sequence" => ObjectKind::Sequence,
            "foreign_table" => ObjectKind::ForeignTable,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Extension => "extension",
            ObjectKind::Table => "table",
            ObjectKind::Column => "column",
            ObjectKind::Index => "index",
            ObjectKind::Constraint => "constraint",
            ObjectKind::View => "view",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Sequence => "sequence",
            ObjectKind::ForeignTable => "foreign table",
        }
    }
}

/// Identity of an object: kind, schema, the table it belongs to (columns, indexes, constraints;
/// empty otherwise) and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: ObjectKind,
    pub schema: String,
    pub parent: String,
    pub name: String,
}

impl ObjectKey {
    /// The object as SQL would name it: `"Ünïcode"."Order Items".qty`.
    pub fn display(&self) -> String {
        use crate::sql::ident;
        let mut s = String::new();
        if !self.schema.is_empty() {
            s.push_str(&ident(&self.schema));
            s.push('.');
        }
        if !self.parent.is_empty() {
            s.push_str(&ident(&self.parent));
            s.push('.');
        }
        s.push_str(&ident(&self.name));
        s
    }
}

impl ObjectKey {
    /// One contiguous string (PostgreSQL names cannot hold NUL): a lookup then touches one
    /// allocation instead of four, which is most of the diff's time at 100,000+ objects.
    fn packed(&self) -> Box<str> {
        let mut s =
            String::with_capacity(4 + self.schema.len() + self.parent.len() + self.name.len());
        s.push(char::from(b'a' + self.kind as u8));
        for part in [&self.schema, &self.parent, &self.name] {
            s.push('\0');
            s.push_str(part);
        }
        s.into_boxed_str()
    }

    fn unpack(packed: &str) -> ObjectKey {
        let mut parts = packed.split('\0');
        let kind = parts.next().and_then(|k| k.bytes().next()).unwrap_or(b'a') - b'a';
        let mut next = || parts.next().unwrap_or_default().to_string();
        ObjectKey {
            kind: ObjectKind::ALL[usize::from(kind)],
            schema: next(),
            parent: next(),
            name: next(),
        }
    }
}

/// One side's objects with their definitions (type, default, index definition, …).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    objects: FxHashMap<Box<str>, Box<str>>,
    /// What the migration's publication and subscription in this database hold, read with the
    /// objects (both lists are as long as the schema); `None` when the reader was not told
    /// their names.
    pub members: Option<Members>,
    /// How the database's default collation sorts a fixed set of strings (`sql::text_order`):
    /// two sides that sort them differently sort text differently.
    pub text_order: Option<String>,
}

/// The tables the migration's publication and subscription of one database hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// The tables the publication publishes; none without the publication.
    pub published: Vec<super::observed::QualName>,
    /// The tables the subscription knows (`pg_subscription_rel`); `None` without the
    /// subscription.
    pub subscribed: Option<Vec<super::observed::QualName>>,
}

impl Catalog {
    pub fn with_capacity(n: usize) -> Self {
        Catalog {
            objects: FxHashMap::with_capacity_and_hasher(n, rustc_hash::FxBuildHasher),
            members: None,
            text_order: None,
        }
    }
    pub fn insert(&mut self, key: ObjectKey, definition: String) {
        self.objects
            .insert(key.packed(), definition.into_boxed_str());
    }
    pub fn get(&self, key: &ObjectKey) -> Option<&str> {
        self.objects.get(&key.packed()).map(|d| &**d)
    }
    pub fn len(&self) -> usize {
        self.objects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffStatus {
    OnlyBlue,
    OnlyGreen,
    Different,
}

impl DiffStatus {
    /// For people: `only on BLUE`, `only on GREEN`, `different`.
    pub fn label(self) -> &'static str {
        match self {
            DiffStatus::OnlyBlue => "only on BLUE",
            DiffStatus::OnlyGreen => "only on GREEN",
            DiffStatus::Different => "different",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffEntry {
    pub kind: ObjectKind,
    pub object: String,
    pub status: DiffStatus,
    pub blue: Option<String>,
    pub green: Option<String>,
    #[serde(skip)]
    key: ObjectKey,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SchemaDiff {
    pub only_blue: usize,
    pub only_green: usize,
    pub different: usize,
    pub objects: Vec<DiffEntry>,
}

impl SchemaDiff {
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Objects only in BLUE, only in GREEN, or defined differently; sorted by status, kind, name.
pub fn diff(blue: &Catalog, green: &Catalog) -> SchemaDiff {
    let mut out = SchemaDiff::default();
    let entry = |packed: &str, status, b: Option<&str>, g: Option<&str>| {
        let key = ObjectKey::unpack(packed);
        DiffEntry {
            kind: key.kind,
            object: key.display(),
            status,
            blue: b.map(str::to_string),
            green: g.map(str::to_string),
            key,
        }
    };
    for (key, b) in &blue.objects {
        match green.objects.get(key) {
            None => out
                .objects
                .push(entry(key, DiffStatus::OnlyBlue, Some(b), None)),
            Some(g) if g != b => {
                out.objects
                    .push(entry(key, DiffStatus::Different, Some(b), Some(g)));
            }
            Some(_) => {}
        }
    }
    for (key, g) in &green.objects {
        if !blue.objects.contains_key(key) {
            out.objects
                .push(entry(key, DiffStatus::OnlyGreen, None, Some(g)));
        }
    }
    out.objects
        .sort_by(|a, b| (a.status, &a.key).cmp(&(b.status, &b.key)));
    for e in &out.objects {
        match e.status {
            DiffStatus::OnlyBlue => out.only_blue += 1,
            DiffStatus::OnlyGreen => out.only_green += 1,
            DiffStatus::Different => out.different += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: ObjectKind, parent: &str, name: &str) -> ObjectKey {
        ObjectKey {
            kind,
            schema: "Ünïcode".into(),
            parent: parent.into(),
            name: name.into(),
        }
    }

    #[test]
    fn finds_only_blue_only_green_and_different() {
        let mut b = Catalog::default();
        let mut g = Catalog::default();
        b.insert(key(ObjectKind::Table, "", "Order Items"), String::new());
        g.insert(key(ObjectKind::Table, "", "Order Items"), String::new());
        b.insert(
            key(ObjectKind::Column, "Order Items", "qty"),
            "integer".into(),
        );
        g.insert(
            key(ObjectKind::Column, "Order Items", "qty"),
            "bigint".into(),
        );
        b.insert(
            key(ObjectKind::Column, "Order Items", "note"),
            "text".into(),
        );
        g.insert(
            key(ObjectKind::Index, "Order Items", "oi_idx"),
            "CREATE INDEX …".into(),
        );

        let d = diff(&b, &g);
        assert_eq!((d.only_blue, d.only_green, d.different), (1, 1, 1));
        assert_eq!(d.objects[0].status, DiffStatus::OnlyBlue);
        assert_eq!(d.objects[0].object, "\"Ünïcode\".\"Order Items\".note");
        assert_eq!(d.objects[1].status, DiffStatus::OnlyGreen);
        assert_eq!(d.objects[2].status, DiffStatus::Different);
        assert_eq!(d.objects[2].blue.as_deref(), Some("integer"));
        assert_eq!(d.objects[2].green.as_deref(), Some("bigint"));
    }

    #[test]
    fn keys_pack_and_unpack_for_every_kind() {
        for kind in ObjectKind::ALL {
            let k = key(kind, "Order Items", "a\"b c");
            assert_eq!(ObjectKey::unpack(&k.packed()), k);
            assert_eq!(ObjectKind::ALL[kind as usize], kind);
        }
        let mut c = Catalog::default();
        c.insert(key(ObjectKind::Index, "t", "i"), "def".into());
        assert_eq!(c.get(&key(ObjectKind::Index, "t", "i")), Some("def"));
        assert_eq!(c.get(&key(ObjectKind::Constraint, "t", "i")), None);
    }

    #[test]
    fn identical_catalogues_have_no_diff() {
        let mut b = Catalog::default();
        b.insert(key(ObjectKind::Sequence, "", "s"), "bigint".into());
        assert!(diff(&b, &b.clone()).is_empty());
    }
}
