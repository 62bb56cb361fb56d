//! Several replicated databases on the dashboard: what is read of each one besides the main
//! connection's database, and how their phases, checks, schema diffs and sequences become the
//! pair's. The instance's facts (server, slots, roles) come from the main readers; each other
//! database adds its subscriptions, publications, sequences and catalogue.

use crate::domain::checks::{self, Check, SideView};
use crate::domain::names::db_prefix;
use crate::domain::observed::{DbLive, Live, SequenceValue, Side};
use crate::domain::phase::{self, MigrationNames, PhaseReport};
use crate::domain::polled::Polled;
use crate::domain::schema::{self, Catalog, SchemaDiff};
use crate::domain::sequences::{self, SequenceRow};

use super::SidePolled;

/// What one side tells of one replicated database.
#[derive(Debug, Default)]
pub struct DbSide {
    /// The main reader is connected to this database: its readings serve, nothing more is read.
    pub main: bool,
    pub objects: Polled<DbLive>,
    pub sequences: Polled<Vec<SequenceValue>>,
    pub catalog: Polled<Catalog>,
}

/// One replicated database as the dashboard knows it.
#[derive(Debug)]
pub struct DbWatch {
    pub name: String,
    pub names: MigrationNames,
    pub blue: DbSide,
    pub green: DbSide,
    pub phase: PhaseReport,
    pub checks: Vec<Check>,
}

impl DbWatch {
    /// `main_db`: the database each side's main reader is connected to.
    pub fn new(name: &str, base: &MigrationNames, main_db: [&str; 2]) -> DbWatch {
        let names = base.for_database(name);
        let side = |main: &str| DbSide {
            main: main == name,
            ..DbSide::default()
        };
        DbWatch {
            name: name.to_string(),
            phase: phase::derive(&names, None, None),
            names,
            blue: side(main_db[0]),
            green: side(main_db[1]),
            checks: Vec::new(),
        }
    }

    pub fn side(&self, s: Side) -> &DbSide {
        match s {
            Side::Blue => &self.blue,
            Side::Green => &self.green,
        }
    }

    pub fn side_mut(&mut self, s: Side) -> &mut DbSide {
        match s {
            Side::Blue => &mut self.blue,
            Side::Green => &mut self.green,
        }
    }

    /// The instance as seen from this database on side `s`: the main reading with this
    /// database's objects; `None` while either is missing or failing.
    pub fn live(&self, s: Side, main: &SidePolled) -> Option<Live> {
        let l = main.live.fresh()?;
        let d = self.side(s);
        if d.main {
            return Some(l.clone());
        }
        Some(l.in_database(&self.name, d.objects.fresh()?))
    }

    /// The first error reading this database on side `s`, if any.
    pub fn error(&self, s: Side) -> Option<&str> {
        let d = self.side(s);
        [
            &d.objects.last_error,
            &d.sequences.last_error,
            &d.catalog.last_error,
        ]
        .into_iter()
        .flatten()
        .map(|e| e.message.as_str())
        .next()
    }

    fn sequences(&self, s: Side, main: &SidePolled) -> Vec<SequenceValue> {
        let d = self.side(s);
        if d.main {
            main.inventory
                .value
                .as_ref()
                .map(|i| i.sequences.clone())
                .unwrap_or_default()
        } else {
            d.sequences.value.clone().unwrap_or_default()
        }
    }

    fn catalog<'a>(&'a self, s: Side, main: &'a SidePolled) -> Option<&'a Catalog> {
        let d = self.side(s);
        if d.main {
            main.catalog.value.as_ref()
        } else {
            d.catalog.value.as_ref()
        }
    }

    /// This database's phase and checks, from what both sides tell of it.
    pub fn assess(&mut self, app_roles: &[String], blue: &SidePolled, green: &SidePolled) {
        let (lb, lg) = (self.live(Side::Blue, blue), self.live(Side::Green, green));
        let error = |s: Side, main: &SidePolled| {
            [&main.live.last_error, &self.side(s).objects.last_error]
                .into_iter()
                .flatten()
                .map(|e| e.message.clone())
                .next()
        };
        let (eb, eg) = (error(Side::Blue, blue), error(Side::Green, green));
        (self.phase, self.checks) = checks::assess(
            &self.names,
            app_roles,
            SideView {
                catalog: self.catalog(Side::Blue, blue),
                ..view(lb.as_ref(), eb.as_deref(), blue)
            },
            SideView {
                catalog: self.catalog(Side::Green, green),
                ..view(lg.as_ref(), eg.as_deref(), green)
            },
        );
    }
}

/// A database's view of a side: its own live facts, the instance's the main reader read.
fn view<'a>(live: Option<&'a Live>, error: Option<&'a str>, main: &'a SidePolled) -> SideView<'a> {
    SideView {
        live,
        inventory: main.inventory.value.as_ref(),
        error,
        rds: main.rds.value.as_ref(),
        catalog: None,
    }
}

/// The pair's phase: the least advanced database's, with an alarm when they differ.
pub fn phase(dbs: &[DbWatch]) -> Option<PhaseReport> {
    let reports: Vec<(String, PhaseReport)> = dbs
        .iter()
        .map(|d| (d.name.clone(), d.phase.clone()))
        .collect();
    phase::combine(&reports)
}

/// The pair's checks: every database's, as `checks::merge_databases` puts them together.
pub fn checks(dbs: &[DbWatch]) -> Vec<Check> {
    let Some((first, rest)) = dbs.split_first() else {
        return Vec::new();
    };
    checks::merge_databases(
        first.checks.clone(),
        rest.iter().map(|d| (d.name.as_str(), d.checks.as_slice())),
    )
}

/// Every database's sequences, each row named with its database.
pub fn sequences(dbs: &[DbWatch], blue: &SidePolled, green: &SidePolled) -> Vec<SequenceRow> {
    let mut out = Vec::new();
    for d in dbs {
        let prefix = db_prefix(Some(&d.name));
        out.extend(
            sequences::diff(
                &d.sequences(Side::Blue, blue),
                &d.sequences(Side::Green, green),
            )
            .into_iter()
            .map(|r| SequenceRow {
                sequence: format!("{prefix}{}", r.sequence),
                ..r
            }),
        );
    }
    out
}

/// Every database's schema differences, each object named with its database; `None` until
/// every database's two catalogues are read.
pub fn schema(dbs: &[DbWatch], blue: &SidePolled, green: &SidePolled) -> Option<SchemaDiff> {
    let mut out = SchemaDiff {
        only_blue: 0,
        only_green: 0,
        different: 0,
        objects: Vec::new(),
    };
    for d in dbs {
        let diff = schema::diff(d.catalog(Side::Blue, blue)?, d.catalog(Side::Green, green)?);
        let prefix = db_prefix(Some(&d.name));
        out.only_blue += diff.only_blue;
        out.only_green += diff.only_green;
        out.different += diff.different;
        out.objects.extend(diff.objects.into_iter().map(|mut e| {
            e.object = format!("{prefix}{}", e.object);
            e
        }));
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::super::{Effect, Msg, State, keys::Keymap, update};
    use crate::collect::poller::{Sample, SampleData};
    use crate::domain::names::DatabaseSet;
    use crate::domain::observed::{DbLive, Live, SequenceValue, Side};
    use crate::domain::phase::{Alarm, Phase};
    use crate::domain::testdata;

    /// BLUE serving with `app` and `billing` each prepared; GREEN subscribed to `app` only; the
    /// main readers have answered (`app`'s), `billing`'s not yet. Returns BLUE's reading.
    pub(crate) fn two() -> (State, Live) {
        let mut names = testdata::names();
        names.databases = DatabaseSet::Listed(vec!["app".into(), "billing".into()]);
        let mut st = State::new(
            names.clone(),
            vec!["app".into()],
            false,
            Duration::from_secs(1),
            false,
            Keymap::default(),
        );
        st.watch_databases(&["app".into(), "billing".into()], ["app", "app"]);
        let mut b = testdata::with_pub_slot(testdata::live(true));
        let slot = b.slots[0].clone();
        b.slots = ["app", "billing"]
            .iter()
            .map(|d| {
                let mut s = slot.clone();
                s.name = names.for_database(d).slot;
                s.database = Some((*d).to_string());
                s.active = *d == "app";
                s
            })
            .collect();
        let mut g = testdata::with_sub(testdata::live(false), true, None);
        g.subscriptions[0].name = names.for_database("app").subscription;
        g.subscriptions[0].slot_name = Some(names.for_database("app").slot);
        send(
            &mut st,
            Side::Blue,
            None,
            SampleData::Live(Ok(Box::new(b.clone()))),
        );
        send(
            &mut st,
            Side::Green,
            None,
            SampleData::Live(Ok(Box::new(g))),
        );
        (st, b)
    }

    fn send(st: &mut State, side: Side, db: Option<&str>, data: SampleData) {
        update(
            st,
            Msg::Sample(Sample {
                side,
                db: db.map(str::to_string),
                at: SystemTime::now(),
                data,
            }),
            SystemTime::now(),
            Instant::now(),
        );
    }

    fn objects(l: &Live) -> SampleData {
        SampleData::DbLive(Ok(Box::new(DbLive {
            subscriptions: l.subscriptions.clone(),
            publications: l.publications.clone(),
        })))
    }

    #[test]
    fn the_pair_is_at_its_least_advanced_database_and_each_one_has_a_row() {
        let (mut st, b) = two();
        // billing's objects not read yet: connecting, no alarm says a side is down
        assert!(st.connecting(Side::Blue));
        assert!(
            !st.phase
                .alarms
                .iter()
                .any(|a| matches!(a, Alarm::Unreachable { .. }))
        );
        billing_unsubscribed(&mut st, &b);
        let app = &st.databases[0];
        let billing = &st.databases[1];
        assert_eq!(app.phase.phase, Phase::Replicating, "{:?}", app.phase);
        assert!(billing.phase.phase < app.phase.phase, "{:?}", billing.phase);
        assert_eq!(st.phase.phase, billing.phase.phase, "the least advanced");
        assert!(
            st.phase
                .alarms
                .iter()
                .any(|a| matches!(a, Alarm::DatabasesApart { .. }))
        );
        // billing's failing checks are said of it
        assert!(
            st.checks
                .iter()
                .any(|c| !c.ok && c.finding.starts_with("[billing] ")),
            "{:#?}",
            st.checks
        );
        // GREEN subscribes billing: the databases agree, the alarm goes
        subscribed_both(&mut st, &b);
        assert_eq!(st.phase.phase, Phase::Replicating);
        assert!(
            !st.phase
                .alarms
                .iter()
                .any(|a| matches!(a, Alarm::DatabasesApart { .. }))
        );
    }

    /// `billing` read on both sides: BLUE has its publication, GREEN no subscription yet.
    pub(crate) fn billing_unsubscribed(st: &mut State, b: &Live) {
        send(st, Side::Blue, Some("billing"), objects(b));
        send(
            st,
            Side::Green,
            Some("billing"),
            objects(&testdata::live(false)),
        );
    }

    /// Both databases subscribed on GREEN.
    pub(crate) fn subscribed_both(st: &mut State, b: &Live) {
        let mut gb = testdata::with_sub(testdata::live(false), true, None);
        gb.subscriptions[0].name = st.databases[1].names.subscription.clone();
        gb.subscriptions[0].slot_name = Some(st.databases[1].names.slot.clone());
        send(st, Side::Blue, Some("billing"), objects(b));
        send(st, Side::Green, Some("billing"), objects(&gb));
    }

    /// `app`'s sequence equal on both sides, `billing`'s behind on GREEN.
    pub(crate) fn with_sequences() -> State {
        let (mut st, _) = two();
        let seq = |name: &str, v: i64| SequenceValue {
            sequence: crate::domain::observed::QualName {
                schema: "public".into(),
                name: name.into(),
            },
            last_value: Some(v),
        };
        let mut inv = testdata::inventory();
        inv.sequences = vec![seq("orders_id_seq", 10)];
        send(
            &mut st,
            Side::Blue,
            None,
            SampleData::Inventory(Ok(Box::new(inv.clone()))),
        );
        send(
            &mut st,
            Side::Green,
            None,
            SampleData::Inventory(Ok(Box::new(inv))),
        );
        send(
            &mut st,
            Side::Blue,
            Some("billing"),
            SampleData::Sequences(Ok(vec![seq("invoices_id_seq", 7)])),
        );
        send(
            &mut st,
            Side::Green,
            Some("billing"),
            SampleData::Sequences(Ok(vec![seq("invoices_id_seq", 3)])),
        );
        st
    }

    #[test]
    fn a_table_another_database_does_not_subscribe_is_said_of_it() {
        use crate::domain::observed::QualName;
        use crate::domain::schema::{Catalog, Members};
        let (mut st, b) = two();
        subscribed_both(&mut st, &b);
        let q = |n: &str| QualName {
            schema: "public".into(),
            name: n.into(),
        };
        let catalog = |members: Members| {
            let mut c = Catalog::default();
            c.members = Some(members);
            SampleData::Catalog(Ok(Box::new(c)))
        };
        let failing = |st: &State| {
            st.checks
                .iter()
                .find(|c| c.id == "tables_subscribed" && !c.ok)
                .map(|c| c.finding.clone())
        };
        let published = Members {
            published: vec![q("invoices"), q("late")],
            subscribed: None,
        };
        send(&mut st, Side::Blue, Some("billing"), catalog(published));
        let mut subscribed = Members {
            published: Vec::new(),
            subscribed: Some(vec![q("invoices")]),
        };
        send(
            &mut st,
            Side::Green,
            Some("billing"),
            catalog(subscribed.clone()),
        );
        let finding = failing(&st).expect("billing's late table is said");
        assert!(
            finding.starts_with("[billing] BLUE publishes 1 table(s)")
                && finding.contains("public.late"),
            "{finding}"
        );
        subscribed.subscribed = Some(vec![q("invoices"), q("late")]);
        send(&mut st, Side::Green, Some("billing"), catalog(subscribed));
        assert_eq!(failing(&st), None, "after the REFRESH");
    }

    #[test]
    fn sequences_of_every_database_are_named_with_it() {
        let st = with_sequences();
        let rows: Vec<(&str, Option<i128>)> = st
            .sequences
            .iter()
            .map(|r| (r.sequence.as_str(), r.difference))
            .collect();
        assert!(
            rows.contains(&("[app] public.orders_id_seq", Some(0))),
            "{rows:?}"
        );
        assert!(
            rows.contains(&("[billing] public.invoices_id_seq", Some(4))),
            "{rows:?}"
        );
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn with_all_a_database_created_later_is_watched_and_said() {
        let (mut st, b) = two();
        st.names.databases = DatabaseSet::All;
        billing_unsubscribed(&mut st, &b);
        let phase_before = st.phase.phase;
        let inventory = |names: &[&str]| {
            let mut inv = testdata::inventory();
            inv.databases = names
                .iter()
                .map(|n| testdata::database(n, Some(1)))
                .collect();
            SampleData::Inventory(Ok(Box::new(inv)))
        };
        let at = |st: &mut State, data| {
            update(
                st,
                Msg::Sample(Sample {
                    side: Side::Blue,
                    db: None,
                    at: SystemTime::now(),
                    data,
                }),
                SystemTime::now(),
                Instant::now(),
            )
        };
        // the same list: nothing to do
        assert!(at(&mut st, inventory(&["app", "billing"])).is_empty());
        // a database created since: watched, its readings kept for the others, said once
        let fx = at(&mut st, inventory(&["app", "billing", "new\tdb"]));
        assert!(
            matches!(&fx[..], [Effect::Watch(v)] if v == &["app", "billing", "new\tdb"]),
            "{fx:?}"
        );
        let watched: Vec<&str> = st.databases.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(watched, ["app", "billing", "new\tdb"]);
        assert!(st.databases[1].blue.objects.value.is_some(), "billing kept");
        let said = &st.journal.last().unwrap().text;
        assert!(said.contains("new database(s) \"new\tdb\""), "{said}");
        assert!(!said.contains("billing"), "{said}");
        // not subscribed anywhere: the pair is no further than the new database
        assert!(st.phase.phase <= phase_before, "{:?}", st.phase);
        assert!(at(&mut st, inventory(&["app", "billing", "new\tdb"])).is_empty());
        // dropped again
        let fx = at(&mut st, inventory(&["app", "billing"]));
        assert_eq!(fx.len(), 1);
        assert!(st.journal.last().unwrap().text.contains("no longer listed"));
        // a listed set never follows the inventory
        st.names.databases = DatabaseSet::Listed(vec!["app".into(), "billing".into()]);
        assert!(at(&mut st, inventory(&["app", "billing", "x"])).is_empty());
    }
}
