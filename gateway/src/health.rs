//! `GET /api/health`: asks every service's `grpc.health.v1.Health` at once, over channels made
//! once at start. 200 when all serve; 503 naming those that don't.
//!
//! For orchestrators, two cheaper answers: `GET /api/live` (the process answers HTTP: restart it
//! when it doesn't) and `GET /api/ready` (the gateway's own database answers, so webhooks can be
//! accepted into the inbox: route traffic here while it does, whatever the services' state).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use utoipa::ToSchema;

use callmesh_runtime::Component;

use crate::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub struct ServiceHealth {
    clients: Vec<(Component, HealthClient<Channel>)>,
}

impl ServiceHealth {
    pub fn new(channels: &[(Component, Channel)]) -> Self {
        let clients = channels
            .iter()
            .map(|(service, channel)| (*service, HealthClient::new(channel.clone())))
            .collect();
        ServiceHealth { clients }
    }

    /// Each service's state: "SERVING", "NOT_SERVING", "UNREACHABLE", ...
    async fn states(&self) -> BTreeMap<&'static str, String> {
        let checks = self.clients.iter().map(|(service, client)| {
            let mut client = client.clone();
            async move {
                let request = HealthCheckRequest {
                    service: String::new(),
                };
                let state = match tokio::time::timeout(CHECK_TIMEOUT, client.check(request)).await {
                    Ok(Ok(response)) => match response.into_inner().status() {
                        ServingStatus::Serving => "SERVING",
                        ServingStatus::NotServing => "NOT_SERVING",
                        ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
                        ServingStatus::Unknown => "UNKNOWN",
                    },
                    Ok(Err(_)) => "UNREACHABLE",
                    Err(_) => "TIMEOUT",
                };
                (service.name(), state.to_owned())
            }
        });
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .collect()
    }
}

/// The mesh's health: every service's gRPC health state and the gateway's database.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when every service serves and the database answers, else `unavailable`.
    #[schema(example = "ok")]
    pub status: String,
    /// Each service's state: `SERVING`, `NOT_SERVING`, `UNREACHABLE`, `TIMEOUT`, ...
    pub services: BTreeMap<String, String>,
    /// The services that do not serve.
    pub unavailable: Vec<String>,
    /// `ok` or `unreachable`.
    pub database: String,
}

/// `/api/live` and `/api/ready`: `ok`, or `unavailable` with why.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Probe {
    /// `ok` or `unavailable`.
    pub status: String,
    /// With `unavailable` from `/api/ready` while the gateway stops: `shutting down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// With `unavailable` from `/api/ready`: `unreachable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

impl Probe {
    fn ok() -> Self {
        Probe {
            status: "ok".into(),
            reason: None,
            database: None,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/health",
    tag = "health",
    operation_id = "health",
    summary = "Every service's health and the gateway database's",
    responses(
        (status = 200, description = "Every service serves and the database answers", body = Health),
        (status = 503, description = "A service or the database does not answer; `unavailable` names the services", body = Health),
    ),
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (services, database) = tokio::join!(state.services.states(), state.db.ping());
    let unavailable: Vec<String> = services
        .iter()
        .filter(|(_, s)| s.as_str() != "SERVING")
        .map(|(name, _)| (*name).to_owned())
        .collect();
    let database = if database.is_ok() {
        "ok"
    } else {
        "unreachable"
    };
    let healthy = unavailable.is_empty() && database == "ok";
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" }.to_owned(),
        services: services
            .into_iter()
            .map(|(name, state)| (name.to_owned(), state))
            .collect(),
        unavailable,
        database: database.to_owned(),
    };
    (status, Json(body))
}

/// `GET /api/live`: 200 whenever the process answers, asking nothing else, so a slow database
/// or a service down never gets a working gateway restarted.
#[utoipa::path(
    get,
    path = "/api/live",
    tag = "health",
    operation_id = "live",
    summary = "Liveness: the process answers HTTP",
    responses((status = 200, description = "Always, while the process answers", body = Probe)),
)]
pub async fn live() -> Json<Probe> {
    Json(Probe::ok())
}

/// `GET /api/ready`: 200 while the gateway's own database answers, which is all accepting a
/// webhook needs (flows wait in the inbox while a service is down); 503 when it does not or
/// the gateway is shutting down.
#[utoipa::path(
    get,
    path = "/api/ready",
    tag = "health",
    operation_id = "ready",
    summary = "Readiness: webhooks can be accepted into the inbox",
    responses(
        (status = 200, description = "The gateway database answers", body = Probe),
        (status = 503, description = "The database does not answer, or the gateway is stopping", body = Probe),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Probe>) {
    if state.shutdown.is_cancelled() {
        let body = Probe {
            status: "unavailable".into(),
            reason: Some("shutting down".into()),
            database: None,
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    match tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(Probe::ok())),
        _ => {
            let body = Probe {
                status: "unavailable".into(),
                reason: None,
                database: Some("unreachable".into()),
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}
