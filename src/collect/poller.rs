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

/// Poll the main database until the receiver is dropped.
pub fn spawn(reader: PgReader, poll: PollSettings, tx: mpsc::Sender<Sample>) -> JoinHandle<()> {
    tokio::spawn(run(reader, None, poll, tx))
}

/// Poll one more replicated database until the receiver is dropped: its own objects every
/// interval, its sequences and catalogue on the slow schedule, over its one connection.
pub fn spawn_database(
    reader: PgReader,
    db: String,
    poll: PollSettings,
    tx: mpsc::Sender<Sample>,
) -> JoinHandle<()> {
    tokio::spawn(run(reader, Some(db), poll, tx))
}

fn text<T>(r: color_eyre::eyre::Result<T>) -> Result<T, String> {
    r.map_err(|e| crate::format::report_chain(&e))
}

/// The poll loop: the main database's live facts, or one more database's objects, every
/// interval; then its inventory (or sequences) and catalogue on schedule.
async fn run(
    mut reader: PgReader,
    db: Option<String>,
    poll: PollSettings,
    tx: mpsc::Sender<Sample>,
) {
    let side = reader.side();
    let mut tick = tokio::time::interval(poll.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let send = |data| Sample {
            side,
            db: db.clone(),
            at: SystemTime::now(),
            data,
        };
        let (fast, live_ok) = if db.is_some() {
            let r = text(reader.database_live().await.map(Box::new));
            let ok = r.is_ok();
            (SampleData::DbLive(r), ok)
        } else {
            let r = text(reader.live().await.map(Box::new));
            let ok = r.is_ok();
            (SampleData::Live(r), ok)
        };
        if tx.send(send(fast)).await.is_err() {
            return;
        }
        // The slow reads run on schedule, and also right after a failure clears, so a side
        // that comes back is fully known again at once.
        if live_ok && n.is_multiple_of(u64::from(poll.inventory_every)) {
            let slow = if db.is_some() {
                SampleData::Sequences(text(reader.sequences().await))
            } else {
                SampleData::Inventory(text(reader.inventory().await.map(Box::new)))
            };
            if tx.send(send(slow)).await.is_err() {
                return;
            }
            let cat = SampleData::Catalog(text(reader.catalog().await.map(Box::new)));
            if tx.send(send(cat)).await.is_err() {
                return;
            }
        }
        n = if live_ok { n + 1 } else { 0 };
    }
}
