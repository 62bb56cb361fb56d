//! A side's poller: reads live facts every interval and the inventory and catalogue every Nth
//! interval, over the side's one monitoring connection. Runs never overlap (the loop awaits each
//! read before the next tick, and missed ticks are skipped); failures are sent as data.

use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::postgres::PgReader;
use crate::config::PollSettings;
use crate::domain::observed::{DbLive, Inventory, Live, SequenceValue, Side};
use crate::domain::schema::Catalog;

#[derive(Debug)]
pub enum SampleData {
    Live(Result<Box<Live>, String>),
    Inventory(Result<Box<Inventory>, String>),
    Catalog(Result<Box<Catalog>, String>),
    /// One more replicated database's subscriptions and publications.
    DbLive(Result<Box<DbLive>, String>),
    /// One more replicated database's sequences.
    Sequences(Result<Vec<SequenceValue>, String>),
}

#[derive(Debug)]
pub struct Sample {
    pub side: Side,
    /// The replicated database read, for a reader of one more database (`None`: the main one).
    pub db: Option<String>,
    pub at: SystemTime,
    pub data: SampleData,
}

/// Poll until the receiver is dropped.
pub fn spawn(mut reader: PgReader, poll: PollSettings, tx: mpsc::Sender<Sample>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let side = reader.side();
        let mut tick = tokio::time::interval(poll.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            let live = reader
                .live()
                .await
                .map(Box::new)
                .map_err(|e| crate::format::report_chain(&e));
            let live_ok = live.is_ok();
            let send = |data| Sample {
                side,
                db: None,
                at: SystemTime::now(),
                data,
            };
            if tx.send(send(SampleData::Live(live))).await.is_err() {
                return;
            }
            // The slow reads run on schedule, and also right after a failure clears, so a side
            // that comes back is fully known again at once.
            if live_ok && n.is_multiple_of(u64::from(poll.inventory_every)) {
                let inv = reader
                    .inventory()
                    .await
                    .map(Box::new)
                    .map_err(|e| crate::format::report_chain(&e));
                if tx.send(send(SampleData::Inventory(inv))).await.is_err() {
                    return;
                }
                let cat = reader
                    .catalog()
                    .await
                    .map(Box::new)
                    .map_err(|e| crate::format::report_chain(&e));
                if tx.send(send(SampleData::Catalog(cat))).await.is_err() {
                    return;
                }
            }
            n = if live_ok { n + 1 } else { 0 };
        }
    })
}

/// Poll one more replicated database until the receiver is dropped: its own objects every
/// interval, its sequences and catalogue on the slow schedule, over its one connection.
pub fn spawn_database(
    mut reader: PgReader,
    db: String,
    poll: PollSettings,
    tx: mpsc::Sender<Sample>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let side = reader.side();
        let mut tick = tokio::time::interval(poll.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            let send = |data| Sample {
                side,
                db: Some(db.clone()),
                at: SystemTime::now(),
                data,
            };
            let live = reader
                .database_live()
                .await
                .map(Box::new)
                .map_err(|e| crate::format::report_chain(&e));
            let live_ok = live.is_ok();
            if tx.send(send(SampleData::DbLive(live))).await.is_err() {
                return;
            }
            if live_ok && n.is_multiple_of(u64::from(poll.inventory_every)) {
                let seq = reader
                    .sequences()
                    .await
                    .map_err(|e| crate::format::report_chain(&e));
                if tx.send(send(SampleData::Sequences(seq))).await.is_err() {
                    return;
                }
                let cat = reader
                    .catalog()
                    .await
                    .map(Box::new)
                    .map_err(|e| crate::format::report_chain(&e));
                if tx.send(send(SampleData::Catalog(cat))).await.is_err() {
                    return;
                }
            }
            n = if live_ok { n + 1 } else { 0 };
        }
    })
}
