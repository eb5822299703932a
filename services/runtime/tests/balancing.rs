//! Client-side balancing on loopback: gRPC servers on `127.0.0.1:0` standing in for the pods
//! of a headless Service, and a resolver whose answer the test changes as pods come and go.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::InterceptorLayer;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use callmesh_runtime::clients::{Resolve, balanced_channel};

const REFRESH: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(10);

/// One server answering `grpc.health.v1.Health/Check`, counting the calls it gets.
struct Replica {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start() -> Replica {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let count = move |request: tonic::Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(request)
        };
        let (_reporter, health) = tonic_health::server::health_reporter();
        let server = tokio::spawn(async move {
            let _ = Server::builder()
                .layer(InterceptorLayer::new(count))
                .add_service(health)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        Replica {
            addr,
            calls,
            server,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A resolver whose answer the test sets (`None`: the name does not resolve), counting lookups.
#[derive(Clone)]
struct FakeDns {
    answer: Arc<Mutex<Option<Vec<SocketAddr>>>>,
    lookups: Arc<watch::Sender<u64>>,
}

impl FakeDns {
    fn new(answer: Option<Vec<SocketAddr>>) -> Self {
        FakeDns {
            answer: Arc::new(Mutex::new(answer)),
            lookups: Arc::new(watch::channel(0).0),
        }
    }

    /// Changes the answer and waits until the channel has acted on it: the lookup after the
    /// change has been answered and its changes sent before the one after it starts.
    async fn answer_and_settle(&self, answer: Option<Vec<SocketAddr>>) {
        let seen = {
            let mut current = self.answer.lock().expect("answer lock");
            *current = answer;
            *self.lookups.borrow()
        };
        let mut lookups = self.lookups.subscribe();
        tokio::time::timeout(DEADLINE, lookups.wait_for(|n| *n >= seen + 2))
            .await
            .expect("the channel keeps resolving")
            .expect("resolver alive");
    }
}

impl Resolve for FakeDns {
    async fn resolve(&self, _host: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
        // Read and count under one lock, so `answer_and_settle` knows which lookup saw what.
        let answer = self.answer.lock().expect("answer lock");
        self.lookups.send_modify(|n| *n += 1);
        answer
            .clone()
            .ok_or_else(|| std::io::Error::other("no such host"))
    }
}

async fn check(client: &mut HealthClient<Channel>) {
    let request = HealthCheckRequest {
        service: String::new(),
    };
    tokio::time::timeout(DEADLINE, client.check(request))
        .await
        .expect("a call answers in time")
        .expect("the health check succeeds");
}

#[tokio::test]
async fn calls_spread_over_every_address_and_leave_a_removed_one() {
    let (a, b) = (Replica::start().await, Replica::start().await);
    let dns = FakeDns::new(Some(vec![a.addr, b.addr]));
    let channel = balanced_channel(
        Endpoint::from_static("http://lead.mesh.test:50051"),
        dns.clone(),
        REFRESH,
    );
    let mut client = HealthClient::new(channel);

    for _ in 0..200 {
        check(&mut client).await;
        if a.calls() > 0 && b.calls() > 0 {
            break;
        }
    }
    assert!(
        a.calls() > 0 && b.calls() > 0,
        "both replicas get calls: {} and {}",
        a.calls(),
        b.calls()
    );

    // b's pod goes away: the name now resolves to a alone.
    dns.answer_and_settle(Some(vec![a.addr])).await;
    let (before_a, before_b) = (a.calls(), b.calls());
    for _ in 0..20 {
        check(&mut client).await;
    }
    assert_eq!(b.calls(), before_b, "a removed address gets no more calls");
    assert_eq!(a.calls(), before_a + 20);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_yet_is_tried_as_written_until_it_does() {
    let (a, b) = (Replica::start().await, Replica::start().await);
    let dns = FakeDns::new(None);
    let url = format!("http://{}", a.addr);
    let endpoint = Endpoint::from_shared(url).expect("valid URL");
    let mut client = HealthClient::new(balanced_channel(endpoint, dns.clone(), REFRESH));

    check(&mut client).await;
    assert_eq!(a.calls(), 1, "the URL itself serves while nothing resolves");

    dns.answer_and_settle(Some(vec![b.addr])).await;
    for _ in 0..5 {
        check(&mut client).await;
    }
    assert_eq!(
        (a.calls(), b.calls()),
        (1, 5),
        "resolved addresses replace the URL"
    );

    // A failed lookup keeps the last answer rather than emptying the channel.
    dns.answer_and_settle(None).await;
    check(&mut client).await;
    assert_eq!(b.calls(), 6);
}
