//! The gateway's live fan-out against a fake notification service on loopback that counts its
//! `Subscribe` streams: one upstream stream per organization whatever the number of clients,
//! resume from the log without gap or duplicate, a lead's stream keeps its lead's events, a
//! resume point the log no longer reaches says `reset`, a client that falls behind catches up,
//! and the last client to go ends the feed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse};
use futures_util::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use callmesh_gateway::live::LiveHub;
use callmesh_proto::notification::v1 as pb;
use callmesh_proto::notification::v1::notification_service_client::NotificationServiceClient;
use callmesh_proto::notification::v1::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use callmesh_runtime::auth::authenticated;
use callmesh_testkit::wait_until;

/// The log and live fan-out of a notification service, as far as the gateway uses them.
#[derive(Clone)]
struct FakeNotification {
    log: Arc<Mutex<Vec<pb::Event>>>,
    live: broadcast::Sender<pb::Event>,
    subscribes: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
}

/// Counts a stream as open until it is dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl NotificationService for FakeNotification {
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<BoxStream<pb::SubscribeResponse>>, Status> {
        let organization = request
            .into_inner()
            .filter
            .unwrap_or_default()
            .organization_id;
        self.subscribes.fetch_add(1, Ordering::SeqCst);
        self.open.fetch_add(1, Ordering::SeqCst);
        let state = (self.live.subscribe(), Open(self.open.clone()));
        let stream = futures_util::stream::unfold(state, move |(mut live, open)| {
            let organization = organization.clone();
            async move {
                loop {
                    match live.recv().await {
                        Ok(event) if event.organization_id == organization => {
                            let item = pb::SubscribeResponse {
                                item: Some(pb::subscribe_response::Item::Event(event)),
                            };
                            return Some((Ok(item), (live, open)));
                        }
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let request = request.into_inner();
        let filter = request.filter.unwrap_or_default();
        let log = self.log.lock().map_err(|_| Status::internal("lock"))?;
        let events = log
            .iter()
            .filter(|e| e.id > request.after_event_id)
            .filter(|e| e.organization_id == filter.organization_id)
            .filter(|e| filter.lead_id.is_empty() || e.lead_id == filter.lead_id)
            .take(usize::try_from(request.limit).unwrap_or(50))
            .cloned()
            .collect();
        Ok(Response::new(pb::ListEventsResponse {
            events,
            oldest_available_id: log.first().map_or(0, |e| e.id),
        }))
    }
}

impl FakeNotification {
    async fn start() -> (FakeNotification, LiveHub) {
        let fake = FakeNotification {
            log: Arc::default(),
            live: broadcast::channel(8192).0,
            subscribes: Arc::default(),
            open: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tonic::transport::Server::builder()
            .add_service(NotificationServiceServer::new(fake.clone()));
        tokio::spawn(server.serve_with_incoming(futures_util::stream::unfold(
            listener,
            |listener| async move { Some((listener.accept().await.map(|(s, _)| s), listener)) },
        )));
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy();
        let client = NotificationServiceClient::new(authenticated(channel));
        (fake.clone(), LiveHub::new(client, CancellationToken::new()))
    }

    /// Logs an event and sends it to live subscribers; answers its id.
    fn publish(&self, organization_id: &str, lead_id: &str) -> u64 {
        let mut log = self.log.lock().expect("lock");
        let id = log.last().map_or(0, |e| e.id) + 1;
        let event = pb::Event {
            id,
            organization_id: organization_id.into(),
            lead_id: lead_id.into(),
            r#type: pb::EventType::SmsReceived.into(),
            payload_json: "{}".into(),
            ..Default::default()
        };
        log.push(event.clone());
        let _ = self.live.send(event);
        id
    }
}

/// The next `n` SSE events of `stream` as (name, id), read as a browser would get them.
async fn take(
    stream: impl Stream<Item = Event> + Send + 'static,
    n: usize,
) -> Vec<(String, Option<u64>)> {
    let events = stream.take(n).map(Ok::<_, std::convert::Infallible>);
    let body = Sse::new(events).into_response().into_body();
    let bytes = tokio::time::timeout(
        Duration::from_secs(10),
        axum::body::to_bytes(body, usize::MAX),
    )
    .await
    .expect("events in time")
    .expect("body");
    String::from_utf8_lossy(&bytes)
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            (
                field("event:").unwrap_or_default(),
                field("id:").and_then(|id| id.parse().ok()),
            )
        })
        .collect()
}

fn ids(events: &[(String, Option<u64>)]) -> Vec<u64> {
    events.iter().filter_map(|(_, id)| *id).collect()
}

#[tokio::test]
async fn clients_of_one_organization_share_one_upstream_stream_until_the_last_leaves() {
    let (fake, hub) = FakeNotification::start().await;
    let mut shop = Vec::new();
    for _ in 0..200 {
        shop.push(hub.subscribe("shop", "", 0).await.expect("subscribe"));
    }
    let cafe = hub.subscribe("cafe", "", 0).await.expect("subscribe");
    assert_eq!(
        fake.subscribes.load(Ordering::SeqCst),
        2,
        "one per organization"
    );
    assert_eq!(hub.feeds(), 2);

    let published: Vec<u64> = (0..3).map(|_| fake.publish("shop", "")).collect();
    let other = fake.publish("cafe", "");
    let readers = shop.into_iter().map(|stream| tokio::spawn(take(stream, 3)));
    for reader in readers {
        assert_eq!(ids(&reader.await.expect("reader")), published);
    }
    assert_eq!(ids(&take(cafe, 1).await), [other], "only its own");

    // Every client has gone: the feeds end, and so do their upstream streams.
    let closed = wait_until(Duration::from_secs(10), || async {
        fake.open.load(Ordering::SeqCst) == 0
    })
    .await;
    assert!(
        closed,
        "{} upstream streams left",
        fake.open.load(Ordering::SeqCst)
    );
    assert_eq!(hub.feeds(), 0);
}

#[tokio::test]
async fn a_resume_replays_the_log_then_follows_the_feed_once_each() {
    let (fake, hub) = FakeNotification::start().await;
    let early: Vec<u64> = (0..5).map(|_| fake.publish("shop", "")).collect();
    // A live client keeps the feed open while the other resumes.
    let live = hub.subscribe("shop", "", 0).await.expect("subscribe");
    let resumed = hub
        .subscribe("shop", "", early[1])
        .await
        .expect("subscribe");
    let later: Vec<u64> = (0..2).map(|_| fake.publish("shop", "")).collect();
    let got = take(resumed, 5).await;
    let expected: Vec<u64> = early[2..].iter().chain(&later).copied().collect();
    assert_eq!(ids(&got), expected, "no gap, no duplicate");
    assert_eq!(ids(&take(live, 2).await), later);
    assert_eq!(
        fake.subscribes.load(Ordering::SeqCst),
        1,
        "the resume shared the feed"
    );
}

#[tokio::test]
async fn a_conversation_stream_keeps_its_lead_and_an_old_resume_point_says_reset() {
    let (fake, hub) = FakeNotification::start().await;
    let lead = hub.subscribe("shop", "lead-1", 0).await.expect("subscribe");
    fake.publish("shop", "lead-2");
    let mine = fake.publish("shop", "lead-1");
    assert_eq!(ids(&take(lead, 1).await), [mine]);

    // The log has dropped ids 1 and 2: a resume after 1 is told to reload, then gets the rest.
    let kept: Vec<u64> = (0..2).map(|_| fake.publish("shop", "")).collect();
    fake.log.lock().expect("lock").retain(|e| e.id > 2);
    let resumed = hub.subscribe("shop", "", 1).await.expect("subscribe");
    let got = take(resumed, 3).await;
    assert_eq!(got[0], ("reset".to_owned(), None));
    assert_eq!(ids(&got), kept);
}

#[tokio::test]
async fn a_client_too_slow_for_the_buffer_catches_up_from_the_log() {
    let (fake, hub) = FakeNotification::start().await;
    let slow = hub.subscribe("shop", "", 0).await.expect("subscribe");
    // Far more than the feed buffers while the client reads nothing.
    let published: Vec<u64> = (0..3000).map(|_| fake.publish("shop", "")).collect();
    let got = take(slow, published.len()).await;
    assert_eq!(ids(&got), published, "everything, in order, once");
}
