//! `GET /api/health`: asks every service's `grpc.health.v1.Health` at once, over channels made
//! once at start. 200 when all serve; 503 naming those that don't.

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
