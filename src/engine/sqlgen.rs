//! Every statement the engine runs, built in one place so the plan shows exactly what executes.
//! Values go in as quoted literals (not bind parameters) so the journaled text is the executed
//! text; the only secret (a subscription's password) has a redacted twin for display.

use crate::domain::lsn::Lsn;
use crate::domain::observed::QualName;
use crate::sql::{ident, literal, qualified};

/// A statement and the form of it that may be shown, logged and journaled. `Debug` shows only
/// the shown form: a `{:?}` anywhere (a log line, a test failure) must not print a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Stmt {
    pub sql: String,
    pub shown: String,
    /// `sql` holds a secret that `shown` hides: it runs where the server logs no statement
    /// (`Db::run`). Any other statement is shown exactly as it runs.
    pub secret: bool,
}

// `sql` may carry a password: only what is shown goes into Debug output.
#[allow(clippy::missing_fields_in_debug)]
impl std::fmt::Debug for Stmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stmt").field("shown", &self.shown).finish()
    }
}

impl Stmt {
    pub fn new(sql: impl Into<String>) -> Stmt {
        let sql = sql.into();
        Stmt {
            shown: sql.clone(),
            sql,
            secret: false,
        }
    }
}

pub fn text_array(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| literal(s)).collect();
    format!("ARRAY[{}]::text[]", parts.join(", "))
}

/// NOLOGIN/LOGIN for every app role in one transaction: a side is fenced or not, never half.
pub fn set_login(roles: &[String], login: bool) -> Stmt {
    let word = if login { "LOGIN" } else { "NOLOGIN" };
    let mut s = String::from("BEGIN;");
    for r in roles {
        s.push_str(&format!(" ALTER ROLE {} {word};", ident(r)));
    }
    s.push_str(" COMMIT;");
    Stmt::new(s)
}

/// The sessions of the app roles, matched by role OID: the roles `ALTER ROLE` acted on, not
/// whatever a name comparison happens to match.
fn app_sessions(roles: &[String]) -> String {
    format!(
        "FROM pg_stat_activity WHERE usesysid IN (SELECT oid FROM pg_roles WHERE rolname = ANY ({})) \
         AND pid <> pg_backend_pid()",
        text_array(roles)
    )
}

/// Signal every session of the app roles at once (no per-session timeout: DESIGN §3).
pub fn terminate_sessions(roles: &[String]) -> Stmt {
    Stmt::new(format!(
        "SELECT count(pg_terminate_backend(pid)) {}",
        app_sessions(roles)
    ))
}

/// The app roles' sessions that hold no transaction: a graceful fence ends these at once and
/// gives the others `fence_grace_ms` to commit.
pub fn terminate_idle_sessions(roles: &[String]) -> Stmt {
    Stmt::new(format!(
        "SELECT count(pg_terminate_backend(pid)) {} AND state = 'idle'",
        app_sessions(roles)
    ))
}

/// The slot's lag: how far its confirmed position is behind the server's WAL.
pub fn slot_lag(slot: &str) -> Stmt {
    Stmt::new(format!(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, active \
         FROM pg_replication_slots WHERE slot_name = {}",
        literal(slot)
    ))
}

/// Data changes (insert, update, delete, truncate) the slot would still send, read without
/// consuming them: after the drain there must be none, or a write reached the fenced source.
pub fn peek_data_changes(slot: &str, publication: &str) -> Stmt {
    Stmt::new(format!(
        "SELECT count(*) FROM pg_logical_slot_peek_binary_changes({}, NULL, NULL, \
         'proto_version', '1', 'publication_names', {}) WHERE get_byte(data, 0) IN (73, 85, 68, 84)",
        literal(slot),
        literal(&ident(publication))
    ))
}

pub fn count_sessions(roles: &[String]) -> Stmt {
    Stmt::new(format!("SELECT count(*) {}", app_sessions(roles)))
}

/// The prepared transactions of the replicated databases: how many, and each named.
pub fn count_prepared_xacts(dbs: &[Option<&str>]) -> Stmt {
    Stmt::new(format!(
        "SELECT count(*), string_agg(format('%s in database %s', quote_literal(gid), quote_ident(database)), ', ' ORDER BY gid) \
         FROM pg_prepared_xacts WHERE {}",
        databases_in("database", dbs)
    ))
}

/// The server's last LSN, past every commit anyone has seen, and written out. It is the
/// position where WAL is inserted: a commit made with `synchronous_commit = off` is seen, and
/// told to its client, before it is written, so `pg_current_wal_lsn` (the write position) can
/// be short of it, and the drain would not wait for it. Then a record of the tool's own (a
/// logical message, which no subscriber is sent) commits with `synchronous_commit = on`: that
/// flushes everything before it, and the walsender sends it at once instead of when the WAL
/// writer wakes. (A transaction that writes no WAL commits without a flush, whatever the
/// setting.) The last three columns are the id counter around it (`domain::fence`): its own
/// transaction id, and its snapshot's xmax and running ids.
pub fn current_lsn() -> Stmt {
    Stmt::new(
        "SELECT pg_current_wal_insert_lsn(), pg_logical_emit_message(true, 'pgcutover', 'last LSN'), \
         set_config('synchronous_commit', 'on', true), pg_current_xact_id(), \
         pg_snapshot_xmax(pg_current_snapshot()), (SELECT count(*) FROM pg_snapshot_xip(pg_current_snapshot()))",
    )
}

/// The latest ended transaction id + 1, instance-wide, and what holds a transaction id in
/// the replicated databases now (`None`: the connection's own): their sessions (autovacuum's
/// aside) and their prepared transactions. One that does has written, or will, and commits when
/// it ends, which neither the id counter nor the slots show yet. One statement for every
/// database: the window grows with each statement it runs per database.
pub fn xid_horizon(dbs: &[Option<&str>]) -> Stmt {
    // the functions under pg_stat_activity and pg_prepared_xacts: the views' joins cost more
    // than the rest of the statement (0.4 against 0.9 ms here)
    let which = databases_in("d.datname", dbs);
    // with several databases a holder is named with its own
    let of_db = if dbs.len() > 1 {
        ", ' in database ' || quote_ident(d.datname)"
    } else {
        ", ''"
    };
    Stmt::new(format!(
        "SELECT pg_snapshot_xmax(pg_current_snapshot()), (SELECT string_agg(h, ', ') FROM (\
         SELECT format('pid %s (%s, %s)%s', a.pid, coalesce(quote_ident(pg_get_userbyid(a.usesysid)::text), '?'), \
         coalesce(a.backend_type, '?'){of_db}) AS h FROM pg_stat_get_activity(NULL) a \
         JOIN pg_database d ON d.oid = a.datid \
         WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid() AND {which} \
         AND a.backend_type NOT LIKE 'autovacuum%' \
         UNION ALL SELECT format('prepared transaction %s%s', quote_literal(p.gid){of_db}) \
         FROM pg_prepared_xact() p(transaction, gid, prepared, ownerid, dbid) \
         JOIN pg_database d ON d.oid = p.dbid WHERE {which}) held)"
    ))
}

/// A database as SQL: its name as a literal, or `None`: the connection's own.
fn database(db: Option<&str>) -> String {
    db.map_or_else(|| "current_database()".to_string(), literal)
}

/// `column` is one of the databases (`database`).
fn databases_in(column: &str, dbs: &[Option<&str>]) -> String {
    let names: Vec<String> = dbs.iter().map(|d| database(*d)).collect();
    format!("{column} IN ({})", names.join(", "))
}

/// The subscriptions named with their database (`None`: the connection's own), as a condition
/// on `pg_subscription s`: the catalogue is the instance's, so one statement reaches them all.
fn subscriptions_in(subs: &[(&str, Option<&str>)]) -> String {
    let pairs: Vec<String> = subs
        .iter()
        .map(|(sub, db)| format!("({}, {})", literal(sub), database(*db)))
        .collect();
    format!(
        "(s.subname, (SELECT datname FROM pg_database WHERE oid = s.subdbid)) IN ({})",
        pairs.join(", ")
    )
}

/// Each of the slots' confirmed position and whether it is streamed, least advanced first.
pub fn slot_confirmed_flush(slots: &[&str]) -> Stmt {
    let list: Vec<String> = slots.iter().map(|s| literal(s)).collect();
    Stmt::new(format!(
        "SELECT confirmed_flush_lsn, active, slot_name FROM pg_replication_slots WHERE slot_name IN ({}) ORDER BY confirmed_flush_lsn NULLS FIRST",
        list.join(", ")
    ))
}

pub fn create_publication(publication: &str) -> Stmt {
    Stmt::new(format!(
        "CREATE PUBLICATION {} FOR ALL TABLES",
        ident(publication)
    ))
}

pub fn create_slot(slot: &str) -> Stmt {
    create_slot_for(slot, "pgoutput")
}

/// A logical slot with another output plugin (a consumer's own: `wal2json`, `test_decoding`, …).
pub fn create_slot_for(slot: &str, plugin: &str) -> Stmt {
    Stmt::new(format!(
        "SELECT lsn FROM pg_create_logical_replication_slot({}, {})",
        literal(slot),
        literal(plugin)
    ))
}

/// One committed, flushed transaction after a new slot. The slot's confirmed_flush_lsn is the
/// *end* of the record its creation logged; a snapshot holding nothing after that record would
/// report a redo LSN (a record's *start*) before the slot, and fail the origin cross-check.
/// The transaction must write WAL of its own: PostgreSQL does not flush the commit of one that
/// did not (even with synchronous_commit on), and a temp table needs no special privilege.
pub fn seal_slot() -> Stmt {
    Stmt::new(
        "BEGIN; SET LOCAL synchronous_commit = on; \
         CREATE TEMP TABLE pgcutover_seal (at timestamptz) ON COMMIT DROP; COMMIT;",
    )
}

pub fn drop_slot(slot: &str) -> Stmt {
    Stmt::new(format!(
        "SELECT pg_drop_replication_slot({})",
        literal(slot)
    ))
}

pub fn grant_replication(user: &str, rds: bool) -> Stmt {
    if rds {
        Stmt::new(format!("GRANT rds_replication TO {}", ident(user)))
    } else {
        Stmt::new(format!("ALTER ROLE {} REPLICATION", ident(user)))
    }
}

/// The connection string a server uses to reach the other side: libpq key='value' pairs.
#[derive(Clone, PartialEq, Eq)]
pub struct Conninfo {
    pub pairs: Vec<(String, String)>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Conninfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(true))
    }
}

impl Conninfo {
    fn render(&self, redact: bool) -> String {
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut parts: Vec<String> = self
            .pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        if let Some(p) = &self.password {
            parts.push(format!(
                "password={}",
                if redact {
                    "********".to_string()
                } else {
                    quote(p)
                }
            ));
        }
        parts.join(" ")
    }
}

pub fn create_subscription(
    sub: &str,
    conn: &Conninfo,
    publication: &str,
    slot: &str,
    enabled: bool,
) -> Stmt {
    let build = |c: String| {
        format!(
            "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = false, create_slot = false, \
             enabled = {enabled}, connect = true, slot_name = {})",
            ident(sub),
            literal(&c),
            ident(publication),
            literal(slot)
        )
    };
    Stmt {
        sql: build(conn.render(false)),
        shown: build(conn.render(true)),
        secret: conn.password.is_some(),
    }
}

pub fn alter_subscription(sub: &str, what: &str) -> Stmt {
    Stmt::new(format!("ALTER SUBSCRIPTION {} {what}", ident(sub)))
}

/// Disable, detach from its slot (so DROP does not reach for the remote slot), drop.
pub fn drop_subscription(sub: &str, enabled: bool) -> Vec<Stmt> {
    let mut v = Vec::new();
    if enabled {
        v.push(alter_subscription(sub, "DISABLE"));
    }
    v.push(alter_subscription(sub, "SET (slot_name = NONE)"));
    v.push(Stmt::new(format!("DROP SUBSCRIPTION {}", ident(sub))));
    v
}

pub fn comment_subscription(sub: &str, text: &str) -> Stmt {
    Stmt::new(format!(
        "COMMENT ON SUBSCRIPTION {} IS {}",
        ident(sub),
        literal(text)
    ))
}

/// The replication origin of a subscription is named `pg_<oid>`.
pub fn subscription_origin(sub: &str) -> Stmt {
    Stmt::new(format!(
        "SELECT 'pg_' || s.oid, s.subenabled, (SELECT count(*) FROM pg_stat_subscription st \
         WHERE st.subid = s.oid AND st.pid IS NOT NULL) FROM pg_subscription s \
         WHERE s.subname = {} AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        literal(sub)
    ))
}

/// Start the subscriptions' origins at `lsn` and read them back, in one round trip from any
/// database (this runs inside the switch's window): a row per subscription found, with its
/// name, origin and position.
pub fn subscription_origins_set(subs: &[(&str, Option<&str>)], lsn: Lsn) -> Stmt {
    let these = subscriptions_in(subs);
    Stmt::new(format!(
        "SELECT pg_replication_origin_advance('pg_' || s.oid, {}) FROM pg_subscription s WHERE {these}; \
         SELECT s.subname, 'pg_' || s.oid, o.remote_lsn FROM pg_subscription s \
         LEFT JOIN pg_replication_origin_status o ON o.external_id = 'pg_' || s.oid WHERE {these}",
        literal(&lsn.to_string())
    ))
}

/// The subscription's apply worker pids (leader and any parallel workers), comma-separated.
pub fn subscription_workers(sub: &str) -> Stmt {
    Stmt::new(format!(
        "SELECT string_agg(st.pid::text, ',' ORDER BY st.pid) FROM pg_stat_subscription st \
         JOIN pg_subscription s ON s.oid = st.subid WHERE s.subname = {} AND st.pid IS NOT NULL \
         AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        literal(sub)
    ))
}

/// End the disabled subscriptions' workers now: PostgreSQL 15 workers notice DISABLE only when
/// their loop wakes (up to a second), and their slots cannot be decoded before.
pub fn terminate_subscriptions_workers(subs: &[(&str, Option<&str>)]) -> Stmt {
    Stmt::new(format!(
        "SELECT count(pg_terminate_backend(st.pid)) FROM pg_stat_subscription st \
         JOIN pg_subscription s ON s.oid = st.subid WHERE {} AND st.pid IS NOT NULL AND NOT s.subenabled",
        subscriptions_in(subs)
    ))
}

/// Move a logical slot to `lsn` without decoding what lies before it.
pub fn slot_advance(slot: &str, lsn: Lsn) -> Stmt {
    Stmt::new(format!(
        "SELECT pg_replication_slot_advance({}, {})",
        literal(slot),
        literal(&lsn.to_string())
    ))
}

pub fn origin_advance(origin: &str, lsn: Lsn) -> Stmt {
    Stmt::new(format!(
        "SELECT pg_replication_origin_advance({}, {})",
        literal(origin),
        literal(&lsn.to_string())
    ))
}

pub fn origin_progress(origin: &str) -> Stmt {
    Stmt::new(format!(
        "SELECT remote_lsn FROM pg_replication_origin_status WHERE external_id = {}",
        literal(origin)
    ))
}

/// Set a batch of sequences on the target, never moving one backwards (a previous attempt may
/// have copied them already), skipping names the target lacks (the schema diff reports those).
/// Returns the number set.
pub fn setval_batch(values: &[(QualName, i64)]) -> Stmt {
    let names: Vec<String> = values
        .iter()
        .map(|(q, _)| qualified(&q.schema, &q.name))
        .collect();
    let nums: Vec<String> = values.iter().map(|(_, v)| v.to_string()).collect();
    Stmt::new(format!(
        "SELECT count(setval(s.seq, greatest(s.v, coalesce(pg_sequence_last_value(s.seq), s.v)), true)) \
         FROM (SELECT to_regclass(n) AS seq, v FROM unnest({}, ARRAY[{}]::bigint[]) AS u(n, v)) AS s \
         WHERE s.seq IS NOT NULL",
        text_array(&names),
        nums.join(", ")
    ))
}

/// The user sequences a role may read, and (per batch of oids) their values.
/// Every sequence of the database with whether this role may read it.
/// Whether pg_cron's job table is in this database (`cron.database_name`).
pub fn cron_table() -> Stmt {
    Stmt::new("SELECT to_regclass('cron.job') IS NOT NULL")
}

/// The source's active jobs: the ones the switch pauses, read before anything changes so that
/// an undo knows them even if the pause's answer is lost.
pub fn cron_active_jobs() -> Stmt {
    Stmt::new("SELECT jobid FROM cron.job WHERE active ORDER BY jobid")
}

/// `active` set for exactly these jobs (by the session, so pg_cron's trigger reloads its job
/// list); returns the jobs it changed.
pub fn cron_set_active(jobs: &[i64], active: bool) -> Stmt {
    let ids: Vec<String> = jobs.iter().map(i64::to_string).collect();
    Stmt::new(format!(
        "UPDATE cron.job SET active = {active} WHERE jobid = ANY (ARRAY[{}]::bigint[]) AND active <> {active} RETURNING jobid",
        ids.join(", ")
    ))
}

/// Which of these jobs are active.
pub fn cron_which_active(jobs: &[i64]) -> Stmt {
    let ids: Vec<String> = jobs.iter().map(i64::to_string).collect();
    Stmt::new(format!(
        "SELECT jobid FROM cron.job WHERE jobid = ANY (ARRAY[{}]::bigint[]) AND active ORDER BY jobid",
        ids.join(", ")
    ))
}

pub fn sequence_list() -> Stmt {
    Stmt::new(crate::collect::queries::sequence_list())
}

/// Whether any of the roles may log in (the check before undoing an unfence).
pub fn any_can_login(roles: &[String]) -> Stmt {
    Stmt::new(format!(
        "SELECT bool_or(rolcanlogin) FROM pg_roles WHERE rolname = ANY ({})",
        text_array(roles)
    ))
}

pub fn sequence_values(oids: &[i64]) -> Stmt {
    Stmt::new(crate::collect::queries::sequence_values(oids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_quotes_every_role_in_one_transaction() {
        let roles = vec!["app".to_string(), "Weird \"App\"".to_string()];
        assert_eq!(
            set_login(&roles, false).sql,
            "BEGIN; ALTER ROLE app NOLOGIN; ALTER ROLE \"Weird \"\"App\"\"\" NOLOGIN; COMMIT;"
        );
        assert!(
            terminate_sessions(&roles)
                .sql
                .contains("ARRAY['app', 'Weird \"App\"']::text[]")
        );
        let tricky = vec!["o'brien".to_string()];
        assert!(count_sessions(&tricky).sql.contains("ARRAY['o''brien']"));
    }

    #[test]
    fn debug_never_prints_a_password() {
        let c = Conninfo {
            pairs: vec![("host".into(), "h".into())],
            password: Some("S3cretPw".into()),
        };
        let s = create_subscription("sub", &c, "pub", "slot", false);
        assert!(s.sql.contains("S3cretPw"));
        for text in [
            format!("{c:?}"),
            format!("{s:?}"),
            format!("{:#?}", vec![s.clone()]),
        ] {
            assert!(!text.contains("S3cretPw"), "{text}");
            assert!(text.contains("********"), "{text}");
        }
    }

    #[test]
    fn subscription_password_is_only_in_the_executed_text() {
        let c = Conninfo {
            pairs: vec![
                ("host".into(), "green.db".into()),
                ("user".into(), "rep user".into()),
            ],
            password: Some("p'w\\d".into()),
        };
        let s = create_subscription("Sub", &c, "pub", "slot", false);
        // conninfo `password='p\'w\\d'` inside an E'' literal: quotes and backslashes doubled
        assert!(
            s.sql.contains(
                r"CONNECTION E'host=''green.db'' user=''rep user'' password=''p\\''w\\\\d'''"
            ),
            "{}",
            s.sql
        );
        assert!(
            !s.shown.contains("p\\'w") && s.shown.contains("password=********"),
            "{}",
            s.shown
        );
        assert!(s.shown.starts_with(
            "CREATE SUBSCRIPTION \"Sub\" CONNECTION 'host=''green.db'' user=''rep user'' password=********' "
        ));
        assert!(s.sql.contains("enabled = false") && s.sql.contains("slot_name = 'slot'"));
        assert!(s.secret, "runs where the server logs no statement");
        let none = Conninfo {
            password: None,
            ..c
        };
        assert!(!create_subscription("Sub", &none, "pub", "slot", false).secret);
    }

    #[test]
    fn setval_batch_quotes_names() {
        let v = vec![(
            QualName {
                schema: "Ünïcode".into(),
                name: "Order Items_id_seq".into(),
            },
            42,
        )];
        let sql = setval_batch(&v).sql;
        assert!(
            sql.contains(
                "unnest(ARRAY['\"Ünïcode\".\"Order Items_id_seq\"']::text[], ARRAY[42]::bigint[])"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("greatest(s.v, coalesce(pg_sequence_last_value(s.seq), s.v))"),
            "{sql}"
        );
    }

    #[test]
    fn dropping_a_subscription_detaches_its_slot_first() {
        let v: Vec<String> = drop_subscription("s", true)
            .into_iter()
            .map(|s| s.sql)
            .collect();
        assert_eq!(
            v,
            [
                "ALTER SUBSCRIPTION s DISABLE",
                "ALTER SUBSCRIPTION s SET (slot_name = NONE)",
                "DROP SUBSCRIPTION s"
            ]
        );
    }
}
