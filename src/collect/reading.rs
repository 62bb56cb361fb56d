//! One full read of both sides at once, for the headless commands.

use crate::collect::postgres::PgReader;
use crate::config::Settings;
use crate::domain::checks::SideView;
use crate::domain::observed::{Inventory, Live, Side};
use crate::domain::rds::InstanceFacts;
use crate::domain::schema::Catalog;
use crate::format::report_chain;

#[derive(Debug)]
pub struct SideReading {
    pub live: Result<Live, String>,
    pub inventory: Option<Result<Inventory, String>>,
    pub catalog: Option<Result<Catalog, String>>,
    /// AWS facts, when the side is an RDS instance and AWS was read.
    pub rds: Option<InstanceFacts>,
}

impl SideReading {
    /// What the checks look at.
    pub fn view(&self) -> SideView<'_> {
        SideView {
            live: self.live.as_ref().ok(),
            inventory: self.inventory.as_ref().and_then(|r| r.as_ref().ok()),
            error: self.live.as_ref().err().map(String::as_str),
            rds: self.rds.as_ref(),
            catalog: self.catalog.as_ref().and_then(|r| r.as_ref().ok()),
        }
    }
}

/// The reader of a side's database: `settings` of one replicated database (or of the only one).
pub fn reader(settings: &Settings, side: Side) -> PgReader {
    PgReader::new(
        settings.side(side).clone(),
        settings.poll.timeout,
        settings.app_roles.clone(),
        settings.replication_user.clone(),
    )
    .members_of(&settings.names)
}

/// Live facts, then (when `full`) inventory and catalogue, over one connection.
pub async fn read_side(reader: &mut PgReader, full: bool) -> SideReading {
    let live = reader.live().await.map_err(|e| report_chain(&e));
    if live.is_err() || !full {
        return SideReading {
            live,
            inventory: None,
            catalog: None,
            rds: None,
        };
    }
    let inventory = Some(reader.inventory().await.map_err(|e| report_chain(&e)));
    let catalog = Some(reader.catalog().await.map_err(|e| report_chain(&e)));
    SideReading {
        live,
        inventory,
        catalog,
        rds: None,
    }
}

/// Both sides concurrently; a side that is down is a value, not an error.
pub async fn read_both(settings: &Settings, full: bool) -> (SideReading, SideReading) {
    let mut b = reader(settings, Side::Blue);
    let mut g = reader(settings, Side::Green);
    tokio::join!(read_side(&mut b, full), read_side(&mut g, full))
}
