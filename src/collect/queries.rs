//! The SQL the collectors run. Each poll is one statement (one round trip) returning JSON or
//! rows; names come in as bind parameters, so nothing here is built from user input.

/// Can the connected role read replication origin progress?
pub const ORIGIN_READABLE: &str =
    "SELECT has_table_privilege('pg_catalog.pg_replication_origin_status', 'SELECT')";

/// Oldest server we read: `wal_status`/`safe_wal_size` appeared in 13.
pub const MIN_VERSION_NUM: i32 = 130000;

/// Filter for user schemas, on a `pg_namespace` alias `n`.
const USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'";

/// Client sessions with a transaction open for 5 s or idle in one, the oldest ten: the fence
/// ends them, and the cutover's plan lists them.
const OPEN_XACTS: &str = "SELECT coalesce(json_agg(json_build_object(
      'pid', a.pid, 'user', a.usename, 'state', a.state, 'application_name', a.application_name,
      'xact_age_s', extract(epoch FROM clock_timestamp() - a.xact_start)) ORDER BY a.xact_start), '[]')
    FROM (SELECT * FROM pg_stat_activity a
          WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
            AND a.xact_start IS NOT NULL
            AND (a.state LIKE 'idle in transaction%' OR a.xact_start < clock_timestamp() - interval '5 s')
          ORDER BY a.xact_start LIMIT 10) a";

/// The subscriptions of the connected database, as a JSON array.
fn subscriptions_json(version_num: i32, origin_readable: bool) -> String {
    // PG15 added pg_stat_subscription_stats; PG16 added parallel apply workers, which also have
    // relid NULL and are told apart by leader_pid.
    let stats_join = if version_num >= 150000 {
        "LEFT JOIN pg_stat_subscription_stats ss ON ss.subid = s.oid"
    } else {
        "LEFT JOIN (SELECT NULL::oid AS subid, NULL::bigint AS apply_error_count, NULL::bigint AS sync_error_count) ss ON false"
    };
    let leader = if version_num >= 160000 {
        "AND st.leader_pid IS NULL"
    } else {
        ""
    };
    // pg_replication_origin_status is superuser-only unless granted; a monitoring role without
    // it still sees everything else (permissions are checked per relation, so this is textual).
    let origin_join = if origin_readable {
        "LEFT JOIN pg_replication_origin_status o ON o.external_id = 'pg_' || s.oid"
    } else {
        "LEFT JOIN (SELECT NULL::text AS external_id, NULL::pg_lsn AS remote_lsn) o ON false"
    };
    format!(
        r"(SELECT coalesce(json_agg(json_build_object(
      'name', s.subname, 'oid', s.oid::bigint, 'enabled', s.subenabled, 'slot_name', s.subslotname,
      'publications', s.subpublications, 'synchronous_commit', s.subsynccommit,
      'comment', obj_description(s.oid, 'pg_subscription'),
      'origin_lsn', o.remote_lsn::text,
      'worker_pid', st.pid, 'received_lsn', st.received_lsn::text,
      'latest_end_lsn', st.latest_end_lsn::text,
      'last_msg_receipt_time', st.last_msg_receipt_time::text,
      'latest_end_time', st.latest_end_time::text,
      'apply_error_count', ss.apply_error_count, 'sync_error_count', ss.sync_error_count,
      'unsynced', (SELECT coalesce(json_agg(json_build_object(
          'schema', n.nspname, 'name', c.relname, 'state', r.srsubstate) ORDER BY n.nspname, c.relname), '[]')
        FROM pg_subscription_rel r JOIN pg_class c ON c.oid = r.srrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE r.srsubid = s.oid AND r.srsubstate <> 'r'))
      ORDER BY s.subname), '[]')
    FROM pg_subscription s
    LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL {leader}
    {stats_join}
    {origin_join}
    WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))"
    )
}

/// The publications of the connected database, as a JSON array.
const PUBLICATIONS_JSON: &str = "(SELECT coalesce(json_agg(json_build_object(
      'name', pubname, 'all_tables', puballtables, 'insert', pubinsert, 'update', pubupdate,
      'delete', pubdelete, 'truncate', pubtruncate) ORDER BY pubname), '[]')
    FROM pg_publication)";

/// One more replicated database's own objects (`DbLive`), as one JSON document: two catalogue
/// reads, so watching five databases costs little more than watching one.
pub fn database_live(version_num: i32, origin_readable: bool) -> String {
    format!(
        "SELECT json_build_object('subscriptions', {}, 'publications', {PUBLICATIONS_JSON})::text",
        subscriptions_json(version_num, origin_readable)
    )
}

/// Live facts as one JSON document. $1 = app roles (text[]), $2 = replication role name (text;
/// NULL = the connected user).
pub fn live(version_num: i32, origin_readable: bool) -> String {
    let subscriptions = subscriptions_json(version_num, origin_readable);
    format!(
        r"
SELECT json_build_object(
  'server', json_build_object(
    'version', current_setting('server_version'),
    'version_num', current_setting('server_version_num')::int,
    'wal_level', current_setting('wal_level'),
    'in_recovery', pg_is_in_recovery(),
    'current_lsn', (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
    'max_replication_slots', current_setting('max_replication_slots')::bigint,
    'replication_slots_used', (SELECT count(*) FROM pg_replication_slots),
    'max_wal_senders', current_setting('max_wal_senders')::bigint,
    'wal_senders_used', (SELECT count(*) FROM pg_stat_replication),
    'is_rds', EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication'),
    'database', current_database(),
    'user', current_user,
    'prepared_xacts', (SELECT count(*) FROM pg_prepared_xacts),
    'max_logical_replication_workers', current_setting('max_logical_replication_workers')::bigint,
    'max_worker_processes', current_setting('max_worker_processes')::bigint,
    'cron_database', current_setting('cron.database_name', true),
    'can_emit_message', (SELECT bool_and(has_function_privilege(p.oid, 'EXECUTE')) FROM pg_proc p
      WHERE p.proname = 'pg_logical_emit_message' AND p.pronamespace = 'pg_catalog'::regnamespace
        AND p.proargtypes[1] = 'text'::regtype)),
  'open_xacts', ({OPEN_XACTS}),
  'slots', (SELECT coalesce(json_agg(json_build_object(
      'name', slot_name, 'plugin', plugin, 'slot_type', slot_type, 'database', database,
      'active', active, 'active_pid', active_pid, 'temporary', temporary,
      'restart_lsn', restart_lsn::text, 'confirmed_flush_lsn', confirmed_flush_lsn::text,
      'wal_status', wal_status, 'safe_wal_size', safe_wal_size,
      'sender', (SELECT json_build_object('state', r.state,
          'write_lag_s', extract(epoch FROM r.write_lag), 'flush_lag_s', extract(epoch FROM r.flush_lag),
          'replay_lag_s', extract(epoch FROM r.replay_lag),
          'reply_age_s', extract(epoch FROM clock_timestamp() - r.reply_time))
        FROM pg_stat_replication r WHERE r.pid = sl.active_pid)) ORDER BY slot_name), '[]')
    FROM pg_replication_slots sl),
  'subscriptions', {subscriptions},
  'publications', {PUBLICATIONS_JSON},
  'app_roles', (SELECT coalesce(json_agg(json_build_object(
      'name', u.n, 'exists', r.oid IS NOT NULL, 'can_login', coalesce(r.rolcanlogin, false),
      'sessions', (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = u.n))
      ORDER BY u.ord), '[]')
    FROM unnest($1::text[]) WITH ORDINALITY AS u(n, ord) LEFT JOIN pg_roles r ON r.rolname = u.n),
  'replication_role', (SELECT json_build_object(
      'name', coalesce($2::text, current_user::text), 'exists', r.oid IS NOT NULL,
      'superuser', coalesce(r.rolsuper, false), 'replication', coalesce(r.rolreplication, false),
      'rds_replication', CASE WHEN r.oid IS NOT NULL
          AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication')
        THEN pg_has_role(r.oid, 'rds_replication', 'MEMBER') ELSE false END)
    FROM (SELECT 1) AS one LEFT JOIN pg_roles r ON r.rolname = coalesce($2::text, current_user::text))
)::text"
    )
}

/// The user's tables, partitioned tables and materialized views, extensions' own left out, as
/// the CTE `user_tables` (oid, nspname, relname, relkind, relpersistence, relreplident).
fn user_tables_cte() -> String {
    format!(
        r"
WITH user_tables AS (
  SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relreplident
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE {USER_NS} AND c.relkind IN ('r', 'p', 'm')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e'))"
    )
}

/// A database's user tables (plain and partitioned), over `user_tables`.
const TABLE_COUNT: &str = "(SELECT count(*) FROM user_tables t WHERE t.relkind IN ('r', 'p'))";
/// Their size, indexes and TOAST included (a partitioned table has none of its own).
const TABLE_BYTES: &str = "(SELECT coalesce(sum(pg_total_relation_size(t.oid)), 0)::bigint \
    FROM user_tables t WHERE t.relkind = 'r')";

/// Catalogue-wide facts for the checks, as one JSON document. $1 = app roles (text[]),
/// $2 = replication role name (text; NULL = the connected user).
pub fn inventory() -> String {
    let cte = user_tables_cte();
    format!(
        r"
{cte}
SELECT json_build_object(
  'identity_problems', (SELECT coalesce(json_agg(json_build_object(
      'table', json_build_object('schema', t.nspname, 'name', t.relname),
      'replica_identity', t.relreplident::text,
      'has_primary_key', EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indisprimary))
      ORDER BY t.nspname, t.relname), '[]')
    FROM user_tables t
    WHERE t.relkind = 'r' AND t.relpersistence = 'p'
      AND (t.relreplident = 'n' OR (t.relreplident = 'd'
           AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indisprimary)))),
  'unlogged_tables', (SELECT coalesce(json_agg(json_build_object('schema', t.nspname, 'name', t.relname)
      ORDER BY t.nspname, t.relname), '[]')
    FROM user_tables t WHERE t.relkind IN ('r', 'p') AND t.relpersistence = 'u'),
  'large_objects', (SELECT count(*) FROM pg_largeobject_metadata),
  'materialized_views', (SELECT coalesce(json_agg(json_build_object('schema', t.nspname, 'name', t.relname)
      ORDER BY t.nspname, t.relname), '[]')
    FROM user_tables t WHERE t.relkind = 'm'),
  'extensions', (SELECT coalesce(json_agg(json_build_object('name', extname, 'version', extversion)
      ORDER BY extname), '[]') FROM pg_extension),
  'databases', (SELECT coalesce(json_agg(json_build_object(
      'name', d.datname, 'allow_conn', d.datallowconn,
      'tables', CASE WHEN d.datname = current_database() THEN {TABLE_COUNT} END,
      'bytes', CASE WHEN d.datname = current_database() THEN {TABLE_BYTES} END)
      ORDER BY d.datname), '[]')
    FROM pg_database d WHERE NOT d.datistemplate AND d.datname <> 'rdsadmin'),
  -- Stops at the first table a role may change, so a role that may change none costs one pass.
  'writers', (SELECT coalesce(json_agg(json_build_object(
      'name', r.rolname, 'superuser', r.rolsuper,
      'sessions', (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname))
      ORDER BY r.rolname), '[]')
    FROM pg_roles r
    WHERE r.rolcanlogin AND r.rolname <> ALL($1::text[])
      AND r.rolname <> current_user AND r.rolname <> coalesce($2::text, current_user::text)
      AND r.rolname !~ '^pg_' AND r.rolname NOT IN ('rdsadmin', 'rdsrepladmin', 'rdstopmgr')
      AND (r.rolsuper OR EXISTS (SELECT 1 FROM user_tables t
           WHERE t.relkind IN ('r', 'p') AND t.relpersistence = 'p'
             AND has_table_privilege(r.oid, t.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')))),
  'largest_tables', (SELECT coalesce(json_agg(json_build_object(
      'table', json_build_object('schema', b.nspname, 'name', b.relname), 'bytes', b.bytes,
      'has_stats', CASE WHEN has_table_privilege(b.oid, 'SELECT') THEN EXISTS (
          SELECT 1 FROM pg_stats ps WHERE ps.schemaname = b.nspname AND ps.tablename = b.relname) END)
      ORDER BY b.bytes DESC), '[]')
    FROM (SELECT t.oid, t.nspname, t.relname, pg_table_size(t.oid) AS bytes FROM user_tables t
          WHERE t.relkind = 'r' AND t.relpersistence = 'p'
          ORDER BY pg_table_size(t.oid) DESC LIMIT 20) b)
)::text"
    )
}

/// User tables and their size in a database other than the connection's: run on a connection
/// of its own. The same figures the inventory gives for its own database.
pub fn database_tables() -> String {
    format!("{}\nSELECT {TABLE_COUNT}, {TABLE_BYTES}", user_tables_cte())
}

/// The tables of this database that have no planner statistics (none in `pg_stats`, unless
/// an ANALYZE found them empty), largest first: schema, name, bytes, and whether the connected role may ANALYZE
/// it (a superuser, a member of its owner, or from 17 one granted MAINTAIN).
pub fn tables_without_statistics(version_num: i32) -> String {
    let maintain = if version_num >= 170_000 {
        " OR has_table_privilege(t.oid, 'MAINTAIN')"
    } else {
        ""
    };
    format!(
        r"{}
SELECT t.nspname, t.relname, pg_total_relation_size(t.oid)::bigint,
  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(c.relowner, 'USAGE'){maintain}
FROM user_tables t JOIN pg_class c ON c.oid = t.oid
LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid
WHERE t.relkind IN ('r', 'm') AND t.relpersistence = 'p'
  AND (c.reltuples <> 0 OR coalesce(s.last_analyze, s.last_autoanalyze) IS NULL)
  AND NOT EXISTS (SELECT 1 FROM pg_stats ps WHERE ps.schemaname = t.nspname AND ps.tablename = t.relname)
ORDER BY 3 DESC, 1, 2",
        user_tables_cte()
    )
}

/// pg_cron's table, when it is in this database; else the database pg_cron runs in
/// (`cron.database_name`, NULL without pg_cron loaded) and this one's name.
pub const CRON_TABLE: &str = "SELECT to_regclass('cron.job') IS NOT NULL, \
     current_setting('cron.database_name', true), current_database()";
/// pg_cron's jobs: active and all. Only run once [`CRON_TABLE`] said the table is here.
pub const CRON_JOBS: &str = "SELECT count(*) FILTER (WHERE active), count(*) FROM cron.job";

/// The user sequences with whether this role may read them, in one statement with the values
/// of the first [`SEQUENCE_BATCH`] readable ones (most databases have fewer, so one round trip
/// reads them all). Reading takes a lock per sequence, and one statement over thousands of them
/// overflows the lock table ("out of shared memory", what `pg_sequences` does): those past the
/// first batch (`read` false) are read in batches by [`sequence_values`].
/// Columns: oid, schema, name, readable, read, last value (NULL if never called or not read).
pub fn sequence_list() -> String {
    format!(
        r"
SELECT oid, nspname, relname, readable, read,
       CASE WHEN read THEN pg_sequence_last_value(oid::oid) END
FROM (SELECT c.oid::bigint AS oid, n.nspname::text AS nspname, c.relname::text AS relname,
             has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable,
             has_sequence_privilege(c.oid, 'SELECT,USAGE')
               AND count(*) FILTER (WHERE has_sequence_privilege(c.oid, 'SELECT,USAGE'))
                   OVER (ORDER BY n.nspname, c.relname) <= {SEQUENCE_BATCH} AS read
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND c.relpersistence <> 't' AND {USER_NS}) AS s
ORDER BY nspname, relname"
    )
}

/// Last values of a batch of sequences; one statement = one transaction, so each batch's locks
/// are released before the next. Literal oids, so the engine journals the text it runs.
pub fn sequence_values(oids: &[i64]) -> String {
    let list: Vec<String> = oids.iter().map(std::string::ToString::to_string).collect();
    format!(
        "SELECT o, pg_sequence_last_value(o::oid) FROM unnest(ARRAY[{}]::bigint[]) AS o",
        list.join(", ")
    )
}

/// Sequences read per statement (far below the default lock table of 64 × max_connections).
pub const SEQUENCE_BATCH: usize = 500;

/// The schema catalogue as rows (kind, schema, parent, name, definition). Objects that belong to
/// extensions are left out (the extension row covers them); NOT NULL constraints (stored in
/// pg_constraint from PostgreSQL 18 on) are left out because column rows carry nullability.
pub fn catalog() -> String {
    format!(
        r"
WITH rels AS (
  SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE {USER_NS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e'))
SELECT 'extension', '', '', e.extname::text, e.extversion FROM pg_extension e
UNION ALL
SELECT CASE r.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized_view'
         WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign_table' ELSE 'table' END,
       r.nspname, '', r.relname,
       CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid)
            WHEN r.relkind = 'S' THEN (SELECT format('%s increment %s minvalue %s maxvalue %s start %s cache %s%s',
                 format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache,
                 CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END) FROM pg_sequence s WHERE s.seqrelid = r.oid)
            ELSE concat_ws(' ',
                 CASE r.relpersistence WHEN 'u' THEN 'unlogged' END,
                 CASE r.relkind WHEN 'p' THEN 'partitioned' END,
                 CASE WHEN r.relispartition THEN 'partition of ' || (SELECT i.inhparent::regclass::text
                      FROM pg_inherits i WHERE i.inhrelid = r.oid) END)
       END
FROM rels r
UNION ALL
SELECT 'column', r.nspname, r.relname, a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || CASE WHEN a.attidentity = 'a' THEN ' generated always as identity'
               WHEN a.attidentity = 'd' THEN ' generated by default as identity' ELSE '' END
       || CASE WHEN a.attgenerated <> '' THEN coalesce(' generated as (' || pg_get_expr(d.adbin, d.adrelid) || ')', '')
               ELSE coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') END
       || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
               THEN ' collate ' || (SELECT quote_ident(collname) FROM pg_collation WHERE oid = a.attcollation) ELSE '' END
FROM rels r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE r.relkind IN ('r', 'p', 'm', 'f')
UNION ALL
SELECT 'index', r.nspname, r.relname, ic.relname, pg_get_indexdef(i.indexrelid)
FROM rels r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid
UNION ALL
SELECT 'constraint', r.nspname, r.relname, con.conname, pg_get_constraintdef(con.oid)
FROM rels r JOIN pg_constraint con ON con.conrelid = r.oid
WHERE con.contype <> 'n'"
    )
}

/// The tables a publication of the connected database publishes ($1: its name).
pub const PUBLISHED_TABLES: &str = "SELECT schemaname::text, tablename::text \
     FROM pg_catalog.pg_publication_tables WHERE pubname = $1";

/// Whether the subscription ($1) is in the connected database, and the tables it knows (its
/// `pg_subscription_rel`), one row each; a NULL table when it knows none.
pub const SUBSCRIBED_TABLES: &str = "SELECT n.nspname::text, c.relname::text \
     FROM pg_catalog.pg_subscription s \
     LEFT JOIN pg_catalog.pg_subscription_rel r ON r.srsubid = s.oid \
     LEFT JOIN pg_catalog.pg_class c ON c.oid = r.srrelid \
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE s.subname = $1 \
       AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())";
