//! Gateway configuration, read from the environment once at start.

use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError};

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The gateway's own database (the webhook inbox).
    pub database: DatabaseUrl,
    /// Where each service is reached, in `Component::SERVICES` order.
    pub service_urls: Vec<(Component, String)>,
}

impl GatewayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(GatewayConfig {
            database: DatabaseUrl::from_env(Component::Gateway)?,
            service_urls: Component::SERVICES
                .into_iter()
                .map(|service| (service, service.service_url()))
                .collect(),
        })
    }
}
