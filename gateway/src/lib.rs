//! The callmesh HTTP gateway: the edge of the mesh. Providers' webhooks are verified, committed
//! to the durable inbox and answered; the dispatcher then runs their flows as gRPC calls to the
//! five services. Also: the synchronous conversation-initiation answer, the admin API and
//! `/api/health`.

pub mod auth;
pub mod batcher;
pub mod clients;
pub mod config;
pub mod elevenlabs;
pub mod error;
pub mod flows;
mod health;
pub mod inbox;
pub mod live;
mod observe;
pub mod openapi;
pub mod policy;
mod router;
pub mod routes;
pub mod secret;
mod server;

#[cfg(test)]
mod properties;
pub mod verify;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_gateway::Migrator;
use callmesh_runtime::{Component, ServeError, db};

pub use config::GatewayConfig;
pub use router::{openapi_document, router};

/// The gateway database's tables of limits shared by its replicas (see its migrations).
pub(crate) const RATE_COUNTERS: &str = "gateway_rate_counters";
const COOLDOWNS: &str = "gateway_cooldowns";

/// What every handler shares, behind one reference count: axum hands each request (and each
/// layer that needs it) a clone of the state, and a field-by-field clone of the service clients
/// alone, a dozen channels, cost about a third of the gateway's CPU at full ingest.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state itself; see [`AppState`].
pub struct Shared {
    pub config: Arc<GatewayConfig>,
    pub db: sea_orm::DatabaseConnection,
    pub clients: clients::Clients,
    pub inbox: inbox::Inbox,
    pub flows: Arc<flows::Flows>,
    services: Arc<health::ServiceHealth>,
    caller_limit: routes::initiation::CallerLimit,
    /// Cancelled when the gateway stops: live streams end so shutdown does not wait on them.
    pub shutdown: CancellationToken,
    /// One upstream live feed per organization, shared by its SSE clients.
    pub live: live::LiveHub,
    webhooks: Arc<routes::metrics::WebhookCounters>,
}

/// Serves the gateway on `listener` until `shutdown` is cancelled: in-flight requests finish,
/// the dispatcher stops between items, and everything accepted stays in the inbox.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let connection = db::connect(&config.database).await?;
    db::migrate::<Migrator>(&connection, Component::Gateway).await?;
    let config = Arc::new(config);
    let clients = clients::Clients::new(&config.service_urls)?;
    let durability = callmesh_runtime::Durability::for_database(&config.database);
    let inbox = inbox::Inbox::start(connection.clone(), durability);
    // The flows run on threads of their own, with their own service clients, so that the
    // dispatcher's work (parsing stored webhooks, calling the services, a backlog of thousands
    // of them) never waits in the same queue as a webhook to be acknowledged or an initiation
    // to be answered: the operating system shares the cores between the two and wakes the
    // mostly idle side at once.
    let processing = Processing::start()?;
    let flow_clients = {
        let _inside = processing.runtime().enter();
        clients::Clients::new(&config.service_urls)?
    };
    let flows = Arc::new(flows::Flows {
        clients: flow_clients,
        api: elevenlabs::api::ElevenLabsApi::new(
            &config.elevenlabs.api_base_url,
            config.elevenlabs.api_key.clone(),
        ),
        inbox: inbox.clone(),
        config: config.clone(),
        sms_follow_up: callmesh_runtime::limits::Cooldown::new(
            connection.clone(),
            COOLDOWNS,
            "sms_follow_up",
            config.twilio.sms_follow_up_cooldown,
        ),
        directory: flows::directory::Directory::new(config.organization_cache),
    });
    let state = AppState(Arc::new(Shared {
        services: Arc::new(health::ServiceHealth::new(&clients.channels)),
        caller_limit: routes::initiation::CallerLimit::new(
            db::connect_best_effort(&config.database, &connection).await?,
            &config.initiation,
        ),
        config: config.clone(),
        db: connection,
        live: live::LiveHub::new(clients.notification.clone(), shutdown.clone()),
        clients,
        inbox: inbox.clone(),
        flows: flows.clone(),
        shutdown: shutdown.clone(),
        webhooks: Arc::default(),
    }));

    let dispatcher = processing.runtime().spawn(inbox::dispatcher::run(
        inbox,
        flows,
        config.inbox.clone(),
        shutdown.clone(),
    ));

    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, "gateway listening");
    server::serve(listener, router(state), &config.http, shutdown.clone()).await?;
    shutdown.cancel();
    let _ = dispatcher.await;
    tracing::info!("gateway stopped");
    Ok(())
}

/// The runtime the inbox's flows run on; stopped (without blocking) when the gateway stops.
struct Processing(Option<tokio::runtime::Runtime>);

impl Processing {
    fn start() -> std::io::Result<Processing> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("gateway-flows")
            .enable_all()
            .build()?;
        Ok(Processing(Some(runtime)))
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only when dropped"))
    }
}

impl Drop for Processing {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // Dropping a runtime blocks, which `serve`'s own task may not do.
            runtime.shutdown_background();
        }
    }
}
