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
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

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

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (services, database) = tokio::join!(state.services.states(), state.db.ping());
    let unavailable: Vec<&str> = services
        .iter()
        .filter(|(_, s)| s.as_str() != "SERVING")
        .map(|(name, _)| *name)
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
    let body = json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "services": services,
        "unavailable": unavailable,
        "database": database,
    });
    (status, Json(body))
}

/// `GET /api/live`: 200 whenever the process answers, asking nothing else, so a slow database
/// or a service down never gets a working gateway restarted.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/ready`: 200 while the gateway's own database answers, which is all accepting a
/// webhook needs (flows wait in the inbox while a service is down); 503 when it does not or
/// the gateway is shutting down.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.shutdown.is_cancelled() {
        let body = json!({ "status": "unavailable", "reason": "shutting down" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    match tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        _ => {
            let body = json!({ "status": "unavailable", "database": "unreachable" });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}
