//! Checks that protect the instance as a whole, beyond the tables of the replicated database:
//! databases left out, other consumers of the source's WAL, writers the fence does not stop,
//! open transactions, pg_cron, the target's planner statistics and its worker limits.

use super::{CheckInput, Out, Severity, list};
use crate::domain::names::DatabaseSet;
use crate::domain::observed::{Database, Live, Side, Slot, Writer};
use crate::domain::phase::Direction;
use crate::format::bytes;
use crate::sql::{ident, literal};

/// Below this size a table without statistics is not worth a warning.
const STATS_MIN_BYTES: i64 = 1024 * 1024;
/// An open transaction older than this is worth a warning, not only a mention.
const LONG_XACT_S: f64 = 60.0;

pub(super) fn run(out: &mut Out, input: &CheckInput) {
    // The side that serves now is the one whose writes must not be lost.
    let src = input.phase.direction.map_or(Side::Blue, Direction::source);
    let tgt = src.other();
    uncovered_databases(out, input, src);
    let databases = replicated_count(input, src);
    for side in Side::BOTH {
        if let Some(live) = input.side(side).live {
            other_slots(out, input, side, side == src, live);
            logical_workers(out, side, live, databases);
        }
    }
    unfenced_writers(out, input, src);
    if let Some(live) = input.side(src).live {
        open_transactions(out, src, live);
    }
    cron(out, input, src, tgt);
    target_statistics(out, input, tgt);
}

fn db_name(d: &Database) -> String {
    let mut s = ident(&d.name);
    if let (Some(t), Some(b)) = (d.tables, d.bytes) {
        s.push_str(&format!(
            " ({t} table{}, {})",
            if t == 1 { "" } else { "s" },
            bytes(u64::try_from(b).unwrap_or(0))
        ));
    }
    s
}

fn uncovered_databases(out: &mut Out, input: &CheckInput, src: Side) {
    let v = input.side(src);
    let (Some(live), Some(inv)) = (v.live, v.inventory) else {
        return;
    };
    if inv.databases.is_empty() {
        return;
    }
    let up = src.upper();
    let covered = live.server.database.as_str();
    let names = input.names;
    let replicated = |d: &str| match &names.databases {
        DatabaseSet::Dsn => d == covered,
        DatabaseSet::Listed(v) => d == covered || v.iter().any(|x| x == d),
        // resolved on the source when an action runs: every database that takes connections
        DatabaseSet::All => true,
    };
    let others = || inv.databases.iter().filter(|d| !replicated(&d.name));
    let uncovered: Vec<String> = others()
        .filter(|d| d.tables.is_some_and(|t| t > 0))
        .map(db_name)
        .collect();
    // A database that refuses connections (datallowconn) takes no writes either: nothing to lose.
    let unread: Vec<String> = others()
        .filter(|d| d.allow_conn && d.tables.is_none())
        .map(|d| {
            format!(
                "{} ({})",
                ident(&d.name),
                d.error.as_deref().unwrap_or("not read")
            )
        })
        .collect();
    if uncovered.is_empty() {
        let what = match &names.databases {
            DatabaseSet::Dsn => format!("no database but {} holds user tables", ident(covered)),
            DatabaseSet::Listed(v) => format!(
                "no database outside the {} replicated holds user tables",
                v.len()
            ),
            DatabaseSet::All => "every database is replicated (databases = \"all\")".into(),
        };
        out.ok(
            "uncovered_databases",
            Severity::Blocking,
            Some(src),
            format!("{up}: {what}"),
        );
    } else {
        out.fail(
            "uncovered_databases",
            Severity::Blocking,
            Some(src),
            format!(
                "{up} holds databases that are not replicated: {}; every write to them after the snapshot is lost at the cutover (GREEN keeps the snapshot's copy)",
                list(&uncovered, 5)
            ),
            "add them to [replication] databases (or write databases = \"all\") before `prepare`, so each gets its own \
             publication, slot and subscription; or drop the databases no longer in use"
                .into(),
        );
    }
    if !unread.is_empty() {
        out.fail(
            "databases_readable",
            Severity::Warning,
            Some(src),
            format!(
                "{up}: could not look inside {}; if they hold tables, their writes after the snapshot are lost at the cutover",
                list(&unread, 5)
            ),
            "GRANT CONNECT on them to the role pgcutover connects as, or check them by hand"
                .into(),
        );
    }
}

fn slot_line(s: &Slot, live: &Live) -> String {
    let mut what = vec![s.plugin.clone().unwrap_or_else(|| "?".into())];
    what.push(if s.active { "active" } else { "inactive" }.into());
    if let Some(b) = s.lag_bytes(live.server.current_lsn) {
        what.push(format!("{} behind", bytes(b)));
    }
    format!("{} ({})", ident(&s.name), what.join(", "))
}

fn other_slots(out: &mut Out, input: &CheckInput, side: Side, serving: bool, live: &Live) {
    let up = side.upper();
    let others: Vec<&Slot> = live.other_logical_slots(input.names).collect();
    let lines: Vec<String> = others.iter().map(|s| slot_line(s, live)).collect();
    if others.is_empty() {
        out.ok(
            "other_logical_slots",
            Severity::Warning,
            Some(side),
            format!("{up}: no logical slot but pgcutover's"),
        );
    } else if serving {
        out.fail(
            "other_logical_slots",
            Severity::Warning,
            Some(side),
            format!(
                "{up}: other logical slots: {}; {} has no such slot, so their consumers (CDC, DMS, another subscriber) stop at the cutover",
                list(&lines, 5),
                side.other().upper()
            ),
            format!(
                "before the cutover let their consumers catch up and stop them; after it, create the slot on {} (SELECT pg_create_logical_replication_slot({}, {})) and start each consumer again from a fresh snapshot there",
                side.other().upper(),
                literal(&others[0].name),
                literal(others[0].plugin.as_deref().unwrap_or("pgoutput"))
            ),
        );
    } else {
        out.fail(
            "other_logical_slots",
            Severity::Warning,
            Some(side),
            format!(
                "{up}: logical slots nothing here needs: {}; copied by the snapshot, each keeps WAL on {up} from its position on",
                list(&lines, 5)
            ),
            format!(
                "SELECT pg_drop_replication_slot({}) on {up} (and the others), unless a consumer already reads it here",
                literal(&others[0].name)
            ),
        );
    }
}

/// How many databases are replicated, so how many subscriptions each side will hold: the
/// listed ones, or for `all` those the serving side's inventory would select.
pub(super) fn replicated_count(input: &CheckInput, src: Side) -> i64 {
    let n = match &input.names.databases {
        DatabaseSet::Dsn => 1,
        DatabaseSet::Listed(v) => v.len(),
        DatabaseSet::All => input
            .side(src)
            .inventory
            .and_then(|inv| crate::domain::names::select_all(&inv.databases).ok())
            .map_or(1, |v| v.len()),
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Each side subscribes in one direction or the other: one apply worker per database, and the
/// launcher, among the background workers.
fn logical_workers(out: &mut Out, side: Side, live: &Live, databases: i64) {
    let up = side.upper();
    let (Some(workers), Some(processes)) = (
        live.server.max_logical_replication_workers,
        live.server.max_worker_processes,
    ) else {
        return;
    };
    let finding = format!(
        "{up}: max_logical_replication_workers = {workers}, max_worker_processes = {processes}"
    );
    if workers >= databases && processes > databases {
        out.ok(
            "logical_workers",
            Severity::Blocking,
            Some(side),
            format!("{finding}: room for {databases} subscription(s)"),
        );
    } else {
        out.fail(
            "logical_workers",
            Severity::Blocking,
            Some(side),
            format!("{finding}: {databases} subscription(s) need {databases} apply worker(s) and the launcher"),
            format!(
                "raise max_logical_replication_workers to at least {databases} and max_worker_processes to at least {} (plus other background workers) and restart",
                databases + 1
            ),
        );
    }
}

fn unfenced_writers(out: &mut Out, input: &CheckInput, src: Side) {
    let Some(inv) = input.side(src).inventory else {
        return;
    };
    let up = src.upper();
    // the tool's role on the other side exists here too (the copy brought it): it is ours
    let other_tool = input.side(src.other()).live.map(|l| l.server.user.as_str());
    let writers: Vec<&Writer> = inv
        .writers
        .iter()
        .filter(|w| Some(w.name.as_str()) != other_tool)
        .collect();
    if writers.is_empty() {
        out.ok(
            "unfenced_writers",
            Severity::Warning,
            Some(src),
            format!("{up}: no role outside the app roles can log in and change tables"),
        );
        return;
    }
    let names: Vec<String> = writers
        .iter()
        .map(|w| {
            let mut notes = Vec::new();
            if w.superuser {
                notes.push("superuser".to_string());
            }
            if w.sessions > 0 {
                notes.push(format!("{} session(s) now", w.sessions));
            }
            if notes.is_empty() {
                ident(&w.name)
            } else {
                format!("{} ({})", ident(&w.name), notes.join(", "))
            }
        })
        .collect();
    out.fail(
        "unfenced_writers",
        Severity::Warning,
        Some(src),
        format!(
            "{up}: roles that can log in and change tables but are not app roles: {}; the fence does not stop them, and what they write on {up} during or after the window is not on {}",
            list(&names, 5),
            src.other().upper()
        ),
        format!(
            "add them to app_roles if the application uses them; otherwise make sure nothing connects as them during the window (ALTER ROLE {} NOLOGIN)",
            ident(&writers[0].name)
        ),
    );
}

fn open_transactions(out: &mut Out, src: Side, live: &Live) {
    let up = src.upper();
    if live.open_xacts.is_empty() {
        return;
    }
    let long = live
        .open_xacts
        .iter()
        .any(|x| x.xact_age_s.is_some_and(|a| a >= LONG_XACT_S));
    let lines: Vec<String> = live
        .open_xacts
        .iter()
        .map(crate::domain::observed::OpenXact::describe)
        .collect();
    out.fail(
        "open_transactions",
        if long {
            Severity::Warning
        } else {
            Severity::Info
        },
        Some(src),
        format!(
            "{up}: open transactions the fence would end: {}",
            list(&lines, 3)
        ),
        "let them finish before the cutover, or accept that the fence rolls them back".into(),
    );
}

fn cron(out: &mut Out, input: &CheckInput, src: Side, tgt: Side) {
    let jobs = |s: Side| input.side(s).inventory.and_then(|i| i.cron.as_ref());
    let active = |s: Side| jobs(s).map_or(0, |c| c.active);
    // where cron.job is, when pg_cron runs in another database than the connection's
    let place = |s: Side| {
        jobs(s)
            .and_then(|c| c.database.as_deref())
            .map(|d| format!(" in database {}", crate::sql::ident(d)))
            .unwrap_or_default()
    };
    for s in [src, tgt] {
        if let Some(e) = jobs(s).and_then(|c| c.error.as_deref()) {
            out.fail(
                "pg_cron",
                Severity::Warning,
                Some(s),
                format!(
                    "{}: pg_cron's jobs{} cannot be read: {e}",
                    s.upper(),
                    place(s)
                ),
                "let the tool's login connect there and read cron.job (GRANT CONNECT, GRANT USAGE ON SCHEMA cron, GRANT SELECT ON cron.job), or check the jobs by hand".into(),
            );
        }
    }
    let replicating = input.phase.direction.is_some();
    if replicating && active(tgt) > 0 {
        let up = tgt.upper();
        out.fail(
            "pg_cron",
            Severity::Warning,
            Some(tgt),
            format!(
                "{up}: {} active pg_cron job(s){} run while {up} replicates; what they write conflicts with the apply or is overwritten",
                active(tgt),
                place(tgt)
            ),
            format!(
                "UPDATE cron.job SET active = false on {up} now; activate them there after the cutover, and deactivate them on {}",
                src.upper()
            ),
        );
    }
    if active(src) > 0 {
        let up = src.upper();
        out.fail(
            "pg_cron",
            Severity::Info,
            Some(src),
            format!(
                "{up}: {} active pg_cron job(s){}; they must move to {} with the traffic",
                active(src),
                place(src),
                tgt.upper()
            ),
            format!(
                "set [cutover] move_pg_cron = true: the switch pauses them on {up} inside the window and activates them on {}; \
                 or do it by hand (UPDATE cron.job SET active = ...)",
                tgt.upper()
            ),
        );
    }
}

/// pg_upgrade before PostgreSQL 18 does not carry planner statistics: the target's largest tables
/// without any are the classic post-upgrade incident (plans flip under the full load).
fn target_statistics(out: &mut Out, input: &CheckInput, tgt: Side) {
    let Some(inv) = input.side(tgt).inventory else {
        return;
    };
    let up = tgt.upper();
    let missing: Vec<String> = inv
        .largest_tables
        .iter()
        .filter(|t| t.bytes >= STATS_MIN_BYTES && t.has_stats == Some(false))
        .map(|t| {
            format!(
                "{} ({})",
                t.table,
                bytes(u64::try_from(t.bytes).unwrap_or(0))
            )
        })
        .collect();
    let big = inv
        .largest_tables
        .iter()
        .filter(|t| t.bytes >= STATS_MIN_BYTES)
        .count();
    if missing.is_empty() {
        out.ok(
            "target_statistics",
            Severity::Warning,
            Some(tgt),
            format!("{up}: planner statistics for its {big} largest table(s) over 1 MB"),
        );
        return;
    }
    let first = inv
        .largest_tables
        .iter()
        .find(|t| t.has_stats == Some(false))
        .map(|t| t.table.to_string())
        .unwrap_or_default();
    out.fail(
        "target_statistics",
        Severity::Warning,
        Some(tgt),
        format!(
            "{up} has no planner statistics for {} of its {big} largest tables: {}; after the switch the planner guesses and plans can flip",
            missing.len(),
            list(&missing, 5)
        ),
        format!(
            "ANALYZE them on {up} before the switch (ANALYZE {first}; or vacuumdb --analyze-only --jobs 4)"
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::super::{Check, SideView, assess};
    use super::*;
    use crate::domain::observed::{Inventory, OpenXact, QualName, TableStats, Writer};
    use crate::domain::testdata;

    /// BLUE serving with the slot, GREEN subscribed: the pair while it replicates.
    fn checks(blue: (&Live, &Inventory), green: (&Live, &Inventory)) -> Vec<Check> {
        checks_of(&testdata::names(), blue, green)
    }

    fn checks_of(
        names: &crate::domain::phase::MigrationNames,
        blue: (&Live, &Inventory),
        green: (&Live, &Inventory),
    ) -> Vec<Check> {
        fn view<'a>((live, inv): (&'a Live, &'a Inventory)) -> SideView<'a> {
            SideView {
                live: Some(live),
                inventory: Some(inv),
                error: None,
                rds: None,
                catalog: None,
            }
        }
        let (_, checks) = assess(names, &["app".to_string()], view(blue), view(green));
        checks
    }

    fn pair() -> (Live, Live) {
        (
            testdata::with_pub_slot(testdata::live(true)),
            testdata::with_sub(testdata::live(false), true, None),
        )
    }

    fn find<'a>(c: &'a [Check], id: &str, side: Side) -> &'a Check {
        c.iter()
            .find(|c| c.id == id && c.side == Some(side))
            .unwrap_or_else(|| panic!("no {id} on {side}: {c:#?}"))
    }

    const IDS: [&str; 7] = [
        "uncovered_databases",
        "databases_readable",
        "other_logical_slots",
        "logical_workers",
        "unfenced_writers",
        "pg_cron",
        "target_statistics",
    ];

    #[test]
    fn a_clean_pair_is_silent() {
        let (b, g) = pair();
        let inv = testdata::inventory();
        let c = checks((&b, &inv), (&g, &inv));
        let noisy: Vec<&Check> = c
            .iter()
            .filter(|c| !c.ok && IDS.contains(&c.id) || c.id == "open_transactions")
            .collect();
        assert!(noisy.is_empty(), "{noisy:#?}");
        assert!(find(&c, "uncovered_databases", Side::Blue).ok);
        assert!(find(&c, "logical_workers", Side::Green).ok);
    }

    #[test]
    fn a_table_still_in_its_initial_copy_blocks_and_is_named() {
        let (b, mut g) = pair();
        let inv = testdata::inventory();
        assert!(
            find(
                &checks((&b, &inv), (&g, &inv)),
                "tables_synced",
                Side::Green
            )
            .ok
        );
        g.subscriptions[0].unsynced = vec![crate::domain::observed::UnsyncedTable {
            table: QualName {
                schema: "public".into(),
                name: "New \"t\"".into(),
            },
            state: "d".into(),
        }];
        let c = checks((&b, &inv), (&g, &inv));
        let t = find(&c, "tables_synced", Side::Green);
        assert!(!t.ok && t.blocks(), "{t:#?}");
        assert!(
            t.finding
                .contains(r#"public."New ""t""" (copying its rows)"#),
            "{}",
            t.finding
        );
        assert!(t.fix.contains("open on BLUE"), "{}", t.fix);
    }

    /// Check `id` of a clean pair whose catalogues are `blue` and `green`.
    fn catalog_check(
        id: &str,
        blue: &crate::domain::schema::Catalog,
        green: &crate::domain::schema::Catalog,
    ) -> Option<Check> {
        let (b, g) = pair();
        let inv = testdata::inventory();
        let view = |live, catalog| SideView {
            live: Some(live),
            inventory: Some(&inv),
            catalog: Some(catalog),
            ..SideView::default()
        };
        let (_, c) = assess(
            &testdata::names(),
            &["app".to_string()],
            view(&b, blue),
            view(&g, green),
        );
        c.into_iter().find(|c| c.id == id)
    }

    #[test]
    fn a_table_published_but_not_subscribed_blocks_and_is_named() {
        use crate::domain::schema::{Catalog, Members};
        let (b, g) = pair();
        let inv = testdata::inventory();
        let q = |name: &str| QualName {
            schema: "public".into(),
            name: name.into(),
        };
        let catalog = |published: &[&str], subscribed: Option<&[&str]>| {
            let mut c = Catalog::default();
            c.members = Some(Members {
                published: published.iter().map(|n| q(n)).collect(),
                subscribed: subscribed.map(|s| s.iter().map(|n| q(n)).collect()),
            });
            c
        };
        let run = |blue: &Catalog, green: &Catalog| catalog_check("tables_subscribed", blue, green);
        // not read yet (or the catalogue failed): nothing said
        assert!(
            checks((&b, &inv), (&g, &inv))
                .iter()
                .all(|c| c.id != "tables_subscribed")
        );
        // no subscription on GREEN (yet): nothing to compare
        assert_eq!(run(&catalog(&["a"], None), &catalog(&[], None)), None);
        let same = run(
            &catalog(&["a", "b"], None),
            &catalog(&[], Some(&["b", "a", "gone"])),
        )
        .unwrap();
        assert!(same.ok && same.side == Some(Side::Green), "{same:#?}");
        let c = run(
            &catalog(&["a", "New \"t\"", "b"], None),
            &catalog(&[], Some(&["a", "b"])),
        )
        .unwrap();
        assert!(c.blocks(), "{c:#?}");
        assert!(
            c.finding.starts_with(
                r#"BLUE publishes 1 table(s) that GREEN's subscription sub does not have: public."New ""t""""#
            ),
            "{}",
            c.finding
        );
        assert!(
            c.fix
                .starts_with("ALTER SUBSCRIPTION sub REFRESH PUBLICATION on GREEN"),
            "{}",
            c.fix
        );
    }

    #[test]
    fn green_sorting_text_otherwise_is_a_warning_with_the_reindex() {
        use crate::domain::schema::Catalog;
        let catalog = |order: Option<&str>| {
            let mut c = Catalog::default();
            c.text_order = order.map(str::to_string);
            c
        };
        let run = |blue: &Catalog, green: &Catalog| catalog_check("text_order", blue, green);
        // a side not read: nothing said
        assert_eq!(run(&catalog(Some("{A,a}")), &catalog(None)), None);
        let same = run(&catalog(Some("{A,B,a,b}")), &catalog(Some("{A,B,a,b}"))).unwrap();
        assert!(same.ok, "{same:#?}");
        let c = run(&catalog(Some("{A,B,a,b}")), &catalog(Some("{a,A,b,B}"))).unwrap();
        assert!(
            !c.ok && !c.blocks() && c.side == Some(Side::Green),
            "{c:#?}"
        );
        assert!(
            c.finding
                .starts_with("GREEN sorts text otherwise than BLUE"),
            "{}",
            c.finding
        );
        assert!(c.fix.contains("REINDEX"), "{}", c.fix);
    }

    #[test]
    fn a_role_that_may_not_emit_the_lsn_message_blocks_with_the_grant() {
        let (mut b, g) = pair();
        let inv = testdata::inventory();
        assert!(find(&checks((&b, &inv), (&g, &inv)), "emit_message", Side::Blue).ok);
        b.server.can_emit_message = Some(false);
        let c = checks((&b, &inv), (&g, &inv));
        let e = find(&c, "emit_message", Side::Blue);
        assert!(!e.ok && e.blocks(), "{e:#?}");
        assert!(e.fix.starts_with("GRANT EXECUTE ON FUNCTION"), "{}", e.fix);
        assert!(find(&c, "emit_message", Side::Green).ok);
    }

    #[test]
    fn the_other_side_s_tool_login_is_not_an_unfenced_writer() {
        let (b, mut g) = pair();
        let mut bi = testdata::inventory();
        let inv = testdata::inventory();
        let writer = |name: &str| Writer {
            name: name.into(),
            superuser: true,
            sessions: 0,
        };
        // GREEN is a copy of BLUE: the role the tool logs in as on GREEN is a role on BLUE too
        bi.writers = vec![writer("green_tool"), writer("admin")];
        g.server.user = "green_tool".into();
        let c = checks((&b, &bi), (&g, &inv));
        let w = find(&c, "unfenced_writers", Side::Blue);
        assert!(w.finding.contains("admin (superuser)"), "{}", w.finding);
        assert!(!w.finding.contains("green_tool"), "{}", w.finding);
        bi.writers = vec![writer("green_tool")];
        assert!(
            find(
                &checks((&b, &bi), (&g, &inv)),
                "unfenced_writers",
                Side::Blue
            )
            .ok
        );
    }

    #[test]
    fn a_database_with_tables_left_out_blocks_and_is_named() {
        let (b, g) = pair();
        let mut inv = testdata::inventory();
        let mut closed = testdata::database("closed", None);
        closed.allow_conn = false;
        let mut broken = testdata::database("locked", None);
        broken.error = Some("permission denied for database locked".into());
        inv.databases.extend([
            testdata::database("billing", Some(12)),
            testdata::database("postgres", Some(0)),
            testdata::database("Ünïcode \"db\"", Some(1)),
            closed,
            broken,
        ]);
        let c = checks((&b, &inv), (&g, &testdata::inventory()));
        let u = find(&c, "uncovered_databases", Side::Blue);
        assert!(u.blocks(), "{u:?}");
        assert!(
            u.finding.contains("billing (12 tables, 192.0 kB)")
                && u.finding.contains(r#""Ünïcode ""db""" (1 table,"#),
            "{}",
            u.finding
        );
        assert!(
            !u.finding.contains("postgres") && !u.finding.contains("closed"),
            "no tables, or no connections: nothing to lose: {}",
            u.finding
        );
        let r = find(&c, "databases_readable", Side::Blue);
        assert!(!r.ok && !r.blocks());
        assert!(
            r.finding.contains("locked (permission denied") && !r.finding.contains("closed"),
            "{}",
            r.finding
        );
    }

    #[test]
    fn listed_databases_are_covered_and_a_fourth_still_blocks() {
        let (b, g) = pair();
        let mut inv = testdata::inventory();
        inv.databases.extend([
            testdata::database("billing", Some(12)),
            testdata::database("Ünïcode \"db\"", Some(1)),
        ]);
        let mut names = testdata::names();
        names.databases = DatabaseSet::Listed(vec![
            b.server.database.clone(),
            "billing".into(),
            "Ünïcode \"db\"".into(),
        ]);
        let c = checks_of(&names, (&b, &inv), (&g, &inv));
        let u = find(&c, "uncovered_databases", Side::Blue);
        assert!(u.ok, "{u:?}");
        assert!(
            u.finding.contains("outside the 3 replicated"),
            "{}",
            u.finding
        );
        inv.databases.push(testdata::database("reports", Some(4)));
        let c = checks_of(&names, (&b, &inv), (&g, &inv));
        let u = find(&c, "uncovered_databases", Side::Blue);
        assert!(
            u.blocks() && u.finding.contains("reports (4 tables"),
            "{u:?}"
        );
        assert!(!u.finding.contains("billing"), "{}", u.finding);
        assert!(u.fix.contains("[replication] databases"), "{}", u.fix);
        names.databases = DatabaseSet::All;
        let c = checks_of(&names, (&b, &inv), (&g, &inv));
        assert!(find(&c, "uncovered_databases", Side::Blue).ok);
        // 4 + 8 workers (the default) leave room for 4 databases, not 5
        names.databases = DatabaseSet::Listed((0..5).map(|i| format!("db{i}")).collect());
        let c = checks_of(&names, (&b, &inv), (&g, &inv));
        let w = find(&c, "logical_workers", Side::Green);
        assert!(
            w.blocks() && w.finding.contains("5 subscription(s)"),
            "{w:?}"
        );
        // a slot and a WAL sender per database on each side: 10 of each leave room for 5 on
        // GREEN (none used) but not on BLUE with 7 slots and 7 senders taken by others
        let (mut b5, g5) = (b.clone(), g.clone());
        b5.server.replication_slots_used = 7;
        b5.server.wal_senders_used = 7;
        b5.slots.clear();
        let c = checks_of(&names, (&b5, &inv), (&g5, &inv));
        let sl = find(&c, "replication_slots_free", Side::Blue);
        assert!(
            sl.blocks()
                && sl
                    .finding
                    .contains("3 of 10 replication slots free, 5 more needed"),
            "{sl:?}"
        );
        assert!(sl.fix.contains("at least 12"), "{}", sl.fix);
        assert!(find(&c, "wal_senders_free", Side::Blue).blocks());
        assert!(find(&c, "replication_slots_free", Side::Green).ok);
        assert!(find(&c, "wal_senders_free", Side::Green).ok);
        // the migration's own slots, there already and streaming, are not needed again
        for i in 0..5 {
            let mut own = b.slots[0].clone();
            own.name = names.for_database(&format!("db{i}")).slot;
            own.active = true;
            b5.slots.push(own);
        }
        let c = checks_of(&names, (&b5, &inv), (&g5, &inv));
        assert!(find(&c, "replication_slots_free", Side::Blue).ok);
        assert!(find(&c, "wal_senders_free", Side::Blue).ok);
    }

    #[test]
    fn other_slots_warn_on_the_serving_side_and_are_waste_on_the_other() {
        let (mut b, mut g) = pair();
        let mut cdc = b.slots[0].clone();
        cdc.name = "debezium".into();
        cdc.plugin = Some("test_decoding".into());
        cdc.confirmed_flush_lsn = Some(crate::domain::lsn::Lsn::from_u64(0x100 - 0x20));
        b.slots.push(cdc.clone());
        let mut tmp = cdc.clone();
        tmp.name = "pg_walsender_tmp".into();
        tmp.temporary = true;
        b.slots.push(tmp);
        g.slots.push(cdc);
        let inv = testdata::inventory();
        let c = checks((&b, &inv), (&g, &inv));
        let blue = find(&c, "other_logical_slots", Side::Blue);
        assert!(!blue.ok && blue.severity == Severity::Warning);
        assert!(
            blue.finding
                .contains("debezium (test_decoding, inactive, 32 B behind)")
                && blue.finding.contains("stop at the cutover")
                && !blue.finding.contains("tmp"),
            "{}",
            blue.finding
        );
        assert!(
            blue.fix
                .contains("pg_create_logical_replication_slot('debezium', 'test_decoding')")
        );
        let green = find(&c, "other_logical_slots", Side::Green);
        assert!(green.finding.contains("keeps WAL"), "{}", green.finding);
        assert!(green.fix.contains("pg_drop_replication_slot('debezium')"));
    }

    #[test]
    fn writers_the_fence_misses_open_transactions_cron_and_statistics() {
        let (mut b, g) = pair();
        b.open_xacts.push(OpenXact {
            pid: 4242,
            user: Some("app".into()),
            state: Some("idle in transaction".into()),
            application_name: Some("psql".into()),
            xact_age_s: Some(75.0),
        });
        let mut bi = testdata::inventory();
        bi.writers = vec![
            Writer {
                name: "etl".into(),
                superuser: false,
                sessions: 2,
            },
            Writer {
                name: "admin".into(),
                superuser: true,
                sessions: 0,
            },
        ];
        bi.cron = Some(crate::domain::observed::CronJobs {
            active: 2,
            total: 3,
            ..Default::default()
        });
        let mut gi = testdata::inventory();
        gi.cron = Some(crate::domain::observed::CronJobs {
            active: 1,
            total: 3,
            database: Some("cron db".into()),
            error: None,
        });
        let table = |name: &str, bytes: i64, has_stats| TableStats {
            table: QualName {
                schema: "public".into(),
                name: name.into(),
            },
            bytes,
            has_stats,
        };
        gi.largest_tables = vec![
            table("big", 120 << 20, Some(false)),
            table("analyzed", 60 << 20, Some(true)),
            table("unreadable", 30 << 20, None),
            table("tiny", 8192, Some(false)),
        ];
        let c = checks((&b, &bi), (&g, &gi));
        let w = find(&c, "unfenced_writers", Side::Blue);
        assert!(
            w.finding
                .contains("etl (2 session(s) now), admin (superuser)"),
            "{}",
            w.finding
        );
        let x = find(&c, "open_transactions", Side::Blue);
        assert_eq!(x.severity, Severity::Warning, "75 s is long");
        assert!(
            x.finding
                .contains("pid 4242 (app, psql, idle in transaction for 1 min 15 s)"),
            "{}",
            x.finding
        );
        let cg = find(&c, "pg_cron", Side::Green);
        assert!(
            cg.finding.contains(
                "1 active pg_cron job(s) in database \"cron db\" run while GREEN replicates"
            ),
            "{}",
            cg.finding
        );
        assert_eq!(find(&c, "pg_cron", Side::Blue).severity, Severity::Info);
        let s = find(&c, "target_statistics", Side::Green);
        assert!(
            s.finding
                .contains("for 1 of its 3 largest tables: public.big (120.0 MB)"),
            "unreadable and tiny tables are not counted as missing: {}",
            s.finding
        );
        assert!(s.fix.contains("ANALYZE public.big;"), "{}", s.fix);
    }

    #[test]
    fn cron_jobs_that_cannot_be_read_are_not_taken_for_none() {
        let (b, g) = pair();
        let bi = testdata::inventory();
        let mut gi = testdata::inventory();
        gi.cron = Some(crate::domain::observed::CronJobs {
            database: Some("cron".into()),
            error: Some("permission denied for schema cron".into()),
            ..Default::default()
        });
        let c = checks((&b, &bi), (&g, &gi));
        let cg = find(&c, "pg_cron", Side::Green);
        assert_eq!(cg.severity, Severity::Warning);
        assert!(
            cg.finding
                .contains("pg_cron's jobs in database cron cannot be read: permission denied"),
            "{}",
            cg.finding
        );
    }

    #[test]
    fn too_few_workers_block() {
        let (b, mut g) = pair();
        g.server.max_logical_replication_workers = Some(0);
        let inv = testdata::inventory();
        let c = checks((&b, &inv), (&g, &inv));
        let w = find(&c, "logical_workers", Side::Green);
        assert!(
            w.blocks()
                && w.fix
                    .contains("max_logical_replication_workers to at least 1")
        );
    }
}
