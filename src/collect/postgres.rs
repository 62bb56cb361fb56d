//! Reading one side: a single monitoring connection, reconnected when lost, statements prepared
//! once per connection, every call bounded by a timeout.

use std::time::Duration;

use color_eyre::eyre::{Result, bail, eyre};
use tokio_postgres::{Client, Statement};

use super::connect::{connect, pg_error_text};
use super::queries;
use crate::config::SideSettings;
use crate::domain::observed::{
    CronJobs, Database, DbLive, Inventory, Live, QualName, SequenceValue,
};
use crate::domain::phase::MigrationNames;
use crate::domain::schema::{Catalog, Members, ObjectKey, ObjectKind};

struct Conn {
    client: Client,
    version_num: i32,
    live: Statement,
}

/// Where pg_cron's jobs are, seen from one database.
enum Cron {
    Here(CronJobs),
    /// In this other database (`cron.database_name`).
    In(String),
    Absent,
}

async fn read_cron(client: &Client) -> Result<Cron, tokio_postgres::Error> {
    let row = client.query_one(queries::CRON_TABLE, &[]).await?;
    if !row.get::<_, bool>(0) {
        return Ok(match row.get::<_, Option<String>>(1) {
            Some(db) if !db.is_empty() && db != row.get::<_, String>(2) => Cron::In(db),
            _ => Cron::Absent,
        });
    }
    let row = client.query_one(queries::CRON_JOBS, &[]).await?;
    Ok(Cron::Here(CronJobs {
        active: row.get(0),
        total: row.get(1),
        database: None,
        error: None,
    }))
}

async fn read_sequences(client: &Client) -> Result<Vec<SequenceValue>, tokio_postgres::Error> {
    let rows = client.query(&queries::sequence_list(), &[]).await?;
    let mut out = Vec::with_capacity(rows.len());
    // the readable ones past the first batch, which the list did not read
    let mut unread: Vec<(i64, usize)> = Vec::new();
    for r in &rows {
        let oid: i64 = r.get(0);
        if r.get::<_, bool>(3) && !r.get::<_, bool>(4) {
            unread.push((oid, out.len()));
        }
        out.push(SequenceValue {
            sequence: QualName {
                schema: r.get(1),
                name: r.get(2),
            },
            last_value: r.get(5),
        });
    }
    for batch in unread.chunks(queries::SEQUENCE_BATCH) {
        let oids: Vec<i64> = batch.iter().map(|(o, _)| *o).collect();
        let values = client.query(&queries::sequence_values(&oids), &[]).await?;
        for (row, (_, idx)) in values.iter().zip(batch) {
            out[*idx].last_value = row.get(1);
        }
    }
    Ok(out)
}

/// The tables publication `publication` publishes in the connected database (none without it).
pub async fn published_tables(
    client: &Client,
    publication: &str,
) -> Result<Vec<QualName>, tokio_postgres::Error> {
    let rows = client
        .query(queries::PUBLISHED_TABLES, &[&publication])
        .await?;
    Ok(rows.iter().filter_map(table_name).collect())
}

/// The tables subscription `subscription` of the connected database knows; `None` without it.
pub async fn subscribed_tables(
    client: &Client,
    subscription: &str,
) -> Result<Option<Vec<QualName>>, tokio_postgres::Error> {
    let rows = client
        .query(queries::SUBSCRIBED_TABLES, &[&subscription])
        .await?;
    Ok((!rows.is_empty()).then(|| rows.iter().filter_map(table_name).collect()))
}

fn table_name(r: &tokio_postgres::Row) -> Option<QualName> {
    Some(QualName {
        schema: r.get::<_, Option<String>>(0)?,
        name: r.get::<_, Option<String>>(1)?,
    })
}

/// Other databases the slow poll opens a connection to, each time it runs.
const MAX_OTHER_DATABASES: usize = 50;

pub struct PgReader {
    settings: SideSettings,
    timeout: Duration,
    app_roles: Vec<String>,
    replication_user: Option<String>,
    /// Reads one more replicated database's own objects only (`database_live`), the
    /// instance's facts being read by the main reader.
    objects_only: bool,
    /// The migration's publication and subscription in this database, whose tables the
    /// catalogue read lists (`members_of`).
    members_of: Option<(String, String)>,
    conn: Option<Conn>,
}

impl PgReader {
    pub fn new(
        settings: SideSettings,
        timeout: Duration,
        app_roles: Vec<String>,
        replication_user: Option<String>,
    ) -> Self {
        PgReader {
            settings,
            timeout,
            app_roles,
            replication_user,
            objects_only: false,
            members_of: None,
            conn: None,
        }
    }

    /// The catalogue read also lists the tables of this database's publication and
    /// subscription of the migration (`Catalog::members`).
    #[must_use]
    pub fn members_of(mut self, names: &MigrationNames) -> Self {
        self.members_of = Some((names.publication.clone(), names.subscription.clone()));
        self
    }

    /// A reader of one more replicated database: `database_live`, `sequences` and `catalog`.
    #[must_use]
    pub fn objects_only(mut self) -> Self {
        self.objects_only = true;
        self
    }

    pub fn side(&self) -> crate::domain::observed::Side {
        self.settings.side
    }

    async fn conn(&mut self) -> Result<&Conn> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let client = connect(&self.settings, self.timeout).await?;
            let side = self.settings.side.upper();
            let v: String = client
                .query_one("SELECT current_setting('server_version_num')", &[])
                .await
                .map_err(|e| eyre!("{side}: {}", pg_error_text(&e)))?
                .get(0);
            let version_num: i32 = v.parse().unwrap_or(0);
            if version_num < queries::MIN_VERSION_NUM {
                bail!(
                    "{side} runs PostgreSQL {version_num}; pgcutover reads PostgreSQL 13 and later"
                );
            }
            let origin_readable: bool = client
                .query_one(queries::ORIGIN_READABLE, &[])
                .await
                .map_err(|e| eyre!("{side}: {}", pg_error_text(&e)))?
                .get(0);
            let query = if self.objects_only {
                queries::database_live(version_num, origin_readable)
            } else {
                queries::live(version_num, origin_readable)
            };
            let live = client
                .prepare(&query)
                .await
                .map_err(|e| eyre!("{side}: preparing the status query: {}", pg_error_text(&e)))?;
            self.conn = Some(Conn {
                client,
                version_num,
                live,
            });
        }
        Ok(self.conn.as_ref().expect("connected above"))
    }

    /// Run `f` under the timeout; a timeout or a lost connection drops the connection so the
    /// next call starts clean instead of queueing behind a stuck query.
    async fn bounded<T>(
        &mut self,
        what: &str,
        f: impl AsyncFnOnce(&Conn) -> Result<T>,
    ) -> Result<T> {
        let timeout = self.timeout;
        let side = self.settings.side.upper();
        let r = match tokio::time::timeout(timeout, async {
            let c = self.conn().await?;
            f(c).await
        })
        .await
        {
            Ok(r) => r,
            Err(_) => Err(eyre!(
                "{side}: {what} took longer than {} ms",
                timeout.as_millis()
            )),
        };
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    pub async fn version_num(&mut self) -> Result<i32> {
        self.bounded("connecting", async |c| Ok(c.version_num))
            .await
    }

    pub async fn live(&mut self) -> Result<Live> {
        let roles = self.app_roles.clone();
        let user = self.replication_user.clone();
        let side = self.settings.side.upper();
        if self.objects_only {
            bail!("internal: {side}'s reader of one database asked for the instance's facts");
        }
        self.bounded("the status query", async move |c| {
            let row = c
                .client
                .query_one(&c.live, &[&roles, &user])
                .await
                .map_err(|e| eyre!("{side}: status query: {}", pg_error_text(&e)))?;
            let text: &str = row.get(0);
            serde_json::from_str(text).map_err(|e| eyre!("{side}: unexpected status document: {e}"))
        })
        .await
    }

    /// This database's subscriptions and publications (a reader made `objects_only`).
    pub async fn database_live(&mut self) -> Result<DbLive> {
        let side = self.settings.side.upper();
        if !self.objects_only {
            bail!("internal: {side}'s main reader asked for one database's objects");
        }
        self.bounded("the database's status query", async move |c| {
            let row = c
                .client
                .query_one(&c.live, &[])
                .await
                .map_err(|e| eyre!("{side}: status query: {}", pg_error_text(&e)))?;
            let text: &str = row.get(0);
            serde_json::from_str(text).map_err(|e| eyre!("{side}: unexpected status document: {e}"))
        })
        .await
    }

    /// The connected database's sequences and their values.
    pub async fn sequences(&mut self) -> Result<Vec<SequenceValue>> {
        let side = self.settings.side.upper();
        self.bounded("reading sequences", async move |c| {
            read_sequences(&c.client)
                .await
                .map_err(|e| eyre!("{side}: reading sequences: {}", pg_error_text(&e)))
        })
        .await
    }

    pub async fn inventory(&mut self) -> Result<Inventory> {
        let side = self.settings.side.upper();
        let roles = self.app_roles.clone();
        let user = self.replication_user.clone();
        let (mut inv, cron) = self
            .bounded("the inventory query", async move |c| {
                let row = c
                    .client
                    .query_one(&queries::inventory(), &[&roles, &user])
                    .await
                    .map_err(|e| eyre!("{side}: inventory query: {}", pg_error_text(&e)))?;
                let text: &str = row.get(0);
                let mut inv: Inventory = serde_json::from_str(text)
                    .map_err(|e| eyre!("{side}: unexpected inventory document: {e}"))?;
                inv.sequences = read_sequences(&c.client)
                    .await
                    .map_err(|e| eyre!("{side}: reading sequences: {}", pg_error_text(&e)))?;
                let cron = read_cron(&c.client)
                    .await
                    .map_err(|e| eyre!("{side}: reading pg_cron's jobs: {}", pg_error_text(&e)))?;
                Ok((inv, cron))
            })
            .await?;
        inv.cron = match cron {
            Cron::Here(jobs) => Some(jobs),
            Cron::In(db) => Some(self.read_cron_in(db).await),
            Cron::Absent => None,
        };
        self.read_other_databases(&mut inv.databases).await;
        Ok(inv)
    }

    /// pg_cron's jobs in its own database (`cron.database_name`), over a short connection: a
    /// failure is said in the answer, not taken for "no jobs".
    async fn read_cron_in(&self, db: String) -> CronJobs {
        let s = self.settings.for_database(&db);
        let read = async {
            let client = connect(&s, self.timeout).await?;
            match read_cron(&client)
                .await
                .map_err(|e| eyre!("{}", pg_error_text(&e)))?
            {
                Cron::Here(jobs) => Ok(Some(jobs)),
                Cron::In(_) | Cron::Absent => Ok::<_, color_eyre::Report>(None),
            }
        };
        let (jobs, error) = match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(Some(jobs))) => (jobs, None),
            // cron.database_name names a database without the extension: no job can run
            Ok(Ok(None)) => (CronJobs::default(), None),
            Ok(Err(e)) => (
                CronJobs::default(),
                Some(crate::text::one_line(&e.to_string()).into_owned()),
            ),
            Err(_) => (
                CronJobs::default(),
                Some(format!("no answer within {} ms", self.timeout.as_millis())),
            ),
        };
        CronJobs {
            database: Some(db),
            error,
            ..jobs
        }
    }

    /// The user tables of every other database, one short connection each, in turn: a database
    /// that cannot be read says why in its entry instead of failing the inventory.
    async fn read_other_databases(&self, dbs: &mut [Database]) {
        let mut read = 0;
        for db in dbs
            .iter_mut()
            .filter(|d| d.tables.is_none() && d.allow_conn)
        {
            // Bounded: an instance with hundreds of databases must not stall the slow poll.
            if read == MAX_OTHER_DATABASES {
                db.error = Some(format!(
                    "not read: pgcutover looks into at most {MAX_OTHER_DATABASES} other databases"
                ));
                continue;
            }
            read += 1;
            let s = self.settings.for_database(&db.name);
            let count = async {
                let client = connect(&s, self.timeout).await?;
                let row = client
                    .query_one(&queries::database_tables(), &[])
                    .await
                    .map_err(|e| eyre!("{}", pg_error_text(&e)))?;
                Ok::<_, color_eyre::Report>((row.get::<_, i64>(0), row.get::<_, i64>(1)))
            };
            match tokio::time::timeout(self.timeout, count).await {
                Ok(Ok((tables, bytes))) => {
                    db.tables = Some(tables);
                    db.bytes = Some(bytes);
                }
                Ok(Err(e)) => db.error = Some(crate::text::one_line(&e.to_string()).into_owned()),
                Err(_) => {
                    db.error = Some(format!("no answer within {} ms", self.timeout.as_millis()));
                }
            }
        }
    }

    pub async fn catalog(&mut self) -> Result<Catalog> {
        let side = self.settings.side.upper();
        let members_of = self.members_of.clone();
        self.bounded("the catalogue query", async move |c| {
            let rows = c
                .client
                .query(&queries::catalog(), &[])
                .await
                .map_err(|e| eyre!("{side}: catalogue query: {}", pg_error_text(&e)))?;
            let mut cat = Catalog::with_capacity(rows.len());
            for r in rows {
                let kind: &str = r.get(0);
                let kind = ObjectKind::parse(kind)
                    .ok_or_else(|| eyre!("{side}: unknown catalogue kind {kind}"))?;
                let key = ObjectKey {
                    kind,
                    schema: r.get(1),
                    parent: r.get(2),
                    name: r.get(3),
                };
                let def: Option<String> = r.get(4);
                cat.insert(key, def.unwrap_or_default());
            }
            // a probe that fails says nothing of the order; it must not cost the schema diff
            cat.text_order = text_order(&c.client).await.ok().flatten();
            if let Some((publication, subscription)) = members_of {
                let read = async {
                    Ok::<_, tokio_postgres::Error>(Members {
                        published: published_tables(&c.client, &publication).await?,
                        subscribed: subscribed_tables(&c.client, &subscription).await?,
                    })
                };
                cat.members = Some(read.await.map_err(|e| {
                    eyre!(
                        "{side}: the publication's and subscription's tables: {}",
                        pg_error_text(&e)
                    )
                })?);
            }
            Ok(cat)
        })
        .await
    }
}

/// How the database sorts text (`Catalog::text_order`): its letters beyond ASCII only where
/// the database can hold them.
async fn text_order(c: &tokio_postgres::Client) -> Result<Option<String>, tokio_postgres::Error> {
    let utf8: bool = c.query_one(crate::sql::DATABASE_IS_UTF8, &[]).await?.get(0);
    let row = c.query_one(&crate::sql::text_order(utf8), &[]).await?;
    Ok(row.get(0))
}
