//! Before a switch: does the target's subscription have every table the source publishes? Read
//! on both sides of every replicated database as the action is planned: the dashboard reads the
//! two lists only with the catalogue (they are as long as the schema), which may be minutes old.

use std::time::Duration;

use color_eyre::eyre::{Result, eyre};

use super::scope::Scope;
use crate::collect::connect::connect;
use crate::collect::postgres::{published_tables, subscribed_tables};
use crate::domain::guards::{Guard, tables_subscribed};
use crate::domain::observed::Side;

/// One guard per replicated database whose target holds the subscription (a switch past the
/// point where it was dropped has nothing to compare).
pub async fn guards(scopes: &[Scope], source: Side, target: Side) -> Vec<Guard> {
    futures_util::future::join_all(scopes.iter().map(|sc| one(sc, source, target)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn one(sc: &Scope, source: Side, target: Side) -> Option<Guard> {
    let names = &sc.settings.names;
    let timeout = sc.settings.poll.timeout.max(Duration::from_secs(5));
    let read = async {
        let (s, t) = tokio::join!(
            connect(sc.settings.side(source), timeout),
            connect(sc.settings.side(target), timeout)
        );
        let (s, t) = (s?, t?);
        let (published, subscribed) = tokio::join!(
            published_tables(&s, &names.publication),
            subscribed_tables(&t, &names.subscription)
        );
        Ok::<_, color_eyre::Report>((published?, subscribed?))
    };
    let read: Result<_> = tokio::time::timeout(timeout * 2, read)
        .await
        .unwrap_or_else(|_| Err(eyre!("no answer within {} s", (timeout * 2).as_secs())));
    let prefix = crate::domain::names::db_prefix(sc.db.as_deref());
    match read {
        Ok((_, None)) => None,
        Ok((published, Some(subscribed))) => Some(tables_subscribed(
            sc.db.as_deref(),
            source,
            target,
            &names.subscription,
            &published,
            &subscribed,
        )),
        Err(e) => Some(Guard {
            name: "tables_subscribed",
            ok: false,
            detail: format!(
                "{prefix}the published and subscribed tables could not be read: {}",
                crate::format::report_chain(&e)
            ),
        }),
    }
}
