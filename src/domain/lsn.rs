//! Log sequence numbers: a thin wrapper over `postgres_types::PgLsn` that adds the checked
//! arithmetic and strict parsing the engine needs (PgLsn silently accepts `0/1FFFFFFFF`).

use std::fmt;
use std::str::FromStr;

use postgres_types::PgLsn;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(u64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLsnError(pub String);

impl fmt::Display for ParseLsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an LSN: expected two hexadecimal numbers of at most 8 digits joined by `/`, like 0/1D6ACA0",
            crate::text::echo(&self.0)
        )
    }
}

impl std::error::Error for ParseLsnError {}

impl Lsn {
    pub const ZERO: Lsn = Lsn(0);

    pub const fn from_u64(v: u64) -> Self {
        Lsn(v)
    }

    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The LSN `bytes` further on; `None` past the end of the WAL address space.
    pub fn checked_add(self, bytes: u64) -> Option<Lsn> {
        self.0.checked_add(bytes).map(Lsn)
    }

    /// Bytes from `earlier` to `self`; negative when `earlier` is ahead (a lag sample can see a
    /// slot confirm past the LSN read a moment before, so callers must not assume order).
    pub fn diff(self, earlier: Lsn) -> i128 {
        i128::from(self.0) - i128::from(earlier.0)
    }

    /// `self - earlier` clamped at zero: what "how far behind" means for lag and retention.
    pub fn bytes_since(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = || ParseLsnError(s.to_string());
        let (hi, lo) = t.split_once('/').ok_or_else(err)?;
        let ok_half =
            |h: &str| !h.is_empty() && h.len() <= 8 && h.chars().all(|c| c.is_ascii_hexdigit());
        if !ok_half(hi) || !ok_half(lo) {
            return Err(err());
        }
        let lsn: PgLsn = t.parse().map_err(|_| err())?;
        Ok(Lsn(u64::from(lsn)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&PgLsn::from(self.0), f)
    }
}

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<PgLsn> for Lsn {
    fn from(v: PgLsn) -> Self {
        Lsn(u64::from(v))
    }
}

impl From<Lsn> for PgLsn {
    fn from(v: Lsn) -> Self {
        PgLsn::from(v.0)
    }
}

impl Serialize for Lsn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_like_postgres() {
        let l: Lsn = "0/1D6ACA0".parse().unwrap();
        assert_eq!(l.as_u64(), 0x1D6ACA0);
        assert_eq!(l.to_string(), "0/1D6ACA0");
        let big: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(big.as_u64(), (0x16 << 32) | 0xB374D848);
        assert_eq!(big.to_string(), "16/B374D848");
        // lower case and padding are accepted, output is PostgreSQL's form
        assert_eq!(
            "0/01d6aca0".parse::<Lsn>().unwrap().to_string(),
            "0/1D6ACA0"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "0",
            "/1",
            "0/",
            "0/1FFFFFFFF",
            "G/1",
            "0/1/2",
            "0x1/2",
            "-1/2",
        ] {
            let e = bad.parse::<Lsn>().unwrap_err();
            assert!(e.to_string().contains("is not an LSN"), "{bad}: {e}");
        }
    }

    #[test]
    fn add_one_byte_crosses_the_segment_boundary() {
        let l: Lsn = "0/FFFFFFFF".parse().unwrap();
        assert_eq!(l.checked_add(1).unwrap().to_string(), "1/0");
        assert!(Lsn::from_u64(u64::MAX).checked_add(1).is_none());
    }

    #[test]
    fn differences_are_signed_and_clamped() {
        let a: Lsn = "0/100".parse().unwrap();
        let b: Lsn = "0/180".parse().unwrap();
        assert_eq!(b.diff(a), 0x80);
        assert_eq!(a.diff(b), -0x80);
        assert_eq!(a.bytes_since(b), 0);
        assert_eq!(b.bytes_since(a), 0x80);
    }

    #[test]
    fn serde_round_trip_as_text() {
        let l: Lsn = "A/B".parse().unwrap();
        let j = serde_json::to_string(&l).unwrap();
        assert_eq!(j, "\"A/B\"");
        assert_eq!(serde_json::from_str::<Lsn>(&j).unwrap(), l);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_text_parses_or_errs_briefly(s in ".{0,100}") {
                match s.parse::<Lsn>() {
                    Ok(l) => prop_assert_eq!(l.to_string().parse::<Lsn>().unwrap(), l),
                    Err(e) => prop_assert!(e.to_string().len() < 400),
                }
            }

            #[test]
            fn token_soup_parses_or_errs_briefly(s in crate::text::token_soup(
                &["0", "1", "F", "f", "/", "+", "-", "0x", "FFFFFFFF", "100000000"], 12,
            )) {
                match s.parse::<Lsn>() {
                    Ok(l) => prop_assert_eq!(l.to_string().parse::<Lsn>().unwrap(), l),
                    Err(e) => prop_assert!(e.to_string().len() < 400),
                }
            }

            #[test]
            fn display_round_trips(v in any::<u64>()) {
                let l = Lsn::from_u64(v);
                prop_assert_eq!(l.to_string().parse::<Lsn>().unwrap(), l);
            }
        }

        #[test]
        fn a_huge_input_is_not_echoed_whole() {
            let e = "x".repeat(10_000_000).parse::<Lsn>().unwrap_err();
            assert!(e.to_string().len() < 400);
        }
    }
}
