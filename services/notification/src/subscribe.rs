//! `Subscribe`: replay from the log after the subscriber's last-seen id, then live events, with
//! no gap and no duplicate between the two. Each subscriber has a bounded outbox. The replay
//! waits for room in it (the log is read batch by batch as the subscriber reads), and a
//! subscriber that falls behind the live feed catches up from the log again; only one that
//! stops reading altogether is cut off with RESOURCE_EXHAUSTED (and resumes from its last id).
//! Publishers never wait for subscribers.

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::log::{Event, EventFilter, EventLog};

/// What a subscriber is sent.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Event),
    /// The subscriber's last-seen id is older than the log keeps: it missed events and should
    /// reload its state.
    Reset {
        oldest_available_id: u64,
    },
}

/// Events a subscriber's connection may hold before it counts as too slow.
pub const OUTBOX: usize = 256;
const REPLAY_BATCH: u64 = 500;
/// How long a replay waits for a subscriber to make room before it counts as stalled.
const STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts feeding one subscriber; the returned receiver is its stream.
pub fn subscribe(
    log: EventLog,
    filter: EventFilter,
    after: u64,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Result<Delivery, Status>> {
    let (outbox, stream) = mpsc::channel(OUTBOX);
    // Listen before replaying, so nothing published during the replay is missed.
    let live = log.live();
    tokio::spawn(async move {
        let _counted = callmesh_runtime::metrics::LiveSubscriber::new("grpc");
        let outcome = tokio::select! {
            outcome = feed(&log, &filter, after, live, &outbox) => outcome,
            // The server is stopping: end the stream so the client reconnects elsewhere.
            _ = shutdown.cancelled() => Err(Status::unavailable("server shutting down; resume from your last event id")),
        };
        if let Err(status) = outcome {
            // The error follows whatever is still queued; a client that never reads again is
            // given up on after a while.
            let _ = tokio::time::timeout(GIVE_UP, outbox.send(Err(status))).await;
        }
    });
    stream
}

/// How long a cut-off subscriber's final status waits to be read.
const GIVE_UP: std::time::Duration = std::time::Duration::from_secs(60);

async fn feed(
    log: &EventLog,
    filter: &EventFilter,
    after: u64,
    mut live: broadcast::Receiver<Event>,
    outbox: &mpsc::Sender<Result<Delivery, Status>>,
) -> Result<(), Status> {
    let mut last = after;
    if after > 0 {
        let oldest = log.oldest_id().await.map_err(Status::from)?;
        if oldest > after + 1 {
            push(
                outbox,
                Delivery::Reset {
                    oldest_available_id: oldest,
                },
            )?;
        }
        last = replay(log, filter, last, outbox).await?;
    }
    loop {
        tokio::select! {
            _ = outbox.closed() => return Ok(()),
            received = live.recv() => match received {
                Ok(event) => {
                    // Already sent during the replay, or not this subscriber's.
                    if event.id <= last || !filter.matches(&event) {
                        continue;
                    }
                    last = event.id;
                    push(outbox, Delivery::Event(event))?;
                }
                // Behind the live feed: what it missed is in the log.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    last = replay(log, filter, last, outbox).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }
}

/// Sends the logged events after `last`, a batch at a time, each waiting for room in the
/// outbox; answers the last id sent.
async fn replay(
    log: &EventLog,
    filter: &EventFilter,
    mut last: u64,
    outbox: &mpsc::Sender<Result<Delivery, Status>>,
) -> Result<u64, Status> {
    loop {
        let batch = log
            .list(filter, last, REPLAY_BATCH)
            .await
            .map_err(Status::from)?;
        let done = (batch.len() as u64) < REPLAY_BATCH;
        for event in batch {
            last = event.id;
            match tokio::time::timeout(STALL, outbox.send(Ok(Delivery::Event(event)))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Status::cancelled("subscriber gone")),
                Err(_) => return Err(too_slow(last, "stalled during the replay")),
            }
        }
        if done {
            return Ok(last);
        }
    }
}

fn push(outbox: &mpsc::Sender<Result<Delivery, Status>>, delivery: Delivery) -> Result<(), Status> {
    match outbox.try_send(Ok(delivery)) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(_)) => Err(too_slow(0, "outbox full")),
        // The subscriber went away: nothing left to do.
        Err(mpsc::error::TrySendError::Closed(_)) => Err(Status::cancelled("subscriber gone")),
    }
}

fn too_slow(last: u64, detail: &str) -> Status {
    tracing::warn!(last_event_id = last, detail, "subscriber too slow; cut off");
    metrics::counter!("callmesh_live_subscribers_cut_off_total", "transport" => "grpc")
        .increment(1);
    Status::resource_exhausted(format!(
        "subscriber too slow ({detail}); resume from your last event id"
    ))
}
