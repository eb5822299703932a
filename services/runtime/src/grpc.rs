//! gRPC server bootstrap shared by the five services: `grpc.health.v1.Health` (NOT_SERVING until
//! start-up work such as migrations is done, and again while draining), server reflection v1 and
//! v1alpha, a readiness gate in front of the service, and graceful shutdown on a token.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::{Request, Status};
use tonic_health::ServingStatus;

use crate::config::{Component, ConfigError};
use crate::db::DatabaseError;

/// The largest message a service that carries transcripts or audio takes or sends: above the
/// largest webhook the gateway accepts (64 MiB of post-call JSON), so whatever was acknowledged
/// fits in the RPCs its flow makes. Protobuf is smaller than the JSON it came from.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

/// Concurrent RPCs per connection; the gateway multiplexes all its subscribers on one.
const MAX_CONCURRENT_STREAMS: u32 = 50_000;

/// Why a process could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} (set by {variable}): {source}")]
    Bind {
        addr: SocketAddr,
        variable: String,
        source: std::io::Error,
    },
    // Not the error's source as well: a report printing the chain would name the problem twice.
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("start-up failed: {0}")]
    Startup(String),
    #[error("grpc transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("grpc reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<ConfigError> for ServeError {
    fn from(error: ConfigError) -> Self {
        ServeError::Config(error)
    }
}

/// Binds `addr`, naming the port and its variable when it cannot (e.g. already in use).
pub async fn bind(addr: SocketAddr, variable: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr,
            variable: variable.to_owned(),
            source,
        })
}

/// Closed until start-up work is done; requests arriving before then get UNAVAILABLE instead of
/// touching tables that may not exist yet.
#[derive(Clone, Default)]
pub struct ReadinessGate(Arc<AtomicBool>);

impl ReadinessGate {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn open(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// A tonic interceptor: `XServiceServer::with_interceptor(svc, gate.interceptor())`.
    /// It authenticates the caller first (the mesh or admin token, see [`crate::auth`]); health
    /// and reflection are not behind it, so probes and `grpcurl list` need no token.
    pub fn interceptor(
        &self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static
    {
        let gate = self.clone();
        let credentials = crate::auth::credentials();
        move |request| {
            credentials.check(request.metadata())?;
            if gate.is_open() {
                Ok(request)
            } else {
                Err(Status::unavailable(
                    "service is starting: migrations are not finished",
                ))
            }
        }
    }
}

/// Serves `routes` (the service, already wrapped in `gate`'s interceptor) plus health and
/// reflection on `listener` until `shutdown` is cancelled.
///
/// `startup` runs while the server already answers health checks with NOT_SERVING; when it
/// succeeds the gate opens and health turns SERVING. When it fails the server stops and the
/// error is returned.
pub async fn serve<F>(
    component: Component,
    listener: TcpListener,
    shutdown: CancellationToken,
    routes: Routes,
    gate: ReadinessGate,
    durability: crate::Durability,
    startup: F,
) -> Result<(), ServeError>
where
    F: Future<Output = Result<(), ServeError>>,
{
    let service_name = component.grpc_service().ok_or_else(|| {
        ServeError::Startup(format!("{} is not a gRPC service", component.name()))
    })?;
    let (health, health_service) = tonic_health::server::health_reporter();
    set_status(&health, service_name, ServingStatus::NotServing).await;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(callmesh_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(service_name)
            .with_service_name("grpc.health.v1.Health")
    };
    let routes = routes
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);

    let local_addr = listener.local_addr()?;
    let stop = shutdown.child_token();
    let mut builder = Server::builder();
    if let Some(tls) = crate::tls::server_config()? {
        builder = builder.tls_config(tls)?;
    }
    let mut server = tokio::spawn(
        builder
            // Every live SSE subscriber is a stream on the gateway's one connection.
            .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
            // Each call in a span continuing its caller's trace, then counted and timed.
            .layer(crate::telemetry::TraceContextLayer)
            .layer(crate::metrics::GrpcMetricsLayer(
                crate::metrics::Side::Server,
            ))
            .layer(crate::durability::DurableWrites(durability))
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                no_delay(TcpListenerStream::new(listener)),
                stop.clone().cancelled_owned(),
            ),
    );
    tracing::info!(service = component.name(), %local_addr, "listening; health NOT_SERVING until start-up completes");

    tokio::select! {
        outcome = startup => {
            if let Err(error) = outcome {
                stop.cancel();
                let _ = server.await;
                return Err(error);
            }
        }
        joined = &mut server => return flatten(joined),
    }
    gate.open();
    set_status(&health, service_name, ServingStatus::Serving).await;
    tracing::info!(service = component.name(), %local_addr, "serving");

    tokio::select! {
        _ = stop.cancelled() => {
            // Tell health checkers first so balancers stop sending new work while we drain.
            set_status(&health, service_name, ServingStatus::NotServing).await;
            tracing::info!(service = component.name(), "shutting down");
            flatten(server.await)
        }
        joined = &mut server => flatten(joined),
    }
}

async fn set_status(
    health: &tonic_health::server::HealthReporter,
    service_name: &str,
    status: ServingStatus,
) {
    health.set_service_status("", status).await;
    health.set_service_status(service_name, status).await;
}

fn flatten(
    joined: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> Result<(), ServeError> {
    match joined {
        Ok(result) => Ok(result?),
        Err(join) => Err(ServeError::Startup(format!(
            "server task ended abnormally: {join}"
        ))),
    }
}

/// Connects to `database`, then serves the routes `make_routes` builds while migrating `M`:
/// the common start-up of a service whose only start-up work is its migrations.
pub async fn serve_migrated<M, R>(
    component: Component,
    database: &crate::db::DatabaseUrl,
    listener: TcpListener,
    shutdown: CancellationToken,
    make_routes: R,
) -> Result<(), ServeError>
where
    M: sea_orm_migration::MigratorTrait,
    R: FnOnce(sea_orm::DatabaseConnection, &ReadinessGate) -> Routes,
{
    let connection = crate::db::connect(database).await?;
    let durability = crate::Durability::for_database(database);
    let gate = ReadinessGate::new();
    let routes = make_routes(connection.clone(), &gate);
    let startup = async move {
        crate::db::migrate::<M>(&connection, component).await?;
        Ok(())
    };
    serve(
        component, listener, shutdown, routes, gate, durability, startup,
    )
    .await
}

/// Accepted connections with Nagle's algorithm off. tonic sets `TCP_NODELAY` only on the
/// listeners it binds itself; on these, a response's last frames would wait for the client's
/// (delayed, up to 40 ms) acknowledgement of the first.
fn no_delay(
    incoming: TcpListenerStream,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    incoming.map(|accepted| {
        if let Ok(stream) = &accepted {
            let _ = stream.set_nodelay(true);
        }
        accepted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut incoming = std::pin::pin!(no_delay(TcpListenerStream::new(listener)));
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let accepted = incoming
            .next()
            .await
            .expect("a connection")
            .expect("accepted");
        assert!(accepted.nodelay().expect("read the option"));
    }
}
