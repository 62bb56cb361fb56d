//! `verify`: are BLUE's rows on GREEN (or, after a cutover, GREEN's on BLUE), table by table,
//! while the pair replicates and the application writes. Read-only on both sides, on its own
//! connections, throttled; the verdict rules are `domain::verify`'s.

mod action;
mod kept;
mod resume;
mod sql;

pub use action::{outcome, plan};
pub use kept::{journal_table, last, last_path, record, switch_check};
pub use resume::{path as progress_path, still_running, underway};

use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, bail, eyre};
use tokio_postgres::Client;

use super::scope::{self, Scope};
use crate::collect::connect::{connect, pg_error_text};
use crate::config::{Settings, VerifySettings};
use crate::domain::lsn::Lsn;
use crate::domain::observed::Side;
use crate::domain::verify::{
    self as v, ChunkRead, HotRange, Next, Report, RowDiff, TableResult, Verdict,
};
use resume::Tally;
use sql::Table;

/// How many times a chunk that keeps changing is read again before it is split (or called
/// hot), and after how long at first (doubled each time).
const ATTEMPTS: u32 = 5;
const BACKOFF: Duration = Duration::from_millis(100);
/// The same for each half of a split chunk: a small range is read quickly, so it either holds
/// still within a few reads or it is where the writes go.
const SPLIT_ATTEMPTS: u32 = 3;
const SPLIT_BACKOFF: Duration = Duration::from_millis(50);
/// A table without a key is read whole; over this many rows it is worth a warning.
const LARGE_WHOLE: i64 = 1_000_000;

/// One side's connection, with the settings under which both print values alike.
struct Conn {
    side: Side,
    client: Client,
    timeout: Duration,
}

impl Conn {
    async fn open(settings: &Settings, side: Side, cfg: &VerifySettings) -> Result<Conn> {
        let s = settings.side(side);
        let timeout = settings.poll.timeout.max(Duration::from_secs(10));
        let client = connect(s, timeout).await?;
        let ms = u64::try_from(cfg.statement_timeout.as_millis()).unwrap_or(u64::MAX);
        client
            .batch_execute(&sql::session(ms))
            .await
            .map_err(|e| eyre!("{}: {}", side.upper(), pg_error_text(&e)))?;
        Ok(Conn {
            side,
            client,
            timeout: cfg.statement_timeout + Duration::from_secs(5),
        })
    }

    async fn query(&self, q: &str) -> Result<Vec<tokio_postgres::Row>> {
        match tokio::time::timeout(self.timeout, self.client.query(q, &[])).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => bail!("{}: {}", self.side.upper(), pg_error_text(&e)),
            Err(_) => bail!(
                "{}: no answer within {} s",
                self.side.upper(),
                self.timeout.as_secs()
            ),
        }
    }

    async fn digest(&self, t: &Table, range: &str) -> Result<ChunkRead> {
        Ok(self.digest_at(t, range).await?.0)
    }

    /// A chunk's read and this server's LSN once it was read (past every commit it saw).
    async fn digest_at(&self, t: &Table, range: &str) -> Result<(ChunkRead, Lsn)> {
        let rows = self.query(&t.digest(range)).await?;
        let r = rows.first().ok_or_else(|| eyre!("no digest row"))?;
        let lsn: String = r.get(2);
        let lsn = lsn
            .parse()
            .map_err(|e| eyre!("{}: LSN {lsn}: {e}", self.side.upper()))?;
        Ok((
            ChunkRead {
                rows: r.get(0),
                hash: r.get(1),
            },
            lsn,
        ))
    }

    async fn lsn_of(&self, q: &str) -> Option<Lsn> {
        let rows = self.query(q).await.ok()?;
        rows.first()?.get::<_, Option<String>>(0)?.parse().ok()
    }

    async fn tables(&self) -> Result<Vec<Table>> {
        let rows = self.query(sql::TABLES).await?;
        Ok(rows
            .iter()
            .map(|r| Table {
                schema: r.get(0),
                name: r.get(1),
                columns: r.get::<_, Option<Vec<String>>>(2).unwrap_or_default(),
                types: r.get::<_, Option<Vec<String>>>(3).unwrap_or_default(),
                key: r.get::<_, Option<Vec<String>>>(4).unwrap_or_default(),
                estimate: r.get(5),
                key_collated: r.get::<_, Option<Vec<bool>>>(6).unwrap_or_default(),
            })
            .collect())
    }

    /// Whether the database holds UTF-8 text (then the key order probe has letters beyond
    /// ASCII).
    async fn utf8(&self) -> Result<bool> {
        let rows = self.query(crate::sql::DATABASE_IS_UTF8).await?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }
}

/// The target did not catch up: true of every table, so the run stops instead of waiting
/// once per table.
#[derive(Debug)]
struct Behind(String);

impl std::fmt::Display for Behind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Behind {}

/// `--table` patterns that name no table: the operator's to mend, nothing was read.
#[derive(Debug)]
pub struct NoMatch(String);

impl std::fmt::Display for NoMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoMatch {}

/// One database's pair of connections and how to tell what the target has applied.
struct Pair {
    s: Conn,
    t: Conn,
    slot: String,
    subscription: String,
    db: Option<String>,
    /// Both databases hold UTF-8 text.
    utf8: bool,
    /// How long a chunk waits for the target to apply past the source's read.
    apply_wait: Duration,
}

impl Pair {
    /// Wait until the target has applied everything up to `lsn` of the source: its origin
    /// (moves with each commit applied) or the source's slot (moves with feedback, also when
    /// idle) says so.
    async fn applied(&self, lsn: Lsn) -> Result<()> {
        let deadline = Instant::now() + self.apply_wait;
        let (slot_q, origin_q) = (
            sql::slot_confirmed(&self.slot),
            sql::origin_applied(&self.subscription),
        );
        loop {
            let (slot, origin) = tokio::join!(self.s.lsn_of(&slot_q), self.t.lsn_of(&origin_q));
            if slot.is_some_and(|l| l >= lsn) || origin.is_some_and(|l| l >= lsn) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Behind(format!(
                    "{} has not applied {} of {} within {} s: replication is behind or stopped; \
                     see `pgcutover status` and verify once it streams",
                    self.t.side.upper(),
                    lsn,
                    self.s.side.upper(),
                    self.apply_wait.as_secs()
                ))
                .into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Read the source, then the target once past it: the rule of `domain::verify::attempt`;
    /// with the source's second read.
    async fn read(&self, t: &Table, range: &str) -> Result<(Next, ChunkRead)> {
        let (s1, l1) = self.s.digest_at(t, range).await?;
        self.applied(l1).await?;
        let tr = self.t.digest(t, range).await?;
        if tr == s1 {
            return Ok((Next::Verified, s1));
        }
        let (s2, l2) = self.s.digest_at(t, range).await?;
        let t2 = if s1 == s2 {
            self.applied(l2).await?;
            Some(self.t.digest(t, range).await?)
        } else {
            None
        };
        Ok((v::attempt(&s1, &tr, &s2, t2.as_ref()), s2))
    }

    /// The rows a chunk differs by, read on both sides at once.
    async fn narrow(&self, t: &Table, range: &str) -> Result<Vec<RowDiff>> {
        if range == sql::WHOLE {
            return self.narrow_whole(t).await;
        }
        let q = t.rows(range);
        let (s, tg) = tokio::join!(self.s.query(&q), self.t.query(&q));
        Ok(v::row_diff(&pairs(s?), &pairs(tg?)))
    }

    /// The rows a table read whole differs by. Its rows are grouped by a hash of what tells
    /// them apart (the key, or the row without one) and only the groups that differ are read
    /// row by row, so that no side's whole table is held in memory; it stops once far more
    /// rows than a verdict names are found.
    async fn narrow_whole(&self, t: &Table) -> Result<Vec<RowDiff>> {
        let q = t.groups(sql::WHOLE);
        let (s, tg) = tokio::join!(self.s.query(&q), self.t.query(&q));
        let mut out = Vec::new();
        for g in v::differing_groups(&pairs(s?), &pairs(tg?)) {
            let q = t.group_rows(sql::WHOLE, &g);
            let (s, tg) = tokio::join!(self.s.query(&q), self.t.query(&q));
            if t.key.is_empty() {
                let copies = |rows: Vec<tokio_postgres::Row>| -> Vec<(String, String, i64)> {
                    rows.iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2)))
                        .collect()
                };
                out.extend(v::copies_diff(&copies(s?), &copies(tg?)));
            } else {
                out.extend(v::row_diff(&pairs(s?), &pairs(tg?)));
            }
            if out.len() > v::MAX_KEYS * 10 {
                break;
            }
        }
        Ok(out)
    }

    /// Why a keyed table is read whole: the two sides order its key differently (another
    /// collation, or another version of it), so a range of the key holds other rows on each.
    async fn key_order_differs(&self, t: &Table) -> Result<Option<String>> {
        let Some(q) = t.key_order(self.utf8) else {
            return Ok(None);
        };
        let (s, tg) = tokio::join!(self.s.query(&q), self.t.query(&q));
        let orders = |rows: Vec<tokio_postgres::Row>| -> Vec<Option<String>> {
            rows.first()
                .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                .unwrap_or_default()
        };
        if orders(s?) == orders(tg?) {
            return Ok(None);
        }
        Ok(Some(format!(
            "{} and {} order its key's text differently (another collation, or another version of \
             it): read whole on both sides, as a range of the key would hold other rows on each; \
             give the key the same collation on both (and REINDEX where the collation changed) to \
             verify it in chunks",
            self.s.side.upper(),
            self.t.side.upper()
        )))
    }

    /// Rows only the target has past `end`, where no chunk looks: those the source lacks, and
    /// still lacks once the target has applied past it (a row the source deleted meanwhile
    /// reaches the target too).
    async fn past_end(&self, t: &Table, end: &[String]) -> Result<Vec<RowDiff>> {
        let rows = self.t.query(&t.past(end, v::MAX_KEYS * 10)).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<(String, Vec<String>)> = rows
            .iter()
            .map(|r| (r.get(0), (1..r.len()).map(|i| r.get(i)).collect()))
            .collect();
        let values: Vec<Vec<String>> = keys.iter().map(|(_, k)| k.clone()).collect();
        let shown = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
            rows.iter().map(|r| r.get(0)).collect()
        };
        let having = t.having(&values);
        let on_source = shown(self.s.query(&having).await?);
        // the source's LSN now (an empty read carries it), for the target to apply past
        let (_, lsn) = self.s.digest_at(t, "false").await?;
        self.applied(lsn).await?;
        let (src_now, tgt_now) = tokio::join!(self.s.query(&having), self.t.query(&having));
        let (src_now, tgt_now) = (shown(src_now?), shown(tgt_now?));
        Ok(keys
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| !on_source.contains(k) && !src_now.contains(k) && tgt_now.contains(k))
            .map(|key| RowDiff {
                key,
                kind: v::DiffKind::Extra,
            })
            .collect())
    }

    /// A mismatch is only said after a second look: the rows differ, the source has not moved
    /// since `quiet`, the target has applied past it, and the rows still differ. Rows that
    /// differed once and not twice were changes caught between two reads.
    async fn confirm(&self, t: &Table, range: &str, quiet: &ChunkRead) -> Result<Vec<RowDiff>> {
        let first = self.narrow(t, range).await?;
        if first.is_empty() {
            return Ok(first);
        }
        let (now, l) = self.s.digest_at(t, range).await?;
        if &now != quiet {
            return Ok(Vec::new());
        }
        self.applied(l).await?;
        let second = self.narrow(t, range).await?;
        Ok(first.into_iter().filter(|d| second.contains(d)).collect())
    }
}

/// Two text columns of each row.
fn pairs(rows: Vec<tokio_postgres::Row>) -> Vec<(String, String)> {
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// What one read of a chunk came to.
enum Chunk {
    Verified,
    Mismatch(Vec<RowDiff>),
    Hot,
}

/// A chunk's key range: after `lower` (from the first key without it), up to `upper`
/// included (to the last without it). A table without a key is one span with neither.
#[derive(Clone, Default)]
struct Span {
    lower: Option<Vec<String>>,
    upper: Option<Vec<String>>,
}

impl Span {
    fn range(&self, t: &Table) -> String {
        t.range(self.lower.as_deref(), self.upper.as_deref())
    }

    fn hot(&self, rows: i64) -> HotRange {
        HotRange {
            after: self.lower.as_deref().map(v::key_text),
            upto: self.upper.as_deref().map(v::key_text),
            rows,
        }
    }
}

/// Keeps the reading at `[verify] max_rows_per_s`.
struct Throttle {
    max: u64,
    started: Instant,
    rows: u64,
}

impl Throttle {
    async fn after(&mut self, rows: i64) {
        self.rows += u64::try_from(rows).unwrap_or(0);
        if self.max == 0 {
            return;
        }
        #[allow(clippy::cast_precision_loss)] // seconds of rows: no precision needed
        let due = Duration::from_secs_f64(self.rows as f64 / self.max as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Read a range on both sides until they agree, differ while the source holds still, or
/// `attempts` reads all saw the source change.
async fn attempts(
    p: &Pair,
    t: &Table,
    range: &str,
    (attempts, backoff): (u32, Duration),
    th: &mut Throttle,
) -> Result<(i64, Chunk)> {
    let mut rows = 0;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(backoff * (1 << (attempt - 1))).await;
        }
        let (next, last) = p.read(t, range).await?;
        rows = last.rows;
        th.after(rows).await;
        match next {
            Next::Verified => return Ok((rows, Chunk::Verified)),
            Next::Mismatch => {
                let diff = p.confirm(t, range, &last).await?;
                if !diff.is_empty() {
                    return Ok((rows, Chunk::Mismatch(diff)));
                }
            }
            Next::Again => {}
        }
    }
    Ok((rows, Chunk::Hot))
}

/// One chunk, into the table's tally. A chunk that never holds still is split in halves,
/// again and again: the halves that hold still are compared, and only the rows where the
/// writes go stay unverified (a single row updated all the time leaves that row hot, not
/// the chunk around it). A part whose halves both stay hot is written all over: it is not
/// split further.
async fn chunk(
    p: &Pair,
    t: &Table,
    span: Span,
    th: &mut Throttle,
    tally: &mut Tally,
) -> Result<()> {
    let (rows, first) = attempts(p, t, &span.range(t), (ATTEMPTS, BACKOFF), th).await?;
    tally.rows += rows;
    tally.chunks += 1;
    let mut todo = match first {
        Chunk::Verified => return Ok(()),
        Chunk::Mismatch(d) => {
            tally.diffs.extend(d);
            return Ok(());
        }
        Chunk::Hot => vec![(span, rows)],
    };
    while let Some((span, rows)) = todo.pop() {
        let Some(halves) = split(p, t, &span, rows).await? else {
            tally.hot.push(span.hot(rows));
            continue;
        };
        let mut hot = Vec::new();
        for half in halves {
            let range = half.range(t);
            match attempts(p, t, &range, (SPLIT_ATTEMPTS, SPLIT_BACKOFF), th).await? {
                (_, Chunk::Verified) => {}
                (_, Chunk::Mismatch(d)) => tally.diffs.extend(d),
                (rows, Chunk::Hot) => hot.push((half, rows)),
            }
        }
        if hot.len() == 2 {
            tally.hot.extend(hot.iter().map(|(s, rows)| s.hot(*rows)));
        } else {
            todo.extend(hot);
        }
    }
    Ok(())
}

/// A keyed span of `rows` rows cut at its middle key, if it has two rows or more.
async fn split(p: &Pair, t: &Table, span: &Span, rows: i64) -> Result<Option<[Span; 2]>> {
    let (Some(upper), false) = (&span.upper, t.key.is_empty()) else {
        return Ok(None);
    };
    if rows < 2 {
        return Ok(None);
    }
    let half = u64::try_from(rows / 2).unwrap_or(1);
    let q = t.boundary(span.lower.as_deref(), Some(upper), half);
    let Some(mid) = first_key(&p.s, &q).await?.filter(|m| m != upper) else {
        return Ok(None);
    };
    Ok(Some([
        Span {
            lower: span.lower.clone(),
            upper: Some(mid.clone()),
        },
        Span {
            lower: Some(mid),
            upper: span.upper.clone(),
        },
    ]))
}

/// What a run says as it goes: a line of progress, or a table it has finished (to journal
/// at once, so that a run stopped part-way leaves its verdicts so far).
pub enum Said<'a> {
    Line(&'a str),
    /// A table's verdict, and the side it was read from first.
    Table(Side, &'a TableResult),
}

/// Where a run's progress goes.
pub type Tell<'a> = &'a mut (dyn FnMut(Said<'_>) + Send);

/// What a run carries from table to table: the throttle, where it stands (for a rerun and the
/// dashboard), and where it says how it goes.
pub struct Run<'a> {
    th: Throttle,
    saved: resume::Saved,
    /// Rows the run it resumed had compared.
    taken_over: i64,
    tell: Tell<'a>,
}

impl Run<'_> {
    /// Keep where the run stands, with the figures the dashboard shows.
    fn save(&mut self) {
        let done = self.saved.rows();
        let table = self.saved.current.as_ref().map(resume::Current::name);
        if let Some(l) = &mut self.saved.live {
            l.rows_done = done;
            l.compared = done - self.taken_over;
            l.seconds = self.th.started.elapsed().as_secs_f64();
            l.table = table;
            l.updated_at = crate::format::now_rfc3339();
        }
        resume::save(&self.saved);
    }
}

/// Verify one table, chunk by chunk; a table part-way through in the run resumed goes on from
/// where it stood.
async fn table(
    p: &Pair,
    t: &Table,
    cfg: &VerifySettings,
    run: &mut Run<'_>,
) -> Result<TableResult> {
    let name = t.qualified();
    let mut res = TableResult {
        database: p.db.clone(),
        table: name.clone(),
        verdict: Verdict::Verified,
        rows: 0,
        chunks: 0,
        whole: t.key.is_empty(),
        warnings: Vec::new(),
    };
    let mut tally = Tally::default();
    if t.key.is_empty() {
        if t.estimate > LARGE_WHOLE {
            res.warnings.push(format!(
                "no key: read whole (about {} rows) on both sides; give it a primary key to verify it in chunks",
                t.estimate
            ));
        }
        chunk(p, t, Span::default(), &mut run.th, &mut tally).await?;
    } else if let Some(why) = p.key_order_differs(t).await? {
        res.whole = true;
        res.warnings.push(why);
        chunk(p, t, Span::default(), &mut run.th, &mut tally).await?;
    } else {
        keyed(p, t, cfg, run, &mut tally, &res.name()).await?;
    }
    res.rows = tally.rows;
    res.chunks = tally.chunks;
    res.verdict = v::table_verdict(tally.diffs, tally.hot);
    Ok(res)
}

/// A table with a key, in ranges of it; from where a resumed run left it.
async fn keyed(
    p: &Pair,
    t: &Table,
    cfg: &VerifySettings,
    run: &mut Run<'_>,
    tally: &mut Tally,
    shown: &str,
) -> Result<()> {
    let name = t.qualified();
    let mut keys = match run.saved.current(p.db.as_deref(), &name) {
        Some(c) => {
            *tally = c.tally.clone();
            Keys {
                end: Some(c.end.clone()),
                lower: Some(c.lower.clone()),
                done: c.lower == c.end,
            }
        }
        None => Keys {
            end: first_key(&p.s, &t.last_key()).await?,
            lower: None,
            done: false,
        },
    };
    if keys.end.is_none() {
        // empty on the source: the target must be too
        chunk(p, t, Span::default(), &mut run.th, tally).await?;
    }
    // the source reads the next chunks while the target reads the last ones
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        let upto = pending.last().and_then(|p| p.span.upper.clone());
        let (read, finished) = tokio::join!(
            read_sources(p, t, &mut keys, cfg.chunk_rows),
            finish(p, t, std::mem::take(&mut pending), &mut run.th, tally)
        );
        finished?;
        if let (Some(lower), Some(end)) = (upto, &keys.end) {
            run.saved.current = Some(resume::Current {
                database: p.db.clone(),
                table: name.clone(),
                lower,
                end: end.clone(),
                tally: tally.clone(),
            });
            run.save();
        }
        pending = read?;
        (run.tell)(Said::Line(&format!(
            "{shown}: {} rows in {} chunk(s)",
            tally.rows, tally.chunks
        )));
        if pending.is_empty() && keys.done {
            break;
        }
    }
    if let Some(end) = &keys.end {
        let extra = p.past_end(t, end).await?;
        if !extra.is_empty() {
            tally.diffs.extend(extra);
        }
    }
    Ok(())
}

/// How many chunks the source reads ahead of the target.
const AHEAD: usize = 8;

/// Where the key ranges of a table stand: the next one starts after `lower` and the last ends
/// at `end`, the source's largest key when the table was started.
struct Keys {
    end: Option<Vec<String>>,
    lower: Option<Vec<String>>,
    done: bool,
}

/// A chunk read on the source and not yet on the target: its key range, the read, and the
/// source's LSN after it.
struct Pending {
    span: Span,
    read: ChunkRead,
    lsn: Lsn,
}

/// The source's reads of the next `AHEAD` chunks, each in its own snapshot.
async fn read_sources(p: &Pair, t: &Table, k: &mut Keys, rows: u64) -> Result<Vec<Pending>> {
    let mut out = Vec::new();
    while !k.done && out.len() < AHEAD {
        let Some(end) = &k.end else {
            k.done = true;
            break;
        };
        let upper = first_key(&p.s, &t.boundary(k.lower.as_deref(), None, rows))
            .await?
            .filter(|u| u != end)
            .unwrap_or_else(|| end.clone());
        let span = Span {
            lower: k.lower.take(),
            upper: Some(upper.clone()),
        };
        let (read, lsn) = p.s.digest_at(t, &span.range(t)).await?;
        k.done = &upper == end;
        out.push(Pending { span, read, lsn });
        k.lower = Some(upper);
    }
    Ok(out)
}

/// The target's reads of chunks the source has read, once it applied past all of them; a
/// chunk that differs goes through the full rule (`chunk`).
async fn finish(
    p: &Pair,
    t: &Table,
    pending: Vec<Pending>,
    th: &mut Throttle,
    tally: &mut Tally,
) -> Result<()> {
    let Some(last) = pending.iter().map(|c| c.lsn).max() else {
        return Ok(());
    };
    p.applied(last).await?;
    for c in pending {
        if p.t.digest(t, &c.span.range(t)).await? == c.read {
            th.after(c.read.rows).await;
            tally.rows += c.read.rows;
            tally.chunks += 1;
        } else {
            chunk(p, t, c.span, th, tally).await?;
        }
    }
    Ok(())
}

/// The key values of a key query's first row, as text.
async fn first_key(c: &Conn, q: &str) -> Result<Option<Vec<String>>> {
    let rows = c.query(q).await?;
    Ok(rows
        .first()
        .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect()))
}

/// Verify every replicated database's tables (those matching `patterns`, all without any).
pub async fn run(
    settings: &Settings,
    patterns: &[String],
    restart: bool,
    tell: Tell<'_>,
) -> Result<Report> {
    let started = Instant::now();
    let (_, scopes) = scope::resolve(settings).await.map_err(|e| eyre!(e))?;
    // the direction is all it needs of the pair's state: no inventory, no checks
    let first = &scopes[0].settings;
    let (b, g) = crate::collect::reading::read_both(first, false).await;
    let phase =
        crate::domain::phase::derive(&first.names, b.live.as_ref().ok(), g.live.as_ref().ok());
    let Some(direction) = phase.direction else {
        bail!(
            "verify compares a pair while one replicates into the other; the phase is {}: run it after `start`, or after a switch",
            phase.phase.label()
        );
    };
    let source = direction.source();
    if restart {
        resume::clear();
    }
    // a run stopped before its first chunk was kept (its figures are saved from the start)
    // left nothing to resume
    let saved = match resume::load(source, patterns)
        .filter(|s| !s.finished.is_empty() || s.current.is_some())
    {
        Some(s) => {
            tell(Said::Line(&format!(
                "resuming the verify started {} ({} table(s) done): --restart starts over",
                s.started_at,
                s.finished.len()
            )));
            s
        }
        None => resume::Saved::new(source, patterns),
    };
    let taken_over = saved.rows();
    // each database's tables listed once: for the estimate, then to compare them
    let listed =
        futures_util::future::join_all(scopes.iter().map(|sc| source_tables(sc, source))).await;
    every_pattern_names_a_table(&listed, patterns, source)?;
    let (tables_total, rows_estimate) = estimate(&listed, patterns);
    let mut run = Run {
        th: Throttle {
            max: settings.verify.max_rows_per_s,
            started,
            rows: 0,
        },
        saved: resume::Saved {
            live: Some(v::Live {
                pid: std::process::id(),
                tables_total,
                rows_estimate,
                ..v::Live::default()
            }),
            ..saved
        },
        taken_over,
        tell,
    };
    run.save();
    let mut results = Vec::new();
    for (sc, listed) in scopes.iter().zip(listed) {
        results.extend(database(sc, source, listed?, patterns, &mut run).await?);
    }
    resume::clear();
    let rows: i64 = results.iter().map(|t| t.rows).sum();
    Ok(Report::new(
        source,
        results,
        (started.elapsed().as_secs_f64(), rows - taken_over),
        crate::format::now_rfc3339(),
    ))
}

/// Refuse `--table` patterns that name no table of the source (in any database listed).
fn every_pattern_names_a_table(
    listed: &[Result<Vec<Table>>],
    patterns: &[String],
    source: Side,
) -> Result<()> {
    if let Some(names) = listed
        .iter()
        .map(|l| l.as_ref().ok())
        .collect::<Option<Vec<_>>>()
    {
        let names: Vec<(&str, &str)> = names
            .iter()
            .flat_map(|tables| tables.iter().map(|t| (t.schema.as_str(), t.name.as_str())))
            .collect();
        let missing = v::unmatched(patterns, &names);
        if !missing.is_empty() {
            let quoted: Vec<String> = missing
                .iter()
                .map(|p| format!("'{}'", crate::text::echo(p)))
                .collect();
            return Err(NoMatch(format!(
                "--table {} names no table of {} in any replicated database: tables are matched by \
                 name or schema.name, as the report writes them (`*` any characters, `?` one); \
                 nothing was read",
                quoted.join(", "),
                source.upper()
            ))
            .into());
        }
    }
    Ok(())
}

/// The tables a run will compare and their rows, by the source's estimate: the total its
/// progress is measured against. A database that cannot be listed counts for nothing here;
/// the run itself says why.
fn estimate(listed: &[Result<Vec<Table>>], patterns: &[String]) -> (usize, i64) {
    listed
        .iter()
        .flatten()
        .flat_map(|tables| tables.iter().filter(|t| selected(patterns, t)))
        .fold((0, 0), |(n, r), t| (n + 1, r + t.estimate.max(0)))
}

/// The source's tables of one database, over a connection of their own.
async fn source_tables(sc: &Scope, source: Side) -> Result<Vec<Table>> {
    Conn::open(&sc.settings, source, &sc.settings.verify)
        .await?
        .tables()
        .await
}

/// Whether `--table` patterns choose a table (all without any).
fn selected(patterns: &[String], t: &Table) -> bool {
    patterns.is_empty()
        || patterns
            .iter()
            .any(|pat| v::matches(pat, &t.schema, &t.name))
}

/// Compare one database's tables (`src_tables`, listed on the source) with the target's.
async fn database(
    sc: &Scope,
    source: Side,
    src_tables: Vec<Table>,
    patterns: &[String],
    run: &mut Run<'_>,
) -> Result<Vec<TableResult>> {
    let cfg = &sc.settings.verify;
    let (s, t) = tokio::join!(
        Conn::open(&sc.settings, source, cfg),
        Conn::open(&sc.settings, source.other(), cfg)
    );
    let n = &sc.settings.names;
    let (s, t) = (s?, t?);
    let (su, tu) = tokio::join!(s.utf8(), t.utf8());
    let p = Pair {
        utf8: su? && tu?,
        s,
        t,
        slot: n.slot.clone(),
        subscription: n.subscription.clone(),
        db: sc.db.clone(),
        apply_wait: cfg.apply_timeout,
    };
    let tgt_tables = p.t.tables().await?;
    let mut out = Vec::new();
    for st in src_tables.iter().filter(|t| selected(patterns, t)) {
        if let Some(done) = run.saved.done(p.db.as_deref(), &st.qualified()) {
            out.push(done.clone());
            continue;
        }
        let skip = |reason: String| TableResult {
            database: p.db.clone(),
            table: st.qualified(),
            verdict: Verdict::Skipped { reason },
            rows: 0,
            chunks: 0,
            whole: st.key.is_empty(),
            warnings: Vec::new(),
        };
        let tu = source.other().upper();
        let Some(tt) = tgt_tables
            .iter()
            .find(|t| t.schema == st.schema && t.name == st.name)
        else {
            out.push(skip(format!("not on {tu}")));
            continue;
        };
        if tt.columns != st.columns || tt.types != st.types {
            out.push(skip(format!(
                "its columns differ on {tu} (see the schema diff): rows cannot be compared"
            )));
            continue;
        }
        // a table that cannot be read (a chunk over the statement timeout, a permission) is
        // said of that table; the others are still compared
        let r = match table(&p, st, cfg, run).await {
            Ok(r) => r,
            Err(e) if e.downcast_ref::<Behind>().is_some() => return Err(e),
            Err(e) => skip(format!(
                "could not be compared: {}",
                crate::format::report_chain(&e)
            )),
        };
        (run.tell)(Said::Line(&format!("{}: {}", r.name(), r.verdict.word())));
        (run.tell)(Said::Table(source, &r));
        run.saved.finished.push(r.clone());
        run.saved.current = None;
        run.save();
        out.push(r);
    }
    Ok(out)
}
