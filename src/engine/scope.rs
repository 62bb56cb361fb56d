//! The databases an action works on. Logical replication is per database: each replicated
//! database has its own publication, slot and subscription, and its own engine connections;
//! roles, the fence and the WAL position belong to the whole instance.

use crate::collect::reading;
use crate::config::Settings;
use crate::domain::names::{self, DatabaseSet};
use crate::domain::observed::Side;

/// One replicated database and the settings that reach it and name its objects.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `None` when one database is replicated: its steps run on the engine's main connections
    /// and say nothing of a database, as before `[replication] databases` existed.
    pub db: Option<String>,
    pub settings: Settings,
}

impl Scope {
    /// `[db] ` before what is said of this database, when there are several.
    pub fn prefix(&self) -> String {
        names::db_prefix(self.db.as_deref())
    }

    /// This database's subscription, named with its database (`None`: the only one), for the
    /// statements that reach every database's from one connection.
    pub fn subscription(&self) -> (&str, Option<&str>) {
        (&self.settings.names.subscription, self.db.as_deref())
    }
}

/// The databases of `[replication] databases`, each with its settings; `all` is read on BLUE
/// (GREEN when BLUE cannot be read). Never an empty list. With one database, the settings are
/// the ones the whole engine uses.
pub async fn resolve(settings: &Settings) -> Result<(Settings, Vec<Scope>), String> {
    let one = |s: Settings| {
        let scope = Scope {
            db: None,
            settings: s.clone(),
        };
        Ok((s, vec![scope]))
    };
    let list = match &settings.names.databases {
        DatabaseSet::Dsn => return one(settings.clone()),
        DatabaseSet::Listed(v) => v.clone(),
        DatabaseSet::All => all(settings).await?,
    };
    match list.as_slice() {
        [] => Err("no database to replicate: list them in [replication] databases".into()),
        [only] if !settings.names.databases.per_database_names() => {
            one(settings.for_database(only))
        }
        _ => {
            let scopes = list
                .iter()
                .map(|d| Scope {
                    db: Some(d.clone()),
                    settings: settings.for_database(d),
                })
                .collect();
            Ok((settings.clone(), scopes))
        }
    }
}

async fn all(settings: &Settings) -> Result<Vec<String>, String> {
    let mut why = Vec::new();
    for side in Side::BOTH {
        match reading::reader(settings, side).inventory().await {
            Ok(inv) => return names::select_all(&inv.databases),
            Err(e) => why.push(format!(
                "{}: {}",
                side.upper(),
                crate::format::report_chain(&e)
            )),
        }
    }
    Err(format!(
        "databases = \"all\": the list of databases cannot be read ({})",
        why.join("; ")
    ))
}
