//! Live fan-out inside one gateway: one upstream notification `Subscribe` stream per
//! organization with SSE clients here, shared by all of them through a bounded broadcast, instead
//! of one gRPC stream per browser.
//!
//! Each event is rendered once, on the way in. A client joins the broadcast first and only then
//! replays what it missed (`Last-Event-ID`) from the log with `ListEvents`, page by page, until a
//! short page; from there on the broadcast carries it. Replay and broadcast may overlap; ids only
//! grow, so anything at or below the last id sent is dropped: no gap, no duplicate. A client too
//! slow for the broadcast's buffer does not hold anyone up: it falls behind, and catches up from
//! the log the same way. Conversation streams share their organization's feed and keep only their
//! lead's events.
//!
//! A feed lives as long as one client holds it. If its upstream stream breaks (notification
//! restarting), it subscribes again after the last id it saw, so connected clients see nothing
//! but a delay.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::response::sse::Event;
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use callmesh_proto::notification::v1 as pb;
use callmesh_proto::notification::v1::notification_service_client::NotificationServiceClient;
use callmesh_runtime::auth::MeshChannel;

/// Events a feed holds for its slowest client before that client has to catch up from the log.
const BUFFER: usize = 1024;
/// Events per `ListEvents` page while a client catches up.
const PAGE: i32 = 500;
/// Wait before subscribing again after the upstream stream broke.
const RESUBSCRIBE: Duration = Duration::from_millis(500);

type Notification = NotificationServiceClient<MeshChannel>;

/// Every feed of this gateway, by organization.
#[derive(Clone)]
pub struct LiveHub {
    notification: Notification,
    feeds: Arc<Mutex<HashMap<String, Weak<Feed>>>>,
    shutdown: CancellationToken,
}

/// One organization's upstream stream and the broadcast its clients read.
struct Feed {
    events: broadcast::Sender<Arc<LiveEvent>>,
    /// Whether the first upstream subscription is up (`Some(Ok)`), failed, or pending.
    ready: watch::Receiver<Option<Result<(), tonic::Status>>>,
    _stop: DropGuard,
}

struct LiveEvent {
    id: u64,
    lead_id: String,
    sse: Event,
}

impl LiveHub {
    pub fn new(notification: Notification, shutdown: CancellationToken) -> Self {
        LiveHub {
            notification,
            feeds: Arc::default(),
            shutdown,
        }
    }

    /// Organization feeds open now (for metrics and tests).
    pub fn feeds(&self) -> usize {
        self.feeds
            .lock()
            .map(|feeds| feeds.values().filter(|f| f.strong_count() > 0).count())
            .unwrap_or(0)
    }

    /// The SSE events of `organization_id` (only `lead_id`'s when it is not empty) after event
    /// `after` (0: from now on). Fails as `Subscribe` would when no upstream stream can be had.
    pub async fn subscribe(
        &self,
        organization_id: &str,
        lead_id: &str,
        after: u64,
    ) -> Result<impl Stream<Item = Event> + Send + 'static + use<>, tonic::Status> {
        let feed = self.feed(organization_id);
        let mut ready = feed.ready.clone();
        let outcome = ready
            .wait_for(Option::is_some)
            .await
            .map_err(|_| tonic::Status::unavailable("live feed stopped"))?
            .clone();
        if let Some(Err(status)) = outcome {
            // Forget the failed feed, so the next client tries afresh.
            self.forget(organization_id, &feed);
            return Err(status);
        }
        // Join the broadcast before reading the log: whatever is published from here on is in
        // one or the other (or both).
        let events = feed.events.subscribe();
        let client = Client {
            notification: self.notification.clone(),
            organization_id: organization_id.to_owned(),
            lead_id: lead_id.to_owned(),
            last: after,
            pending: VecDeque::new(),
            catch_up: (after > 0).then_some(after),
            first_replay: after > 0,
            events,
            _feed: feed,
            _counted: callmesh_runtime::metrics::LiveSubscriber::new("sse"),
        };
        let stream = futures_util::stream::unfold(client, |mut client| async move {
            client.next().await.map(|event| (event, client))
        });
        Ok(stream.take_until(self.shutdown.clone().cancelled_owned()))
    }

    fn feed(&self, organization_id: &str) -> Arc<Feed> {
        let Ok(mut feeds) = self.feeds.lock() else {
            // A poisoned map only means a panic elsewhere; a feed of one's own still works.
            return self.start(organization_id);
        };
        if let Some(feed) = feeds.get(organization_id).and_then(Weak::upgrade) {
            return feed;
        }
        feeds.retain(|_, feed| feed.strong_count() > 0);
        let feed = self.start(organization_id);
        feeds.insert(organization_id.to_owned(), Arc::downgrade(&feed));
        feed
    }

    fn forget(&self, organization_id: &str, failed: &Arc<Feed>) {
        if let Ok(mut feeds) = self.feeds.lock()
            && feeds
                .get(organization_id)
                .is_some_and(|f| std::ptr::eq(f.as_ptr(), Arc::as_ptr(failed)))
        {
            feeds.remove(organization_id);
        }
    }

    fn start(&self, organization_id: &str) -> Arc<Feed> {
        let (events, _) = broadcast::channel(BUFFER);
        let (ready_tx, ready) = watch::channel(None);
        let stop = self.shutdown.child_token();
        let upstream = Upstream {
            notification: self.notification.clone(),
            organization_id: organization_id.to_owned(),
            events: events.clone(),
            last: AtomicU64::new(0),
        };
        let until = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = upstream.run(ready_tx) => {}
                _ = until.cancelled() => {}
            }
        });
        Arc::new(Feed {
            events,
            ready,
            _stop: stop.drop_guard(),
        })
    }
}

/// The task that reads one organization's upstream stream into its broadcast.
struct Upstream {
    notification: Notification,
    organization_id: String,
    events: broadcast::Sender<Arc<LiveEvent>>,
    last: AtomicU64,
}

impl Upstream {
    async fn run(self, ready: watch::Sender<Option<Result<(), tonic::Status>>>) {
        let mut connected_once = false;
        loop {
            let request = pb::SubscribeRequest {
                filter: Some(pb::EventFilter {
                    organization_id: self.organization_id.clone(),
                    ..Default::default()
                }),
                // Live only the first time; after a break, from the last event seen.
                after_event_id: self.last.load(Ordering::Relaxed),
            };
            match self.notification.clone().subscribe(request).await {
                Ok(stream) => {
                    if !connected_once {
                        connected_once = true;
                        ready.send_replace(Some(Ok(())));
                    }
                    self.forward(stream.into_inner()).await;
                }
                Err(status) if !connected_once => {
                    ready.send_replace(Some(Err(status)));
                    return;
                }
                Err(status) => {
                    tracing::info!(organization_id = %self.organization_id, code = ?status.code(), "live feed cannot resubscribe yet");
                }
            }
            tokio::time::sleep(RESUBSCRIBE).await;
        }
    }

    async fn forward(&self, mut stream: tonic::Streaming<pb::SubscribeResponse>) {
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(pb::SubscribeResponse {
                    item: Some(pb::subscribe_response::Item::Event(event)),
                }) => event,
                // A reset answers a resume from before the log's start; the feed resumes only
                // from ids it saw moments ago, so there is nothing to tell its clients.
                Ok(_) => continue,
                Err(status) => {
                    tracing::info!(organization_id = %self.organization_id, code = ?status.code(), message = status.message(), "live feed upstream ended; resubscribing");
                    return;
                }
            };
            if event.id <= self.last.load(Ordering::Relaxed) {
                continue;
            }
            self.last.store(event.id, Ordering::Relaxed);
            let live = LiveEvent {
                id: event.id,
                lead_id: event.lead_id.clone(),
                sse: render(&event),
            };
            // No receiver is not an error: the last client may just have left.
            let _ = self.events.send(Arc::new(live));
        }
    }
}

/// One SSE client: replayed events first, then the shared feed, each id at most once.
struct Client {
    notification: Notification,
    organization_id: String,
    lead_id: String,
    /// The last id sent to this client (or the one it resumed from).
    last: u64,
    pending: VecDeque<pb::Event>,
    /// Read the log after this id before taking from the broadcast again.
    catch_up: Option<u64>,
    /// The first replay (of a `Last-Event-ID`) says `reset` when the log no longer reaches back.
    first_replay: bool,
    events: broadcast::Receiver<Arc<LiveEvent>>,
    /// Holds the feed open while this client is connected.
    _feed: Arc<Feed>,
    _counted: callmesh_runtime::metrics::LiveSubscriber,
}

impl Client {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.id > self.last {
                    self.last = event.id;
                    return Some(render(&event));
                }
                continue;
            }
            if let Some(after) = self.catch_up.take() {
                match self.replay(after).await {
                    Ok(Some(reset)) => return Some(reset),
                    Ok(None) => continue,
                    Err(status) => {
                        // The client reconnects with its last id and tries again.
                        tracing::info!(code = ?status.code(), "live stream could not catch up");
                        return None;
                    }
                }
            }
            match self.events.recv().await {
                Ok(live) => {
                    if live.id <= self.last
                        || (!self.lead_id.is_empty() && live.lead_id != self.lead_id)
                    {
                        continue;
                    }
                    self.last = live.id;
                    return Some(live.sse.clone());
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up = Some(self.last),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Reads one page of the log after `after` into `pending` (and asks for the next page when
    /// this one was full). Answers the `reset` event the first replay may need.
    async fn replay(&mut self, after: u64) -> Result<Option<Event>, tonic::Status> {
        let request = pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                organization_id: self.organization_id.clone(),
                lead_id: self.lead_id.clone(),
                types: Vec::new(),
            }),
            after_event_id: after,
            limit: PAGE,
            occurred_since: None,
            newest_first: false,
        };
        let answer = self
            .notification
            .clone()
            .list_events(request)
            .await?
            .into_inner();
        if answer.events.len() == PAGE as usize {
            self.catch_up = answer.events.last().map(|e| e.id);
        }
        self.pending.extend(answer.events);
        let first = std::mem::take(&mut self.first_replay);
        if first && answer.oldest_available_id > after + 1 {
            let data = json!({"oldest_available_id": answer.oldest_available_id,
                              "reason": "events after your last id are no longer kept; reload"});
            return Ok(Some(Event::default().event("reset").data(data.to_string())));
        }
        Ok(None)
    }
}

/// An event as SSE: `id:`, the type as `event:`, and the event as JSON `data:`.
pub fn render(event: &pb::Event) -> Event {
    let name = event_name(event.r#type);
    let payload: Value = serde_json::from_str(&event.payload_json).unwrap_or(Value::Null);
    let data = json!({
        "id": event.id,
        "type": name,
        "organization_id": event.organization_id,
        "lead_id": event.lead_id,
        "occurred_at": event.occurred_at.map(|t| t.seconds),
        "payload": payload,
    });
    Event::default()
        .id(event.id.to_string())
        .event(name)
        .data(data.to_string())
}

/// `call_ended`, `sms_received`, ...: the SSE event name of an event type.
pub fn event_name(kind: i32) -> String {
    pb::EventType::try_from(kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("EVENT_TYPE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "event".to_owned())
}
