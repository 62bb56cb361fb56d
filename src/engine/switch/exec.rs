//! What each switch step does when it runs: the statements its `Step` carries, and for the
//! values known only now (LSNs, the origin's name, the sequences) the same builders the plan
//! shows. Waits go through `poll_until`, each with its deadline.

use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, bail, eyre};
use tokio_postgres::error::SqlState;

use super::super::db::{Db, Rows, sqlstate};
use super::super::sqlgen;
use super::super::step::Step;
use super::super::traffic::{self, TrafficProgress};
use super::super::{Ctx, Wait};
use crate::collect::queries;
use crate::config::Settings;
use crate::domain::fence::XidMark;
use crate::domain::guards::Action;
use crate::domain::lsn::Lsn;
use crate::domain::observed::{QualName, Side};
use crate::domain::phase::MigrationNames;
use crate::domain::phase::ROLLED_BACK_MARK;
use crate::domain::step::StepId;
use crate::engine::scope::Scope;
use crate::sql::ident;

/// How long a forward apply worker may take to start (the launcher retries every
/// `wal_retrieve_retry_interval`, 5 s by default).
pub const WORKER_START: Duration = Duration::from_mins(1);
/// The reverse worker starts after the forward path is gone.
pub const WORKER_START_REVERSE: Duration = Duration::from_secs(30);
/// The walsender that served the forward subscription may take a moment to exit.
pub const WALSENDER_EXIT: Duration = Duration::from_secs(15);

/// The engine's connections to the source and the target: the main ones (the database of each
/// side's connection, where the instance-wide steps run) and one per other database a step
/// runs in; and each replicated database's names.
pub struct Conns {
    pub s: Db,
    pub t: Db,
    others: Vec<(Side, String, Db)>,
    /// The database the main connections are in, per side.
    main_db: [String; 2],
    pub scopes: Vec<Scope>,
}

impl Conns {
    /// Connect to every database the steps or the replicated databases need, at once.
    pub async fn open(
        settings: &Settings,
        action: Action,
        steps: &[Step],
        scopes: &[Scope],
    ) -> Result<Conns> {
        let (src, tgt) = super::sides(action);
        let timeout = settings.poll.timeout.max(Duration::from_secs(10));
        let main_db = [
            crate::collect::connect::database(&settings.blue),
            crate::collect::connect::database(&settings.green),
        ];
        let mut wanted: Vec<(Side, String)> = Vec::new();
        // a replicated database on both sides; another step's database (pg_cron's) on its own
        let replicated = scopes
            .iter()
            .filter_map(|s| s.db.clone())
            .flat_map(|db| [(src, db.clone()), (tgt, db)]);
        let own = steps
            .iter()
            .filter_map(|s| s.db.clone().map(|db| (s.side, db)));
        for (side, db) in replicated.chain(own) {
            if main_db[usize::from(side == Side::Green)] != db
                && !wanted.contains(&(side, db.clone()))
            {
                wanted.push((side, db));
            }
        }
        let (s, t) = tokio::join!(
            Db::connect(settings.side(src), timeout),
            Db::connect(settings.side(tgt), timeout)
        );
        let others = futures_util::future::join_all(wanted.into_iter().map(|(side, db)| {
            let ss = settings.side(side).for_database(&db);
            async move {
                let c = Db::connect(&ss, timeout)
                    .await
                    .map_err(|e| e.wrap_err(format!("database {}", ident(&db))))?;
                Ok::<_, color_eyre::Report>((side, db, c))
            }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        Ok(Conns {
            s: s?,
            t: t?,
            others,
            main_db,
            scopes: scopes.to_vec(),
        })
    }

    /// The connection to `side` in database `db` (`None`: the main one).
    pub fn get(&self, side: Side, db: Option<&str>) -> Result<&Db> {
        let main = if side == self.s.side {
            &self.s
        } else {
            &self.t
        };
        let Some(db) = db else { return Ok(main) };
        if self.main_db[usize::from(side == Side::Green)] == db {
            return Ok(main);
        }
        self.others
            .iter()
            .find(|(s, d, _)| *s == side && d == db)
            .map(|(_, _, c)| c)
            .ok_or_else(|| {
                eyre!(
                    "internal: no connection to {} in database {}",
                    side.upper(),
                    ident(db)
                )
            })
    }

    fn of(&self, step: &Step) -> Result<&Db> {
        self.get(step.side, step.db.as_deref())
    }

    /// The names of database `db`'s objects (`None`: the only database replicated).
    pub fn names(&self, db: Option<&str>) -> Result<&MigrationNames> {
        self.scopes
            .iter()
            .find(|s| s.db.as_deref() == db)
            .map(|s| &s.settings.names)
            .ok_or_else(|| eyre!("internal: database {:?} is not replicated", db))
    }
}

/// What the window has changed so far, for undo.
#[derive(Default)]
pub struct Changed {
    pub fenced: bool,
    /// The databases whose forward subscription the window disabled.
    pub forward_disabled: Vec<Option<String>>,
    pub unfence_sent: bool,
    /// Slots carried to the target so far, with their database.
    pub carried: Vec<(Option<String>, String)>,
    /// pg_cron's jobs paused on the source, and activated on the target, with the database.
    pub cron_paused: Option<(Option<String>, Vec<i64>)>,
    pub cron_resumed: Option<(Option<String>, Vec<i64>)>,
}

/// What the steps learn as they run.
#[derive(Default)]
pub struct Progress {
    pub changed: Changed,
    pub traffic: TrafficProgress,
    source_lsn: Option<Lsn>,
    /// The id counter around the source's last LSN: when no transaction ends after it, the
    /// fence check needs no decoding.
    source_xids: Option<XidMark>,
    /// The target's LSN read in the window: where the reverse path starts.
    pub target_lsn: Option<Lsn>,
    /// The fence check's reading of the id counter: whether the slots must be decoded.
    ids: Option<Ids>,
    opened: Option<Instant>,
    pub window_ms: Option<f64>,
    /// The pg_cron jobs to activate on the target.
    pub cron_jobs: Vec<i64>,
}

/// What the fence check read of the source's id counter since its last LSN.
enum Ids {
    /// No transaction ended: no write to look for in the slots; the detail says so.
    Quiet(String),
    /// One did, or the counter could not be read: every slot is decoded; why.
    Moved(String),
}

fn first_cell(rows: &Rows, col: usize) -> Option<String> {
    rows.first().and_then(|r| r.get(col)).cloned().flatten()
}

fn parse_lsn(v: Option<String>, what: &str) -> Result<Lsn> {
    v.ok_or_else(|| eyre!("{what}: no value"))?
        .parse::<Lsn>()
        .map_err(|e| eyre!("{what}: {e}"))
}

/// The consumers' slots, created on the target; each is remembered at once for an undo.
async fn carry_slots(step: &Step, db: &Db, p: &mut Progress, ctx: &Ctx<'_>) -> Result<String> {
    let mut at = Vec::new();
    for (stmt, name) in step.stmts.iter().zip(&step.creates) {
        let lsn = db.value(ctx, step.id, stmt).await?;
        p.changed.carried.push((step.db.clone(), name.clone()));
        at.push(format!("{} at {}", ident(name), lsn.unwrap_or_default()));
    }
    Ok(format!("on {}: {}", db.side.upper(), at.join(", ")))
}

/// Run one step; returns the detail the journal and the dashboard show. The steps that change
/// the progress run here; the others in `alongside`.
pub async fn step(
    step: &Step,
    action: Action,
    settings: &Settings,
    dbs: &Conns,
    p: &mut Progress,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let id = step.id;
    if runs_alongside(id) {
        before_alongside(step, p);
        return alongside(step, action, settings, dbs, p, ctx).await;
    }
    let db = dbs.of(step)?;
    match id {
        StepId::TrafficPause => traffic::pause(step, settings, &mut p.traffic, ctx).await,
        StepId::TrafficResume => traffic::resume(step, settings, &mut p.traffic, ctx).await,
        StepId::Fence => fence(step, settings, db, p, ctx).await,
        StepId::SourceLsn => {
            let rows = db.run(ctx, id, step.sql(0)?).await?;
            let lsn = parse_lsn(first_cell(&rows, 0), "source LSN")?;
            p.source_lsn = Some(lsn);
            let cell = |c| first_cell(&rows, c);
            p.source_xids =
                XidMark::parse(cell(3).as_deref(), cell(4).as_deref(), cell(5).as_deref());
            Ok(lsn.to_string())
        }
        StepId::TargetLsn => {
            let lsn = parse_lsn(db.value(ctx, id, step.sql(0)?).await?, "target LSN")?;
            p.target_lsn = Some(lsn);
            Ok(lsn.to_string())
        }
        StepId::CarrySlots => carry_slots(step, db, p, ctx).await,
        StepId::VerifyFence => verify_fence(step, db, p, ctx).await,
        StepId::CronPause => super::cron::pause(step, db, p, ctx).await,
        StepId::CronResume => super::cron::resume(step, db, p, ctx).await,
        StepId::Unfence => {
            p.changed.unfence_sent = true;
            db.run(ctx, id, step.sql(0)?).await?;
            let ms = p.opened.map_or(0.0, |o| o.elapsed().as_secs_f64() * 1000.0);
            p.window_ms = Some(ms);
            Ok(format!("{} serves; window {ms:.1} ms", dbs.t.side.upper()))
        }
        other => bail!("internal: step {other} changes the progress but has no handler"),
    }
}

/// Whether a step only reads the progress (`alongside` runs it), so that each database's copy
/// of it can run at the same time as the others'; the others are `step`'s own.
pub fn runs_alongside(id: StepId) -> bool {
    !matches!(
        id,
        StepId::TrafficPause
            | StepId::TrafficResume
            | StepId::Fence
            | StepId::SourceLsn
            | StepId::TargetLsn
            | StepId::VerifyFence
            | StepId::CarrySlots
            | StepId::CronPause
            | StepId::CronResume
            | StepId::Unfence
    )
}

/// What a step changes before it sends anything, so an undo covers it even if the answer is
/// lost: a forward subscription being disabled.
pub fn before_alongside(step: &Step, p: &mut Progress) {
    if step.id == StepId::StopForward && !p.changed.forward_disabled.contains(&step.db) {
        p.changed.forward_disabled.push(step.db.clone());
    }
}

/// Run a step that only reads the progress.
pub async fn alongside(
    step: &Step,
    action: Action,
    settings: &Settings,
    dbs: &Conns,
    p: &Progress,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let db = dbs.of(step)?;
    let su = dbs.s.side.upper();
    let id = step.id;
    // the steps whose statements only need to run
    let plain = match id {
        StepId::SyncCommit => Some("synchronous_commit = on".to_string()),
        StepId::ResumeForward => Some("enabled".into()),
        StepId::StopForward => Some("disabled".into()),
        StepId::ArmPublication => Some("created".into()),
        StepId::ArmSubscription => Some(format!("on {su}, disabled")),
        StepId::DropForward => Some("dropped".into()),
        StepId::StartReverse => Some("enabled".into()),
        _ => None,
    };
    if let Some(detail) = plain {
        for s in &step.stmts {
            db.run(ctx, id, s).await?;
        }
        return Ok(detail);
    }
    match id {
        StepId::TrafficRetarget => traffic::retarget(step, settings, ctx).await,
        StepId::RouterCommand => traffic::command(step, settings, action, ctx).await,
        StepId::LagGate => lag_gate(step, settings, db, ctx).await,
        StepId::DecodeSlot => decode_slot(step, db, p, ctx).await,
        StepId::ForwardStreaming => forward_streaming(step, db, ctx).await,
        StepId::ArmSlot => {
            let lsn = db.value(ctx, id, step.sql(0)?).await?;
            Ok(format!("slot at {}", lsn.unwrap_or_default()))
        }
        StepId::PreparedXacts => {
            let rows = db.run(ctx, id, step.sql(0)?).await?;
            if first_cell(&rows, 0).as_deref() != Some("0") {
                bail!(
                    "prepared transaction(s) on {su}: {}; they would be stranded: COMMIT PREPARED or ROLLBACK PREPARED them first",
                    crate::text::one_line(&first_cell(&rows, 1).unwrap_or_default())
                );
            }
            Ok("none".into())
        }
        StepId::Drain => drain(step, settings, dbs, p, ctx).await,
        StepId::EndForwardWorkers => end_forward_workers(step, db, p, ctx).await,
        StepId::ArmOrigin => arm_origins(dbs, db, p, ctx).await,
        StepId::Sequences | StepId::SequencesAhead => {
            let d = step.db.as_deref();
            copy_sequences(step, dbs.get(dbs.s.side, d)?, dbs.get(dbs.t.side, d)?, ctx).await
        }
        StepId::DropSourceSlot => drop_source_slot(step, db, ctx).await,
        StepId::MarkRollback => {
            let text = format!("{ROLLED_BACK_MARK} at {}", crate::format::now_rfc3339());
            let names = dbs.names(step.db.as_deref())?;
            let mark = sqlgen::comment_subscription(&names.subscription, &text);
            db.run(ctx, id, &mark).await?;
            Ok(text)
        }
        StepId::ReverseStreaming => reverse_streaming(step, db, ctx).await,
        other => bail!("internal: step {other} is not a step of {}", action.name()),
    }
}

/// Wait for the forward apply worker, before anything is fenced.
async fn forward_streaming(step: &Step, db: &Db, ctx: &Ctx<'_>) -> Result<String> {
    let (id, q, tu) = (step.id, step.sql(0)?, db.side.upper());
    let wait = Wait::new(WORKER_START, Duration::from_millis(50));
    while first_cell(&db.run(ctx, id, q).await?, 0).is_none() {
        if !wait.again().await {
            bail!(
                "no forward apply worker on {tu} after {} s; nothing was fenced: read {tu}'s log",
                WORKER_START.as_secs()
            );
        }
    }
    Ok("streaming".into())
}

/// Wait for the worker of the reverse subscription just enabled.
async fn reverse_streaming(step: &Step, db: &Db, ctx: &Ctx<'_>) -> Result<String> {
    let (id, su) = (step.id, db.side.upper());
    let q = step.sql(0)?;
    let wait = Wait::new(WORKER_START_REVERSE, Duration::from_millis(20));
    while first_cell(&db.run(ctx, id, q).await?, 2).as_deref() != Some("1") {
        if !wait.again().await {
            bail!(
                "the reverse subscription is enabled but its apply worker did not start within {} s: read {su}'s log",
                WORKER_START_REVERSE.as_secs()
            );
        }
    }
    Ok("streaming".into())
}

/// End the disabled forward subscriptions' workers, every database's at once, when a slot is to
/// be decoded: a slot can be decoded only once the walsender that serves its worker is gone.
/// Otherwise they are left to end on their own: a worker notices DISABLE within a second, after
/// the window, whereas ending five here spent 14 ms of it on their exits. Left running, a
/// worker writes nothing more: once the target has confirmed the source's last LSN (the drain),
/// all it could still apply is a write made on the source after its fence, and the fence check
/// found none (no transaction ended, none holds an id). DROP SUBSCRIPTION, after the window,
/// waits for them.
async fn end_forward_workers(step: &Step, db: &Db, p: &Progress, ctx: &Ctx<'_>) -> Result<String> {
    match &p.ids {
        None => bail!("internal: the forward workers ended before the fence check"),
        Some(Ids::Quiet(_)) => Ok("not needed: no slot to decode; each ends on its own".into()),
        Some(Ids::Moved(_)) => {
            let ended = db.value(ctx, step.id, step.sql(0)?).await?;
            Ok(format!("{} worker(s) ended", ended.unwrap_or_default()))
        }
    }
}

async fn fence(
    step: &Step,
    settings: &Settings,
    db: &Db,
    p: &mut Progress,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let id = step.id;
    let su = db.side.upper();
    let (nologin, terminate, count) = (step.sql(0)?, step.sql(1)?, step.sql(2)?);
    p.opened = Some(Instant::now());
    p.changed.fenced = true; // set before sending: if the answer is lost, undo must still unfence
    db.run(ctx, id, nologin).await?;
    let wait = Wait::new(settings.cutover.fence_timeout, Duration::from_millis(5));
    let grace_until = Instant::now() + settings.cutover.fence_grace;
    loop {
        // a graceful fence ends idle sessions first; open transactions get the grace to commit
        let end = match step.stmts.get(3) {
            Some(idle) if Instant::now() < grace_until => idle,
            _ => terminate,
        };
        db.run(ctx, id, end).await?;
        let left = db.value(ctx, id, count).await?;
        if left.as_deref() == Some("0") {
            return Ok(format!("{su} fenced"));
        }
        if !wait.again().await {
            bail!(
                "{} app session(s) still on {su} after {} s",
                left.unwrap_or_default(),
                settings.cutover.fence_timeout.as_secs()
            );
        }
    }
}

/// Wait until the source's slot is within the lag limit for the configured run of samples.
async fn lag_gate(step: &Step, settings: &Settings, db: &Db, ctx: &Ctx<'_>) -> Result<String> {
    let c = &settings.cutover;
    let q = step.sql(0)?;
    let wait = Wait::new(c.gate_timeout, c.sample_interval);
    let mut samples: Vec<u64> = Vec::new();
    loop {
        let lag = db.value(ctx, step.id, q).await?;
        let lag = lag
            .as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| eyre!("the slot's lag cannot be read on {}", db.side.upper()))?;
        samples.push(u64::try_from(lag).unwrap_or(0));
        let recent = &samples[samples.len().saturating_sub(c.steady_samples)..];
        if recent.len() == c.steady_samples && recent.iter().all(|b| *b < c.max_lag_bytes) {
            return Ok(format!(
                "lag {recent:?} bytes after {} sample(s)",
                samples.len()
            ));
        }
        if !wait.again().await {
            bail!(
                "the lag stayed at or above {} bytes for {} s (last samples {:?}): retry when the load is lower, \
                 or raise [cutover] max_lag_bytes or gate_timeout_s",
                c.max_lag_bytes,
                c.gate_timeout.as_secs(),
                &samples[samples.len().saturating_sub(5)..]
            );
        }
    }
}

/// Prove that nothing written to the source after the fence is missing on the target, first
/// for every database at once: nothing holds a transaction id, and if no transaction ended
/// since the source's last LSN there is no write to look for. Otherwise each slot is decoded
/// (`decode_slot`).
async fn verify_fence(step: &Step, db: &Db, p: &mut Progress, ctx: &Ctx<'_>) -> Result<String> {
    let su = db.side.upper();
    let row = db.run(ctx, step.id, step.sql(0)?).await?.into_iter().next();
    let cell = |i: usize| row.as_ref().and_then(|r| r.get(i).cloned()).flatten();
    if let Some(holders) = cell(1) {
        bail!(
            "a transaction that holds an id is open on {su} after its fence: {}; what it writes \
             commits after the switch and would be missing on the target. End it \
             (pg_terminate_backend), or add its role to [cutover] app_roles, then retry",
            crate::text::one_line(&holders)
        );
    }
    let xmax = cell(0).and_then(|v| v.parse::<u64>().ok());
    let ids = match (p.source_xids, xmax) {
        (Some(mark), Some(now)) if mark.quiet_until(now) => Ids::Quiet(format!(
            "no transaction ended on {su} since its last LSN (xid {}): no write to look for",
            mark.ours
        )),
        (Some(mark), Some(now)) => Ids::Moved(mark.why_not_quiet(now)),
        _ => Ids::Moved("the transaction ids could not be read".to_string()),
    };
    let detail = match &ids {
        Ids::Quiet(d) => d.clone(),
        Ids::Moved(why) => format!("nothing holds an id; {why}: the slots are decoded"),
    };
    p.ids = Some(ids);
    Ok(detail)
}

/// Decode one database's stopped forward slot for a data change past its drained position,
/// when the fence check found that a transaction ended on the source.
async fn decode_slot(step: &Step, db: &Db, p: &Progress, ctx: &Ctx<'_>) -> Result<String> {
    let why = match &p.ids {
        None => bail!("internal: a slot decoded before the fence check"),
        Some(Ids::Quiet(_)) => return Ok("nothing to decode".into()),
        Some(Ids::Moved(why)) => why,
    };
    let q = step.sql(0)?;
    let wait = Wait::new(WALSENDER_EXIT, Duration::from_millis(5));
    let t0 = Instant::now();
    loop {
        match db.value(ctx, step.id, q).await {
            Ok(n) if n.as_deref() == Some("0") => {
                return Ok(format!(
                    "{why}: the slot decoded, no write after the drain ({:.1} ms)",
                    t0.elapsed().as_secs_f64() * 1000.0
                ));
            }
            Ok(n) => bail!(
                "{} change(s) reached {} after its fence (a role outside [cutover] app_roles, or a session \
                 that survived it): the target lacks them. Find the writer in pg_stat_activity, then retry",
                n.unwrap_or_default(),
                db.side.upper()
            ),
            Err(e) if sqlstate(&e) == Some(&SqlState::OBJECT_IN_USE) && wait.again().await => {}
            Err(e) => return Err(e),
        }
    }
}

/// Wait until the target confirmed, in every replicated database, everything the source wrote
/// before its fence. The databases replicate side by side, so this waits for the slowest, once.
async fn drain(
    step: &Step,
    settings: &Settings,
    dbs: &Conns,
    p: &Progress,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let id = step.id;
    let tu = dbs.t.side.upper();
    let q = step.sql(0)?;
    let wanted = dbs.scopes.len();
    let source_lsn = p
        .source_lsn
        .ok_or_else(|| eyre!("internal: drain before the source LSN was read"))?;
    let mut inactive_since: Option<Instant> = None;
    let wait = Wait::new(settings.cutover.drain_timeout, Duration::from_millis(2));
    loop {
        let rows = dbs.s.run(ctx, id, q).await?;
        if rows.len() < wanted {
            bail!(
                "{} of the {wanted} forward slots are on {}: a slot was dropped; nothing was switched",
                rows.len(),
                dbs.s.side.upper()
            );
        }
        // least advanced first
        let confirmed = parse_lsn(first_cell(&rows, 0), "confirmed_flush_lsn")?;
        let slot = first_cell(&rows, 2).unwrap_or_default();
        if confirmed >= source_lsn {
            return Ok(format!("{tu} has everything up to {source_lsn}"));
        }
        // A target that went away shows as an inactive slot (or a dead connection to it).
        if first_cell(&rows, 1).as_deref() == Some("f") {
            let since = *inactive_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(3) || dbs.t.is_closed() {
                bail!(
                    "{tu} stopped receiving (slot {} inactive) at {confirmed}, {} bytes short of {source_lsn}",
                    ident(&slot),
                    source_lsn.bytes_since(confirmed)
                );
            }
        } else {
            inactive_since = None;
        }
        if !wait.again().await {
            bail!(
                "{tu} confirmed only {confirmed} of {source_lsn} on slot {} within {} s ({} bytes behind)",
                ident(&slot),
                settings.cutover.drain_timeout.as_secs(),
                source_lsn.bytes_since(confirmed)
            );
        }
    }
}

/// Start every reverse subscription's origin at the target's LSN, and read them back: one
/// statement from the source's main connection, whatever the number of databases.
async fn arm_origins(dbs: &Conns, db: &Db, p: &Progress, ctx: &Ctx<'_>) -> Result<String> {
    let su = db.side.upper();
    let target_lsn = p
        .target_lsn
        .ok_or_else(|| eyre!("internal: origin armed before the target LSN was read"))?;
    let subs: Vec<(&str, Option<&str>)> = dbs.scopes.iter().map(Scope::subscription).collect();
    let rows = db
        .run(
            ctx,
            StepId::ArmOrigin,
            &sqlgen::subscription_origins_set(&subs, target_lsn),
        )
        .await?;
    // the second statement's rows: each subscription, its origin and where it now stands
    let read: Vec<[Option<String>; 3]> = rows
        .into_iter()
        .filter_map(|r| <[Option<String>; 3]>::try_from(r).ok())
        .collect();
    let mut armed = Vec::new();
    for (sub, d) in &subs {
        let prefix = crate::domain::names::db_prefix(*d);
        let Some([_, origin, at]) = read.iter().find(|r| r[0].as_deref() == Some(*sub)) else {
            bail!(
                "{prefix}the reverse subscription {} is missing on {su}",
                ident(sub)
            );
        };
        let at = parse_lsn(at.clone(), "origin")?;
        if at != target_lsn {
            bail!("{prefix}the reverse origin reads {at} after advancing it to {target_lsn}");
        }
        armed.push(format!("{prefix}{}", origin.clone().unwrap_or_default()));
    }
    Ok(format!("{} at {target_lsn}", armed.join(", ")))
}

/// Copy the source's sequences to the target: one statement lists and reads them (past the
/// first batch, more statements read the rest), one more per batch sets them.
async fn copy_sequences(step: &Step, s: &Db, t: &Db, ctx: &Ctx<'_>) -> Result<String> {
    let id = step.id;
    let list = s.run(ctx, id, step.sql(0)?).await?;
    let mut values: Vec<(QualName, i64)> = Vec::new();
    let mut unread = std::collections::HashMap::new();
    let mut unreadable = 0;
    for r in &list {
        let cell = |i: usize| r.get(i).cloned().flatten();
        let (Some(oid), Some(schema), Some(name)) = (cell(0), cell(1), cell(2)) else {
            continue;
        };
        let oid: i64 = oid.parse().map_err(|_| eyre!("bad sequence oid {oid}"))?;
        let name = QualName { schema, name };
        match (cell(3).as_deref(), cell(4).as_deref(), cell(5)) {
            (Some("t"), Some("t"), Some(v)) => {
                values.push((
                    name,
                    v.parse().map_err(|_| eyre!("bad sequence value {v}"))?,
                ));
            }
            // never called: nothing to copy
            (Some("t"), Some("t"), None) => {}
            (Some("t"), _, _) => {
                unread.insert(oid, name);
            }
            _ => unreadable += 1,
        }
    }
    if unreadable > 0 {
        bail!(
            "{unreadable} sequence(s) on the source cannot be read by this role: grant SELECT on them or connect as their owner"
        );
    }
    let total = list.len();
    let mut oids: Vec<i64> = unread.keys().copied().collect();
    oids.sort_unstable();
    for batch in oids.chunks(queries::SEQUENCE_BATCH) {
        let rows = s.run(ctx, id, &sqlgen::sequence_values(batch)).await?;
        values.extend(rows.iter().filter_map(|r| {
            let oid: i64 = r.first()?.as_deref()?.parse().ok()?;
            let v: i64 = r.get(1)?.as_deref()?.parse().ok()?; // never called: nothing to copy
            Some((unread.get(&oid)?.clone(), v))
        }));
    }
    let mut set = 0u64;
    for batch in values.chunks(queries::SEQUENCE_BATCH) {
        let n = t.value(ctx, id, &sqlgen::setval_batch(batch)).await?;
        set += n.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    let missing = values.len() as u64 - set.min(values.len() as u64);
    if missing > 0 {
        ctx.note(format!(
            "{missing} sequence(s) of the source do not exist on the target (see the schema diff)"
        ))?;
    }
    Ok(format!("{set} of {total} sequence(s) set"))
}

/// Drop the forward slot, retrying while its walsender is still attached to it.
async fn drop_source_slot(step: &Step, db: &Db, ctx: &Ctx<'_>) -> Result<String> {
    let (id, drop) = (step.id, step.sql(0)?);
    let wait = Wait::new(WALSENDER_EXIT, Duration::from_millis(20));
    loop {
        match db.run(ctx, id, drop).await {
            Ok(_) => return Ok("dropped".into()),
            Err(e) if sqlstate(&e) == Some(&SqlState::OBJECT_IN_USE) => {
                if !wait.again().await {
                    return Err(e.wrap_err(format!(
                        "the forward slot was still in use after {} s",
                        WALSENDER_EXIT.as_secs()
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
}
