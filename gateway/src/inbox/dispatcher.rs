//! The dispatcher: takes due items from the inbox and runs their flows, a few at a time. A
//! failed attempt is retried with exponential backoff and jitter; after the configured number
//! of attempts, or on an error no retry can fix, the item is dead-lettered for a human to look
//! at and replay. A crash mid-attempt leaves the item claimed until its lease runs out, then
//! another dispatcher (or this one, restarted) takes it over.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Inbox, InboxRow, InboxState};
use crate::config::InboxConfig;
use crate::flows::{FlowError, Flows, Handled};

pub async fn run(
    inbox: Inbox,
    flows: Arc<Flows>,
    config: InboxConfig,
    shutdown: CancellationToken,
) {
    tracing::info!("inbox dispatcher started");
    loop {
        let due = match inbox.due(64).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "cannot read the inbox");
                Vec::new()
            }
        };
        let worked = !due.is_empty();
        futures_util::stream::iter(due)
            .for_each_concurrent(config.concurrency.max(1), |row| {
                let inbox = inbox.clone();
                let flows = flows.clone();
                let config = config.clone();
                async move { attempt(&inbox, &flows, &config, row).await }
            })
            .await;
        if shutdown.is_cancelled() {
            break;
        }
        if !worked {
            tokio::select! {
                _ = inbox.committed.notified() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }
    tracing::info!("inbox dispatcher stopped");
}

async fn attempt(inbox: &Inbox, flows: &Flows, config: &InboxConfig, row: InboxRow) {
    match inbox.claim(&row, config.lease).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::error!(%error, item = row.id, "cannot claim inbox item");
            return;
        }
    }
    let attempts = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
    let span = tracing::info_span!("inbox_item", item = row.id, event_type = %row.event_type, event_key = %row.idempotency_key, attempt = attempts);
    let outcome = tracing::Instrument::instrument(flows.run(&row), span.clone()).await;
    let _entered = span.enter();
    let now = Utc::now();
    let settled = match outcome {
        Ok(Handled::Done) => {
            tracing::info!("inbox item processed");
            inbox.settle(row.id, InboxState::Done, "", now).await
        }
        Ok(Handled::Ignored(reason)) => {
            tracing::info!(%reason, "inbox item ignored");
            inbox
                .settle(row.id, InboxState::Ignored, &reason, now)
                .await
        }
        Err(FlowError::Permanent(error)) => {
            tracing::error!(%error, "inbox item failed for good; dead-lettered");
            inbox.settle(row.id, InboxState::Dead, &error, now).await
        }
        Err(FlowError::Retryable(error)) if attempts >= config.max_attempts => {
            tracing::error!(%error, "inbox item out of attempts; dead-lettered");
            inbox.settle(row.id, InboxState::Dead, &error, now).await
        }
        Err(FlowError::Retryable(error)) => {
            let delay = retry_delay(config, attempts);
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "inbox item will be retried");
            let next =
                now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(60));
            inbox
                .settle(row.id, InboxState::Pending, &error, next)
                .await
        }
    };
    if let Err(error) = settled {
        // The lease runs out and the item is attempted again: at least once, never lost.
        tracing::error!(%error, "cannot record the inbox item's outcome");
    }
}

/// Exponential backoff with jitter: base, 2x base, 4x base... capped at the maximum.
pub fn retry_delay(config: &InboxConfig, attempts: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(config.base_delay)
        .with_max_delay(config.max_delay)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(attempts as usize + 1)
        .build()
        .nth(attempts.saturating_sub(1) as usize)
        .unwrap_or(config.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let config = InboxConfig {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            lease: Duration::from_secs(1),
            poll_interval: Duration::from_secs(1),
            concurrency: 1,
        };
        let first = retry_delay(&config, 1);
        assert!(
            first >= Duration::from_millis(100) && first <= Duration::from_millis(200),
            "{first:?}"
        );
        let fourth = retry_delay(&config, 4);
        assert!(fourth >= Duration::from_millis(800), "{fourth:?}");
        let late = retry_delay(&config, 30);
        assert!(
            late <= Duration::from_secs(4),
            "capped (plus jitter): {late:?}"
        );
    }
}
