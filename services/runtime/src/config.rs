//! The processes of the mesh, their default addresses, and environment helpers.
//!
//! Configuration is read from the environment once at start and validated there; a missing
//! required value or a malformed one stops start-up with a message naming the variable.

use std::net::SocketAddr;

/// The id of the organization that owns every phone number no other organization has claimed.
/// Fixed, so every process and replica agrees on it without asking.
pub const DEFAULT_ORGANIZATION_ID: &str = "00000000-0000-7000-8000-000000000001";

/// One process of the mesh. Each owns its database and listens on its own port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Gateway,
    Lead,
    Context,
    Analysis,
    Telephony,
    Notification,
}

impl Component {
    /// The five gRPC services, in port order.
    pub const SERVICES: [Component; 5] = [
        Component::Lead,
        Component::Context,
        Component::Analysis,
        Component::Telephony,
        Component::Notification,
    ];

    /// Every process, gateway first.
    pub const ALL: [Component; 6] = [
        Component::Gateway,
        Component::Lead,
        Component::Context,
        Component::Analysis,
        Component::Telephony,
        Component::Notification,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Gateway => "gateway",
            Component::Lead => "lead",
            Component::Context => "context",
            Component::Analysis => "analysis",
            Component::Telephony => "telephony",
            Component::Notification => "notification",
        }
    }

    pub fn from_name(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn default_port(self) -> u16 {
        match self {
            Component::Gateway => 8080,
            Component::Lead => 50051,
            Component::Context => 50052,
            Component::Analysis => 50053,
            Component::Telephony => 50054,
            Component::Notification => 50055,
        }
    }

    /// The fully qualified gRPC service name; `None` for the gateway.
    pub fn grpc_service(self) -> Option<&'static str> {
        use callmesh_proto::service_names as names;
        match self {
            Component::Gateway => None,
            Component::Lead => Some(names::LEAD),
            Component::Context => Some(names::CONTEXT),
            Component::Analysis => Some(names::ANALYSIS),
            Component::Telephony => Some(names::TELEPHONY),
            Component::Notification => Some(names::NOTIFICATION),
        }
    }

    pub fn env_prefix(self) -> String {
        self.name().to_ascii_uppercase()
    }

    /// Variable holding the address this process listens on, e.g. `LEAD_ADDR`.
    pub fn addr_var(self) -> String {
        format!("{}_ADDR", self.env_prefix())
    }

    /// Variable holding the URL other processes reach this service at, e.g. `LEAD_URL`.
    pub fn url_var(self) -> String {
        format!("{}_URL", self.env_prefix())
    }

    /// Variable moving this process's database, e.g. `LEAD_DATABASE_URL`.
    pub fn database_var(self) -> String {
        format!("{}_DATABASE_URL", self.env_prefix())
    }

    /// The address to listen on: `<NAME>_ADDR`, else all interfaces on the default port.
    pub fn listen_addr(self) -> Result<SocketAddr, ConfigError> {
        let var = self.addr_var();
        match env_var(&var) {
            Some(value) => value
                .parse()
                .map_err(|_| ConfigError::invalid(&var, "expected host:port, e.g. 0.0.0.0:50051")),
            None => Ok(SocketAddr::from(([0, 0, 0, 0], self.default_port()))),
        }
    }

    /// The URL other processes reach this service at: `<NAME>_URL`, else loopback on the
    /// default port.
    pub fn service_url(self) -> String {
        env_var(&self.url_var())
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", self.default_port()))
    }
}

/// Configuration that cannot be used; always names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

impl ConfigError {
    pub fn invalid(variable: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            variable: variable.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A variable's value, treating empty as unset.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A variable's value, or the default when unset.
pub fn env_or(name: &str, default: &str) -> String {
    env_var(name).unwrap_or_else(|| default.to_owned())
}

/// A variable parsed as `T`, or the default when unset.
pub fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError> {
    match env_var(name) {
        Some(value) => value
            .trim()
            .parse()
            .map_err(|_| ConfigError::invalid(name, format!("cannot parse {value:?}"))),
        None => Ok(default),
    }
}
