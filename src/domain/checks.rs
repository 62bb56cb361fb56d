//! Pre-flight checks: pure functions of what was observed on both sides. Each check has a stable
//! id, a severity, a finding that names the objects involved and the fix.

use serde::Serialize;

mod instance;

use super::observed::{Inventory, Live, QualName, Side, Subscription, UnsyncedTable};
use super::phase::{Direction, MigrationNames, Phase, PhaseReport};
use super::rds::InstanceFacts;
use super::schema::Catalog;
use crate::sql::{ident, literal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Blocking,
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub severity: Severity,
    pub ok: bool,
    /// The side the finding is about; `None` for checks comparing both.
    pub side: Option<Side>,
    pub finding: String,
    /// What to do; empty when ok.
    pub fix: String,
}

impl Check {
    pub fn blocks(&self) -> bool {
        !self.ok && self.severity == Severity::Blocking
    }
}

/// What is known of one side for the checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SideView<'a> {
    pub live: Option<&'a Live>,
    pub inventory: Option<&'a Inventory>,
    pub error: Option<&'a str>,
    /// What the AWS APIs said, when the side is an RDS instance and AWS was read.
    pub rds: Option<&'a InstanceFacts>,
    /// The schema catalogue of the database checked, with its publication's and subscription's
    /// tables (read slowly).
    pub catalog: Option<&'a Catalog>,
}

pub struct CheckInput<'a> {
    pub names: &'a MigrationNames,
    pub app_roles: &'a [String],
    pub phase: &'a PhaseReport,
    pub blue: SideView<'a>,
    pub green: SideView<'a>,
}

impl<'a> CheckInput<'a> {
    fn side(&self, s: Side) -> SideView<'a> {
        match s {
            Side::Blue => self.blue,
            Side::Green => self.green,
        }
    }
}

/// At most `max` names, then "and N more", so a finding stays one readable line.
pub fn list<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    let mut s: Vec<String> = items
        .iter()
        .take(max)
        .map(std::string::ToString::to_string)
        .collect();
    if items.len() > max {
        s.push(format!("and {} more", items.len() - max));
    }
    s.join(", ")
}

struct Out(Vec<Check>);

impl Out {
    fn ok(&mut self, id: &'static str, sev: Severity, side: Option<Side>, finding: String) {
        self.0.push(Check {
            id,
            severity: sev,
            ok: true,
            side,
            finding,
            fix: String::new(),
        });
    }
    fn fail(
        &mut self,
        id: &'static str,
        sev: Severity,
        side: Option<Side>,
        finding: String,
        fix: String,
    ) {
        self.0.push(Check {
            id,
            severity: sev,
            ok: false,
            side,
            finding,
            fix,
        });
    }
}

/// Phase, alarms and pre-flight checks from both sides' observations: what `status`, `check`,
/// the engine's guards and the dashboard all start from.
pub fn assess(
    names: &MigrationNames,
    app_roles: &[String],
    blue: SideView,
    green: SideView,
) -> (PhaseReport, Vec<Check>) {
    let phase = super::phase::derive(names, blue.live, green.live);
    let checks = run(&CheckInput {
        names,
        app_roles,
        phase: &phase,
        blue,
        green,
    });
    (phase, checks)
}

/// Several replicated databases' checks as one list: the first database's all (the instance's
/// findings read the same from each), then every other database's failing ones said of it
/// (`[db] `), a finding already listed kept once, failing if any database fails it.
pub fn merge_databases<'a>(
    mut first: Vec<Check>,
    others: impl IntoIterator<Item = (&'a str, &'a [Check])>,
) -> Vec<Check> {
    for (db, checks) in others {
        let prefix = super::names::db_prefix(Some(db));
        for c in checks.iter().filter(|c| !c.ok) {
            let same = |m: &Check| m.id == c.id && m.side == c.side && m.finding == c.finding;
            if let Some(m) = first.iter_mut().find(|m| same(m)) {
                m.ok &= c.ok;
                continue;
            }
            first.push(Check {
                finding: format!("{prefix}{}", c.finding),
                ..c.clone()
            });
        }
    }
    first
}

pub fn run(input: &CheckInput) -> Vec<Check> {
    let mut out = Out(Vec::new());
    for side in Side::BOTH {
        let v = input.side(side);
        let Some(live) = v.live else {
            out.fail(
                "reachable",
                Severity::Blocking,
                Some(side),
                format!(
                    "{} cannot be read: {}",
                    side.upper(),
                    v.error.unwrap_or("no data yet")
                ),
                format!(
                    "check [{side}] in the configuration, the network path and the credentials"
                ),
            );
            continue;
        };
        server_checks(&mut out, input, side, live);
        emit_message_check(&mut out, side, live);
        if let Some(inv) = v.inventory {
            inventory_checks(&mut out, side, inv);
        }
    }
    app_roles_check(&mut out, input);
    subscription_check(&mut out, input);
    tables_subscribed_check(&mut out, input);
    text_order_check(&mut out, input);
    extensions_check(&mut out, input);
    rds_checks(&mut out, input, names_slot(input));
    instance::run(&mut out, input);
    out.0.sort_by_key(|c| (c.ok, c.severity));
    out.0
}

#[allow(clippy::too_many_lines)] // a list of checks, one after another in the order shown; each is a few lines
fn server_checks(out: &mut Out, input: &CheckInput, side: Side, live: &Live) {
    let s = &live.server;
    let up = side.upper();
    if s.wal_level == "logical" {
        out.ok(
            "wal_level",
            Severity::Blocking,
            Some(side),
            format!("{up}: wal_level = logical"),
        );
    } else {
        let how = if s.is_rds {
            "set rds.logical_replication = 1 in the instance's parameter group and reboot it"
        } else {
            "ALTER SYSTEM SET wal_level = logical; then restart the server"
        };
        out.fail(
            "wal_level",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: wal_level = {}, logical replication needs logical",
                s.wal_level
            ),
            how.into(),
        );
    }

    if s.in_recovery {
        out.fail(
            "not_in_recovery",
            Severity::Blocking,
            Some(side),
            format!(
                "{up} is in recovery (a standby or still restoring): it cannot publish or subscribe"
            ),
            "wait for the restore to finish, or promote the server".into(),
        );
    }

    let r = &live.replication_role;
    if r.may_replicate() {
        let how = if r.superuser {
            "superuser"
        } else if r.replication {
            "REPLICATION"
        } else {
            "rds_replication"
        };
        out.ok(
            "replication_role",
            Severity::Blocking,
            Some(side),
            format!("{up}: role {} may replicate ({how})", ident(&r.name)),
        );
    } else if !r.exists {
        out.fail(
            "replication_role",
            Severity::Blocking,
            Some(side),
            format!("{up}: replication role {} does not exist", ident(&r.name)),
            format!(
                "CREATE ROLE {} LOGIN REPLICATION; or set [replication] user to an existing role",
                ident(&r.name)
            ),
        );
    } else {
        let grant = if s.is_rds {
            format!("GRANT rds_replication TO {};", ident(&r.name))
        } else {
            format!("ALTER ROLE {} REPLICATION;", ident(&r.name))
        };
        out.fail(
            "replication_role",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: role {} has neither REPLICATION nor rds_replication",
                ident(&r.name)
            ),
            grant,
        );
    }

    match live.publication(&input.names.publication) {
        None => {
            // Expected before prepare; GREEN inherits BLUE's publication through the snapshot.
            let (sev, fix) = if input.phase.phase <= Phase::Setup && side == Side::Blue {
                (Severity::Info, "the prepare action creates it".to_string())
            } else {
                (
                    Severity::Warning,
                    format!(
                        "CREATE PUBLICATION {} FOR ALL TABLES; (needed on {up} for replication out of it)",
                        ident(&input.names.publication)
                    ),
                )
            };
            out.fail(
                "publication",
                sev,
                Some(side),
                format!(
                    "{up}: publication {} does not exist",
                    ident(&input.names.publication)
                ),
                fix,
            );
        }
        Some(p) => {
            let missing = p.missing_operations();
            if !p.all_tables || !missing.is_empty() {
                let mut what = Vec::new();
                if !p.all_tables {
                    what.push("is not FOR ALL TABLES".to_string());
                }
                if !missing.is_empty() {
                    what.push(format!("does not publish {}", missing.join(", ")));
                }
                out.fail(
                    "publication",
                    Severity::Blocking,
                    Some(side),
                    format!("{up}: publication {} {}", ident(&p.name), what.join(" and ")),
                    format!(
                        "DROP PUBLICATION {0}; CREATE PUBLICATION {0} FOR ALL TABLES; (default publish = insert, update, delete, truncate)",
                        ident(&p.name)
                    ),
                );
            } else {
                out.ok(
                    "publication",
                    Severity::Blocking,
                    Some(side),
                    format!(
                        "{up}: publication {} for all tables, all operations",
                        ident(&p.name)
                    ),
                );
            }
        }
    }

    // Each replicated database needs a slot and a WAL sender, on BLUE forward and on GREEN for
    // the way back; the migration's own that exist already are counted as had.
    let src = input.phase.direction.map_or(Side::Blue, Direction::source);
    let databases = instance::replicated_count(input, src);
    let ours: Vec<_> = live
        .slots
        .iter()
        .filter(|sl| input.names.owns_slot(&sl.name))
        .collect();
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let need_slots = (databases - count(ours.len())).max(0);
    let free_slots = s.max_replication_slots - s.replication_slots_used;
    let per_db = if databases > 1 {
        format!(" ({databases} databases replicated)")
    } else {
        String::new()
    };
    if free_slots >= need_slots {
        out.ok(
            "replication_slots_free",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: {free_slots} of {} replication slots free{per_db}",
                s.max_replication_slots
            ),
        );
    } else {
        out.fail(
            "replication_slots_free",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: {free_slots} of {} replication slots free, {need_slots} more needed{per_db}",
                s.max_replication_slots
            ),
            format!(
                "drop unused slots, or raise max_replication_slots to at least {} and restart",
                s.replication_slots_used + need_slots
            ),
        );
    }
    let need_senders = (databases - count(ours.iter().filter(|sl| sl.active).count())).max(0);
    let free_senders = s.max_wal_senders - s.wal_senders_used;
    if free_senders >= need_senders {
        out.ok(
            "wal_senders_free",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: {free_senders} of {} WAL senders free{per_db}",
                s.max_wal_senders
            ),
        );
    } else {
        out.fail(
            "wal_senders_free",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: {free_senders} of {} WAL senders free, {need_senders} more needed{per_db}",
                s.max_wal_senders
            ),
            format!(
                "raise max_wal_senders to at least {} and restart",
                s.wal_senders_used + need_senders
            ),
        );
    }

    if s.prepared_xacts > 0 {
        out.fail(
            "prepared_transactions",
            Severity::Warning,
            Some(side),
            format!(
                "{up}: {} prepared transactions are open; a cutover refuses while they exist",
                s.prepared_xacts
            ),
            "COMMIT PREPARED or ROLLBACK PREPARED them (see pg_prepared_xacts)".into(),
        );
    }
}

#[allow(clippy::too_many_lines)] // a list of checks, one after another in the order shown; each is a few lines
fn inventory_checks(out: &mut Out, side: Side, inv: &Inventory) {
    let up = side.upper();
    let no_pk: Vec<&QualName> = inv
        .identity_problems
        .iter()
        .filter(|t| t.replica_identity == "d")
        .map(|t| &t.table)
        .collect();
    let nothing: Vec<&QualName> = inv
        .identity_problems
        .iter()
        .filter(|t| t.replica_identity == "n")
        .map(|t| &t.table)
        .collect();
    if no_pk.is_empty() {
        out.ok(
            "primary_keys",
            Severity::Blocking,
            Some(side),
            format!("{up}: every table has a primary key or a replica identity"),
        );
    } else {
        let first = no_pk[0];
        out.fail(
            "primary_keys",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: {} table(s) without a primary key and with default replica identity: {}; once published, UPDATE and DELETE on them fail",
                no_pk.len(),
                list(&no_pk, 5)
            ),
            format!("add a primary key, or ALTER TABLE {first} REPLICA IDENTITY FULL (or USING INDEX a unique index)"),
        );
    }
    if !nothing.is_empty() {
        out.fail(
            "replica_identity_nothing",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: {} table(s) with REPLICA IDENTITY NOTHING: {}; once published, UPDATE and DELETE on them fail",
                nothing.len(),
                list(&nothing, 5)
            ),
            format!("ALTER TABLE {} REPLICA IDENTITY DEFAULT (with a primary key) or FULL", nothing[0]),
        );
    }
    if inv.large_objects > 0 {
        out.fail(
            "large_objects",
            Severity::Warning,
            Some(side),
            format!(
                "{up}: {} large object(s) exist; logical replication does not copy large objects",
                inv.large_objects
            ),
            "move them to bytea columns, or copy them by hand after the cutover".into(),
        );
    }
    if !inv.unlogged_tables.is_empty() {
        out.fail(
            "unlogged_tables",
            Severity::Warning,
            Some(side),
            format!(
                "{up}: {} unlogged table(s): {}; their rows are not replicated",
                inv.unlogged_tables.len(),
                list(&inv.unlogged_tables, 5)
            ),
            format!(
                "ALTER TABLE {} SET LOGGED, or accept that their contents stay behind",
                inv.unlogged_tables[0]
            ),
        );
    }
    if !inv.materialized_views.is_empty() && side == Side::Green {
        out.fail(
            "materialized_views",
            Severity::Info,
            Some(side),
            format!(
                "{up}: {} materialized view(s): {}; their contents are not replicated",
                inv.materialized_views.len(),
                list(&inv.materialized_views, 5)
            ),
            format!(
                "REFRESH MATERIALIZED VIEW {} (and the others) on GREEN before the cutover",
                inv.materialized_views[0]
            ),
        );
    }
}

fn app_roles_check(out: &mut Out, input: &CheckInput) {
    if input.app_roles.is_empty() {
        out.fail(
            "app_roles",
            Severity::Blocking,
            None,
            "no app roles are configured: the cutover could not fence the application".into(),
            "list the roles the application logs in as in [cutover] app_roles".into(),
        );
        return;
    }
    for side in Side::BOTH {
        let Some(live) = input.side(side).live else {
            continue;
        };
        let missing: Vec<String> = live
            .app_roles
            .iter()
            .filter(|r| !r.exists)
            .map(|r| ident(&r.name))
            .collect();
        if missing.is_empty() {
            out.ok(
                "app_roles",
                Severity::Blocking,
                Some(side),
                format!(
                    "{}: app roles present: {}",
                    side.upper(),
                    list(
                        &input.app_roles.iter().map(|r| ident(r)).collect::<Vec<_>>(),
                        8
                    )
                ),
            );
        } else {
            out.fail(
                "app_roles",
                Severity::Blocking,
                Some(side),
                format!("{}: app role(s) missing: {}", side.upper(), missing.join(", ")),
                format!("CREATE ROLE {} NOLOGIN; on {} with the same grants, or fix [cutover] app_roles", missing[0], side.upper()),
            );
        }
    }
}

fn subscription_check(out: &mut Out, input: &CheckInput) {
    let Some(dir) = input.phase.direction else {
        return;
    };
    let target = dir.target();
    let Some(live) = input.side(target).live else {
        return;
    };
    let name = &input.names.subscription;
    let up = target.upper();
    match (input.phase.phase, live.subscription(name)) {
        (Phase::Prepared, None) => out.fail(
            "subscription",
            Severity::Info,
            Some(target),
            format!("{up}: no subscription {} yet", ident(name)),
            "the subscribe action creates it, disabled, on the existing slot".into(),
        ),
        (_, None) => {}
        (_, Some(sub)) => {
            if sub.slot_name.as_deref() != Some(input.names.slot.as_str()) {
                out.fail(
                    "subscription",
                    Severity::Blocking,
                    Some(target),
                    format!(
                        "{up}: subscription {} uses slot {} instead of {}",
                        ident(name),
                        sub.slot_name
                            .as_deref()
                            .map_or_else(|| "NONE".into(), literal),
                        literal(&input.names.slot)
                    ),
                    "drop it (after SET (slot_name = NONE)) and run subscribe again".into(),
                );
            } else if !sub.enabled {
                out.ok(
                    "subscription",
                    Severity::Info,
                    Some(target),
                    format!(
                        "{up}: subscription {} exists, disabled (the start action enables it)",
                        ident(name)
                    ),
                );
            } else if sub.worker_pid.is_none() {
                out.fail(
                    "subscription",
                    Severity::Warning,
                    Some(target),
                    format!(
                        "{up}: subscription {} is enabled but no apply worker runs",
                        ident(name)
                    ),
                    format!("look at {up}'s server log for the apply worker's error"),
                );
            } else {
                out.ok(
                    "subscription",
                    Severity::Info,
                    Some(target),
                    format!(
                        "{up}: subscription {} streaming (apply worker pid {})",
                        ident(name),
                        sub.worker_pid.unwrap_or_default()
                    ),
                );
            }
            if let Some(n) = sub.apply_error_count.filter(|n| *n > 0) {
                out.fail(
                    "apply_errors",
                    Severity::Warning,
                    Some(target),
                    format!("{up}: subscription {} has had {n} apply error(s)", ident(name)),
                    format!("read {up}'s server log; a duplicate key right after start means a wrong origin LSN"),
                );
            }
            tables_synced(out, target, dir.source(), sub);
        }
    }
}

/// A table added to the subscription (`REFRESH PUBLICATION`) is copied first; until its copy
/// is done the apply worker skips its changes, so a switch then loses its rows.
fn tables_synced(out: &mut Out, target: Side, source: Side, sub: &Subscription) {
    let up = target.upper();
    if sub.unsynced.is_empty() {
        out.ok(
            "tables_synced",
            Severity::Blocking,
            Some(target),
            format!(
                "{up}: every table of {} is copied and applied",
                ident(&sub.name)
            ),
        );
        return;
    }
    let tables: Vec<String> = sub.unsynced.iter().map(UnsyncedTable::describe).collect();
    out.fail(
        "tables_synced",
        Severity::Blocking,
        Some(target),
        format!(
            "{up}: {} table(s) of {} are still in their initial copy: {}; their rows written since \
             would be lost at a switch",
            tables.len(),
            ident(&sub.name),
            list(&tables, 6)
        ),
        format!(
            "wait until the copy finishes (pg_subscription_rel.srsubstate = 'r' on {up}); a copy that \
             does not start waits for the transactions open on {} to end",
            source.upper()
        ),
    );
}

/// GREEN sorts text otherwise than BLUE: another collation, or another version of it (a newer
/// glibc after the upgrade). Indexes on text copied from BLUE are then out of GREEN's order, so
/// the apply's UPDATE and DELETE may not find their row (and skip it without an error), and
/// queries may miss rows.
fn text_order_check(out: &mut Out, input: &CheckInput) {
    let order = |s: Side| input.side(s).catalog.and_then(|c| c.text_order.as_deref());
    let (Some(blue), Some(green)) = (order(Side::Blue), order(Side::Green)) else {
        return;
    };
    if blue == green {
        out.ok(
            "text_order",
            Severity::Warning,
            None,
            "BLUE and GREEN sort text alike".to_string(),
        );
        return;
    }
    out.fail(
        "text_order",
        Severity::Warning,
        Some(Side::Green),
        "GREEN sorts text otherwise than BLUE (another collation, or another version of it, as a \
         newer glibc brings): indexes on text that GREEN has from BLUE's snapshot are out of its \
         order, so replicated UPDATEs and DELETEs may not find their rows there (skipped without \
         an error) and queries may miss rows; verify reads text-keyed tables whole"
            .to_string(),
        "on GREEN, before `start`: REINDEX its indexes on text (REINDEX DATABASE for all), then \
         ALTER DATABASE … REFRESH COLLATION VERSION (15 and later); or give GREEN BLUE's collation"
            .to_string(),
    );
}

/// A table published but not subscribed (made after the subscription and never added with
/// `REFRESH PUBLICATION`): the apply worker skips its rows without a word, and the schema is
/// the same on both sides, so only the two lists tell.
fn tables_subscribed_check(out: &mut Out, input: &CheckInput) {
    let Some(dir) = input.phase.direction else {
        return;
    };
    let (source, target) = (dir.source(), dir.target());
    let members = |s: Side| input.side(s).catalog.and_then(|c| c.members.as_ref());
    let (Some(published), Some(Some(subscribed))) = (
        members(source).map(|m| &m.published),
        members(target).map(|m| m.subscribed.as_ref()),
    ) else {
        return;
    };
    let sub = &input.names.subscription;
    match unsubscribed(source, target, sub, published, subscribed) {
        None => out.ok(
            "tables_subscribed",
            Severity::Blocking,
            Some(target),
            format!(
                "{} subscribes every table {} publishes ({})",
                target.upper(),
                source.upper(),
                published.len()
            ),
        ),
        Some((finding, fix)) => {
            out.fail(
                "tables_subscribed",
                Severity::Blocking,
                Some(target),
                finding,
                fix,
            );
        }
    }
}

/// The tables `source` publishes that `target`'s subscription lacks, as a finding and its fix;
/// `None` when it has them all. Both the check and the switch's guard say it this way.
pub fn unsubscribed(
    source: Side,
    target: Side,
    subscription: &str,
    published: &[QualName],
    subscribed: &[QualName],
) -> Option<(String, String)> {
    let known: std::collections::HashSet<&QualName> = subscribed.iter().collect();
    let missing: Vec<&QualName> = published.iter().filter(|t| !known.contains(t)).collect();
    if missing.is_empty() {
        return None;
    }
    let (su, tu) = (source.upper(), target.upper());
    let sub = ident(subscription);
    Some((
        format!(
            "{su} publishes {} table(s) that {tu}'s subscription {sub} does not have: {}; \
             their rows never reach {tu}",
            missing.len(),
            list(&missing, 6),
        ),
        format!(
            "ALTER SUBSCRIPTION {sub} REFRESH PUBLICATION on {tu}, then wait until they are copied"
        ),
    ))
}

/// The switch reads each side's last LSN with a statement that commits a logical message (it
/// flushes the WAL at once, and is how the fence check tells its own transaction apart): a role
/// that may not run it fails the switch inside the window.
fn emit_message_check(out: &mut Out, side: Side, live: &Live) {
    let up = side.upper();
    let user = ident(&live.server.user);
    match live.server.can_emit_message {
        Some(true) => out.ok(
            "emit_message",
            Severity::Blocking,
            Some(side),
            format!("{up}: {user} may run pg_logical_emit_message (the switch's LSN statement)"),
        ),
        Some(false) => out.fail(
            "emit_message",
            Severity::Blocking,
            Some(side),
            format!(
                "{up}: {user} may not run pg_logical_emit_message: the switch reads the LSN with it, \
                 and would fail inside the window"
            ),
            format!(
                "GRANT EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text) TO {user}; \
                 (from PostgreSQL 17: (boolean, text, text, boolean))"
            ),
        ),
        None => {}
    }
}

fn extensions_check(out: &mut Out, input: &CheckInput) {
    let (Some(b), Some(g)) = (input.blue.inventory, input.green.inventory) else {
        return;
    };
    let mut missing = Vec::new();
    let mut other = Vec::new();
    for e in &b.extensions {
        match g.extensions.iter().find(|x| x.name == e.name) {
            None => missing.push(format!("{} {}", ident(&e.name), e.version)),
            Some(x) if x.version != e.version => other.push(format!(
                "{} {} on BLUE, {} on GREEN",
                ident(&e.name),
                e.version,
                x.version
            )),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        out.fail(
            "extensions_missing",
            Severity::Blocking,
            Some(Side::Green),
            format!("GREEN lacks extension(s) BLUE has: {}", list(&missing, 6)),
            "CREATE EXTENSION … on GREEN (install the package first if the server lacks it)".into(),
        );
    }
    if !other.is_empty() {
        out.fail(
            "extension_versions",
            Severity::Warning,
            Some(Side::Green),
            format!("extension versions differ: {}", list(&other, 6)),
            "ALTER EXTENSION … UPDATE on GREEN after checking the extension's upgrade notes".into(),
        );
    }
    if missing.is_empty() && other.is_empty() {
        out.ok(
            "extensions",
            Severity::Blocking,
            None,
            format!(
                "the {} extension(s) of BLUE are on GREEN at the same versions",
                b.extensions.len()
            ),
        );
    }
}

fn names_slot<'a>(input: &CheckInput<'a>) -> &'a str {
    &input.names.slot
}

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / (1024.0 * 1024.0 * 1024.0))
}

/// Checks on what RDS says: GREEN's log is readable (for the redo LSN), BLUE's parameter group
/// turns on logical replication, free storage outlasts the WAL the slot holds.
#[allow(clippy::too_many_lines)] // a list of checks, one after another in the order shown; each is a few lines
fn rds_checks(out: &mut Out, input: &CheckInput, slot: &str) {
    if let Some(rds) = input.green.rds
        && let Some(inst) = rds.instance()
    {
        let listed = matches!(rds.log_files, Some(Ok(n)) if n > 0);
        if inst.exports_postgresql_log() || listed {
            out.ok(
                "rds_log_access",
                Severity::Warning,
                Some(Side::Green),
                if inst.exports_postgresql_log() {
                    format!(
                        "GREEN ({}) exports its postgresql log to CloudWatch Logs",
                        inst.id
                    )
                } else {
                    format!("GREEN ({}) log files can be listed", inst.id)
                },
            );
        } else {
            let why = match &rds.log_files {
                Some(Err(e)) => format!("listing its log files failed: {e}"),
                _ => "it has no log files listed".into(),
            };
            out.fail(
                "rds_log_access",
                Severity::Warning,
                Some(Side::Green),
                format!(
                    "GREEN ({}) exports no postgresql log to CloudWatch Logs and {why}: start cannot read the redo LSN",
                    inst.id
                ),
                format!(
                    "aws rds modify-db-instance --db-instance-identifier {} --cloudwatch-logs-export-configuration \
                     '{{\"EnableLogTypes\":[\"postgresql\"]}}' (or allow rds:DescribeDBLogFiles and \
                     rds:DownloadDBLogFilePortion); else pass start --lsn X/Y",
                    inst.id
                ),
            );
        }
    }
    if let Some(rds) = input.blue.rds
        && let Some(inst) = rds.instance()
    {
        let group = inst
            .parameter_groups
            .first()
            .map_or("?", |(n, _)| n.as_str());
        match &rds.logical_replication {
            Some(Ok(Some(v))) if v == "1" => out.ok(
                "rds_logical_replication",
                Severity::Blocking,
                Some(Side::Blue),
                format!("rds.logical_replication = 1 in BLUE's parameter group {group}"),
            ),
            Some(Ok(v)) => out.fail(
                "rds_logical_replication",
                Severity::Blocking,
                Some(Side::Blue),
                format!(
                    "rds.logical_replication is {} in BLUE's parameter group {group}",
                    v.as_deref().filter(|v| !v.is_empty()).unwrap_or("not set")
                ),
                format!(
                    "set rds.logical_replication = 1 in {group} (a custom group: default groups cannot be changed), \
                     then reboot BLUE ({}) in a quiet moment",
                    inst.id
                ),
            ),
            Some(Err(e)) => out.fail(
                "rds_logical_replication",
                Severity::Warning,
                Some(Side::Blue),
                format!("BLUE's parameter group {group} cannot be read: {e}"),
                "allow rds:DescribeDBParameters, or check rds.logical_replication in the console".into(),
            ),
            None => {}
        }
    }
    for side in Side::BOTH {
        let v = input.side(side);
        let (Some(rds), Some(live)) = (v.rds, v.live) else {
            continue;
        };
        let Some(free) = rds.metrics().and_then(|m| m.latest("FreeStorageSpace")) else {
            continue;
        };
        let Some(retained) = live
            .slot(slot)
            .and_then(|s| s.wal_retained_bytes(live.server.current_lsn))
        else {
            continue;
        };
        #[allow(clippy::cast_precision_loss)] // a share of free space, for people
        let retained = retained as f64;
        let finding = format!(
            "{}: {} free, the slot {slot} holds {} of WAL",
            side.upper(),
            gib(free),
            gib(retained)
        );
        if free < retained {
            out.fail(
                "rds_free_storage",
                Severity::Blocking,
                Some(side),
                finding,
                "storage runs out before the retained WAL could be written again: raise the allocated storage now, \
                 and find why the subscriber lags (apply errors, a stopped subscription)"
                    .into(),
            );
        } else if free < 4.0 * retained {
            out.fail(
                "rds_free_storage",
                Severity::Warning,
                Some(side),
                finding,
                "the slot's WAL is a large share of the free storage: watch the lag, and raise the allocated \
                 storage if it keeps growing"
                    .into(),
            );
        } else {
            out.ok("rds_free_storage", Severity::Warning, Some(side), finding);
        }
    }
}
