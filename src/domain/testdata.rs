//! Observed states for the pure logic's unit tests.

use super::lsn::Lsn;
use super::observed::{Live, Publication, ReplicationRole, Role, Server, Slot, Subscription};
use super::phase::MigrationNames;

pub fn names() -> MigrationNames {
    MigrationNames {
        publication: "pub".into(),
        slot: "slot".into(),
        subscription: "sub".into(),
        databases: super::names::DatabaseSet::Dsn,
        slot_family: "slot".into(),
    }
}

pub fn live(login: bool) -> Live {
    Live {
        server: Server {
            version: "15.18".into(),
            version_num: 150018,
            wal_level: "logical".into(),
            in_recovery: false,
            current_lsn: Some(Lsn::from_u64(0x100)),
            max_replication_slots: 10,
            replication_slots_used: 0,
            max_wal_senders: 10,
            wal_senders_used: 0,
            is_rds: false,
            database: "db".into(),
            user: "postgres".into(),
            prepared_xacts: 0,
            max_logical_replication_workers: Some(4),
            max_worker_processes: Some(8),
            cron_database: None,
            can_emit_message: Some(true),
        },
        slots: vec![],
        subscriptions: vec![],
        publications: vec![],
        app_roles: vec![Role {
            name: "app".into(),
            exists: true,
            can_login: login,
            sessions: 0,
        }],
        replication_role: ReplicationRole {
            name: "postgres".into(),
            exists: true,
            superuser: true,
            replication: true,
            rds_replication: false,
        },
        open_xacts: vec![],
    }
}

pub fn with_pub_slot(mut l: Live) -> Live {
    l.publications.push(Publication {
        name: "pub".into(),
        all_tables: true,
        insert: true,
        update: true,
        delete: true,
        truncate: true,
    });
    l.slots.push(Slot {
        name: "slot".into(),
        plugin: Some("pgoutput".into()),
        slot_type: "logical".into(),
        database: Some("db".into()),
        active: false,
        active_pid: None,
        temporary: false,
        restart_lsn: Some(Lsn::from_u64(0x80)),
        confirmed_flush_lsn: Some(Lsn::from_u64(0x90)),
        wal_status: Some("reserved".into()),
        safe_wal_size: None,
        sender: None,
    });
    l
}

pub fn with_sub(mut l: Live, enabled: bool, comment: Option<&str>) -> Live {
    l.subscriptions.push(Subscription {
        name: "sub".into(),
        oid: 16400,
        enabled,
        slot_name: Some("slot".into()),
        publications: vec!["pub".into()],
        synchronous_commit: "off".into(),
        comment: comment.map(str::to_string),
        origin_lsn: None,
        worker_pid: enabled.then_some(42),
        received_lsn: None,
        latest_end_lsn: None,
        last_msg_receipt_time: None,
        latest_end_time: None,
        apply_error_count: Some(0),
        sync_error_count: Some(0),
        unsynced: Vec::new(),
    });
    l
}

/// An inventory with nothing to report: one database, `db`, with three tables.
pub fn inventory() -> crate::domain::observed::Inventory {
    crate::domain::observed::Inventory {
        identity_problems: vec![],
        unlogged_tables: vec![],
        large_objects: 0,
        materialized_views: vec![],
        extensions: vec![],
        sequences: vec![],
        databases: vec![database("db", Some(3))],
        writers: vec![],
        largest_tables: vec![],
        cron: None,
    }
}

pub fn database(name: &str, tables: Option<i64>) -> crate::domain::observed::Database {
    crate::domain::observed::Database {
        name: name.into(),
        allow_conn: true,
        tables,
        bytes: tables.map(|t| t * 16384),
        error: None,
    }
}
