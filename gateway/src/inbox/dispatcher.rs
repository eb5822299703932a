//! The dispatcher: claims due items from the inbox in batches and runs their flows, up to
//! `INBOX_CONCURRENCY` at a time, starting the next as soon as one finishes (a new webhook wakes
//! it; a poll is the backstop for retries coming due). Woken from idle, or having caught up (a
//! claim found fewer items than it asked for), it claims after `INBOX_BATCH_WINDOW_MS`, so the
//! webhooks of that moment share each service's commits; with more waiting, it claims at once.
//! While flows run, their leases are renewed as they near their end; each result is settled
//! only while this dispatcher's claim still stands. A failed attempt is retried with
//! exponential backoff and jitter; after the configured number of attempts, or on an error no
//! retry can fix, the item is dead-lettered for a human to look at and replay. A flow that
//! panics is caught, counted as a failed attempt, and dead-lettered with the panic message
//! when out of attempts. A crash mid-attempt leaves the item claimed until its lease runs out,
//! then any dispatcher (this one restarted, or another replica) takes it over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Claim, Inbox, InboxRow, InboxState};
use crate::config::InboxConfig;
use crate::flows::{FlowError, Flows, Handled};

/// What the dispatcher runs for an item: the gateway's flows (a seam for tests).
pub trait RunFlow: Send + Sync + 'static {
    fn run_flow<'a>(
        &'a self,
        row: &'a InboxRow,
    ) -> impl Future<Output = Result<Handled, FlowError>> + Send + 'a;
}

impl RunFlow for Flows {
    fn run_flow<'a>(
        &'a self,
        row: &'a InboxRow,
    ) -> impl Future<Output = Result<Handled, FlowError>> + Send + 'a {
        self.run(row)
    }
}

/// Most items one claim takes.
const CLAIM_BATCH: usize = 256;
/// How long shutdown waits for running flows before leaving them to the lease.
const DRAIN: Duration = Duration::from_secs(30);

pub async fn run<F: RunFlow>(
    inbox: Inbox,
    flows: Arc<F>,
    config: InboxConfig,
    shutdown: CancellationToken,
) {
    let owner = format!("dispatcher-{}", uuid::Uuid::new_v4().simple());
    let concurrency = config.concurrency.max(1);
    tracing::info!(%owner, concurrency, "inbox dispatcher started");
    let slots = Arc::new(Semaphore::new(concurrency));
    let held: Held = Arc::default();
    let renewing = tokio::spawn(renew_leases(
        inbox.clone(),
        owner.clone(),
        held.clone(),
        config.lease,
    ));
    let pruning = tokio::spawn(prune(inbox.clone(), config.retention, shutdown.clone()));
    loop {
        let first = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let wanted = (1 + slots.available_permits()).min(CLAIM_BATCH);
        // Before the claim: its lease starts no earlier than this.
        let leased_at = Instant::now();
        let claimed = match inbox.claim_due(&owner, wanted as u64, config.lease).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(%error, "cannot claim inbox items");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            drop(first);
            tokio::select! {
                _ = inbox.committed.notified() => {
                    // Idle until now: what else arrives in the window is claimed with it.
                    tokio::select! {
                        _ = tokio::time::sleep(config.batch_window) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        if let Ok(mut held) = held.lock() {
            held.extend(claimed.iter().map(|row| (row.id, leased_at)));
        }
        // Fewer than asked for: nothing else is waiting, so what arrives next is gathered for
        // a window, as from idle, rather than claimed a few at a time as it comes.
        let caught_up = claimed.len() < wanted;
        let mut first = Some(first);
        for row in claimed {
            // This loop is the only one taking slots, and it counted them: one is free.
            let slot = match first.take() {
                Some(slot) => slot,
                None => match slots.clone().try_acquire_owned() {
                    Ok(slot) => slot,
                    Err(_) => match slots.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                },
            };
            let (inbox, flows, config, owner, held) = (
                inbox.clone(),
                flows.clone(),
                config.clone(),
                owner.clone(),
                held.clone(),
            );
            tokio::spawn(async move {
                let id = row.id;
                attempt(&inbox, flows.as_ref(), &config, &owner, row).await;
                if let Ok(mut held) = held.lock() {
                    held.remove(&id);
                }
                drop(slot);
            });
        }
        if caught_up {
            tokio::select! {
                _ = tokio::time::sleep(config.batch_window) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }
    // Let running flows finish (their leases still renewed), then stop.
    let drained = tokio::time::timeout(DRAIN, slots.acquire_many(concurrency as u32)).await;
    if drained.is_err() {
        tracing::warn!(
            "inbox dispatcher stopped with flows still running; their leases will run out"
        );
    }
    renewing.abort();
    pruning.abort();
    tracing::info!("inbox dispatcher stopped");
}

/// The items this dispatcher holds, each with when its lease last started (at the latest).
type Held = Arc<Mutex<HashMap<i64, Instant>>>;

/// Keeps the leases of the items this dispatcher holds, looking a quarter of a lease apart, so
/// a flow that outlives one lease is not taken over while it still runs. An item whose lease
/// started less than half a look ago keeps it until the next look, when it still has over
/// five eighths of it left (renewing every item at every look a third of a lease apart left
/// two thirds): renewing them all rewrote (and locked) the row of each item in flight, most of
/// them claimed moments before and done long before their lease ran out.
async fn renew_leases(inbox: Inbox, owner: String, held: Held, lease: Duration) {
    let every = (lease / 4).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let ids = Instant::now()
            .checked_sub(every / 2)
            .map_or_else(Vec::new, |when| leased_before(&held, when));
        for chunk in ids.chunks(500) {
            let renewed_at = Instant::now();
            match inbox.renew(&owner, chunk, lease).await {
                Ok(_) => {
                    if let Ok(mut held) = held.lock() {
                        for id in chunk {
                            if let Some(leased_at) = held.get_mut(id) {
                                *leased_at = renewed_at;
                            }
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "cannot renew inbox leases"),
            }
        }
    }
}

/// The held items whose lease started at or before `when`.
fn leased_before(held: &Held, when: Instant) -> Vec<i64> {
    match held.lock() {
        Ok(held) => held
            .iter()
            .filter(|(_, leased_at)| **leased_at <= when)
            .map(|(id, _)| *id)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Deletes finished items older than the retention, once an hour.
async fn prune(inbox: Inbox, retention: Duration, shutdown: CancellationToken) {
    loop {
        let before = Utc::now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
        match inbox.prune(before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned finished inbox items"),
            Err(error) => tracing::error!(%error, "cannot prune the inbox"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn attempt<F: RunFlow>(
    inbox: &Inbox,
    flows: &F,
    config: &InboxConfig,
    owner: &str,
    row: InboxRow,
) {
    let claim = Claim {
        owner: owner.to_owned(),
        attempt: row.attempts,
    };
    let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
    let span = tracing::info_span!("inbox_item", item = row.id, event_type = %row.event_type, event_key = %row.idempotency_key, attempt = attempts, trace_id = tracing::field::Empty);
    // The flow joins the trace of the webhook that brought it.
    callmesh_runtime::telemetry::continue_trace(&span, Some(&row.trace_parent));
    let run = std::panic::AssertUnwindSafe(flows.run_flow(&row)).catch_unwind();
    let outcome = match tracing::Instrument::instrument(run, span.clone()).await {
        Ok(outcome) => outcome,
        Err(panic) => Err(FlowError::Retryable(format!(
            "the flow panicked: {}",
            panic_message(panic.as_ref())
        ))),
    };
    // Settled in the item's span (instrumented, not entered: the guard would outlive awaits).
    tracing::Instrument::instrument(
        settle(inbox, config, &claim, row.id, attempts, outcome),
        span,
    )
    .await;
}

/// Records an attempt's outcome: done, ignored, dead-lettered or retried later.
async fn settle(
    inbox: &Inbox,
    config: &InboxConfig,
    claim: &Claim,
    id: i64,
    attempts: u32,
    outcome: Result<Handled, FlowError>,
) {
    let now = Utc::now();
    let counted = match &outcome {
        Ok(Handled::Done) => "done",
        Ok(Handled::Ignored(_)) => "ignored",
        Err(FlowError::Permanent(_)) => "dead",
        Err(FlowError::Retryable(_)) if attempts >= config.max_attempts => "dead",
        Err(FlowError::Retryable(_)) => "retry",
    };
    metrics::counter!("callmesh_inbox_attempts_total", "outcome" => counted).increment(1);
    if counted == "dead" {
        metrics::counter!("callmesh_inbox_dead_letters_total").increment(1);
    }
    let settled = match outcome {
        Ok(Handled::Done) => {
            tracing::debug!("inbox item processed");
            inbox.settle(id, claim, InboxState::Done, "", now).await
        }
        Ok(Handled::Ignored(reason)) => {
            tracing::info!(%reason, "inbox item ignored");
            inbox
                .settle(id, claim, InboxState::Ignored, &reason, now)
                .await
        }
        Err(FlowError::Permanent(error)) => {
            tracing::error!(%error, "inbox item failed for good; dead-lettered");
            inbox.settle(id, claim, InboxState::Dead, &error, now).await
        }
        Err(FlowError::Retryable(error)) if attempts >= config.max_attempts => {
            tracing::error!(%error, "inbox item out of attempts; dead-lettered");
            inbox.settle(id, claim, InboxState::Dead, &error, now).await
        }
        Err(FlowError::Retryable(error)) => {
            let delay = retry_delay(config, attempts);
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "inbox item will be retried");
            let next =
                now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(60));
            inbox
                .settle(id, claim, InboxState::Pending, &error, next)
                .await
        }
    };
    match settled {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("inbox item was taken over by another dispatcher; its result stands")
        }
        // The lease runs out and the item is attempted again: at least once, never lost.
        Err(error) => tracing::error!(%error, "cannot record the inbox item's outcome"),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
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
            batch_window: Duration::ZERO,
            concurrency: 1,
            retention: Duration::from_secs(86_400),
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
