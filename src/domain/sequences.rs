//! Sequence values on both sides: what the cutover must copy, and how far apart they are.

use std::collections::BTreeMap;

use serde::Serialize;

use super::observed::{QualName, SequenceValue};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceRow {
    pub sequence: String,
    pub blue: Option<i64>,
    pub green: Option<i64>,
    /// blue − green when both have a value.
    pub difference: Option<i128>,
    /// Present on one side only.
    pub only_on: Option<super::observed::Side>,
}

/// One row per sequence on either side, sorted by name.
pub fn diff(blue: &[SequenceValue], green: &[SequenceValue]) -> Vec<SequenceRow> {
    use super::observed::Side;
    let mut all: BTreeMap<&QualName, (Option<&SequenceValue>, Option<&SequenceValue>)> =
        BTreeMap::new();
    for s in blue {
        all.entry(&s.sequence).or_default().0 = Some(s);
    }
    for s in green {
        all.entry(&s.sequence).or_default().1 = Some(s);
    }
    all.into_iter()
        .map(|(name, (b, g))| {
            let bv = b.and_then(|s| s.last_value);
            let gv = g.and_then(|s| s.last_value);
            SequenceRow {
                sequence: name.to_string(),
                blue: bv,
                green: gv,
                difference: match (bv, gv) {
                    (Some(b), Some(g)) => Some(i128::from(b) - i128::from(g)),
                    _ => None,
                },
                only_on: match (b, g) {
                    (Some(_), None) => Some(Side::Blue),
                    (None, Some(_)) => Some(Side::Green),
                    _ => None,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::observed::Side;

    fn sv(schema: &str, name: &str, v: Option<i64>) -> SequenceValue {
        SequenceValue {
            sequence: QualName {
                schema: schema.into(),
                name: name.into(),
            },
            last_value: v,
        }
    }

    #[test]
    fn differences_and_one_sided_sequences() {
        let blue = vec![
            sv("public", "a_id_seq", Some(120)),
            sv("public", "only_b", Some(1)),
        ];
        let green = vec![
            sv("public", "a_id_seq", Some(100)),
            sv("Ünïcode", "Order Items_id_seq", None),
        ];
        let rows = diff(&blue, &green);
        assert_eq!(rows.len(), 3);
        let a = rows
            .iter()
            .find(|r| r.sequence == "public.a_id_seq")
            .unwrap();
        assert_eq!(a.difference, Some(20));
        let ob = rows.iter().find(|r| r.sequence == "public.only_b").unwrap();
        assert_eq!(ob.only_on, Some(Side::Blue));
        let og = rows
            .iter()
            .find(|r| r.sequence == "\"Ünïcode\".\"Order Items_id_seq\"")
            .unwrap();
        assert_eq!(
            (og.only_on, og.green, og.difference),
            (Some(Side::Green), None, None)
        );
    }
}
