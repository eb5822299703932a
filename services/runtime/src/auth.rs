//! Authentication inside the mesh. Every RPC but health and reflection carries
//! `authorization: Bearer <token>`, where the token is the mesh-internal token
//! (`CALLMESH_INTERNAL_TOKEN`, shared by every process of one mesh) or the admin token
//! (`CALLMESH_ADMIN_TOKEN`, so an operator's `grpcurl` works).
//!
//! A process started with neither makes a random internal token of its own: it then accepts
//! calls only from itself (tests running the mesh in one process) and refuses everyone else,
//! rather than serve everyone. `callmesh up` makes one token and hands it to all its children.

use crate::metrics::{GrpcMetrics, Side};
use std::sync::OnceLock;

use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::config::env_var;

pub const INTERNAL_TOKEN_VAR: &str = "CALLMESH_INTERNAL_TOKEN";
pub const ADMIN_TOKEN_VAR: &str = "CALLMESH_ADMIN_TOKEN";

/// The tokens a server accepts, and the one its clients present.
pub struct MeshCredentials {
    internal: String,
    admin: Option<String>,
    /// What this process sends: the internal token when one is configured, else the admin
    /// token (tools such as `callmesh token`), else the generated internal token.
    outgoing: String,
}

impl MeshCredentials {
    pub fn new(internal: impl Into<String>, admin: Option<String>) -> Self {
        let internal = internal.into();
        MeshCredentials {
            outgoing: internal.clone(),
            internal,
            admin: admin.filter(|a| !a.is_empty()),
        }
    }

    /// From `CALLMESH_INTERNAL_TOKEN` and `CALLMESH_ADMIN_TOKEN`; a random internal token when
    /// the first is unset.
    pub fn from_env() -> Self {
        let admin = env_var(ADMIN_TOKEN_VAR);
        match env_var(INTERNAL_TOKEN_VAR) {
            Some(internal) => MeshCredentials::new(internal, admin),
            None => {
                let mut credentials = MeshCredentials::new(generate_token(), admin.clone());
                if let Some(admin) = admin {
                    credentials.outgoing = admin;
                }
                credentials
            }
        }
    }

    /// Whether `presented` (the whole `authorization` value) is one of the accepted tokens.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let Some(token) = presented.strip_prefix(b"Bearer ") else {
            return false;
        };
        let token = token.trim_ascii();
        let internal = constant_time_eq(self.internal.as_bytes(), token);
        let admin = self
            .admin
            .as_deref()
            .is_some_and(|admin| constant_time_eq(admin.as_bytes(), token));
        !token.is_empty() && (internal | admin)
    }

    /// Refuses a request that does not carry an accepted token.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        match metadata.get("authorization") {
            Some(value) if self.accepts(value.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated("invalid mesh token")),
            None => Err(Status::unauthenticated(
                "missing authorization: Bearer <CALLMESH_INTERNAL_TOKEN or CALLMESH_ADMIN_TOKEN>",
            )),
        }
    }

    /// The token this process presents, for a helper process that calls the mesh for it.
    pub fn token(&self) -> &str {
        &self.outgoing
    }

    /// The interceptor that makes a client present this process's token.
    pub fn client_auth(&self) -> MeshAuth {
        // Tokens come from the environment or from hex; a value that is not a valid header
        // is sent as nothing, and the server answers UNAUTHENTICATED.
        MeshAuth {
            header: format!("Bearer {}", self.outgoing).parse().ok(),
        }
    }
}

fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    expected.len() == presented.len() && bool::from(expected.ct_eq(presented))
}

/// 256 random bits, hex.
pub fn generate_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("{}{}", a.simple(), b.simple())
}

static CREDENTIALS: OnceLock<MeshCredentials> = OnceLock::new();

/// This process's credentials, read from the environment on first use.
pub fn credentials() -> &'static MeshCredentials {
    CREDENTIALS.get_or_init(|| {
        let credentials = MeshCredentials::from_env();
        if env_var(INTERNAL_TOKEN_VAR).is_none() {
            tracing::warn!(
                "{INTERNAL_TOKEN_VAR} is not set: this process made its own mesh token, so other \
                 processes can call its gRPC services only with {ADMIN_TOKEN_VAR}"
            );
        }
        credentials
    })
}

/// Adds this process's mesh token to every request of a client.
#[derive(Clone)]
pub struct MeshAuth {
    header: Option<AsciiMetadataValue>,
}

impl Interceptor for MeshAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        // The call continues the caller's trace.
        crate::telemetry::inject(&mut request);
        Ok(request)
    }
}

/// A channel whose every call carries the mesh token.
/// Calls on it are counted and timed (`grpc_client_*`).
pub type MeshChannel = InterceptedService<GrpcMetrics<Channel>, MeshAuth>;

/// `channel` with this process's mesh token on every call.
pub fn authenticated(channel: Channel) -> MeshChannel {
    InterceptedService::new(
        GrpcMetrics::new(channel, Side::Client),
        credentials().client_auth(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internal_and_the_admin_token_are_accepted_and_nothing_else() {
        let credentials = MeshCredentials::new("internal-token", Some("admin-token".into()));
        assert!(credentials.accepts(b"Bearer internal-token"));
        assert!(credentials.accepts(b"Bearer admin-token"));
        for refused in [
            &b""[..],
            b"Bearer ",
            b"internal-token",
            b"Bearer internal-toke",
            b"Bearer internal-token2",
            b"Basic admin-token",
        ] {
            assert!(
                !credentials.accepts(refused),
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
        let no_admin = MeshCredentials::new("internal-token", Some(String::new()));
        assert!(!no_admin.accepts(b"Bearer "));
    }

    #[test]
    fn a_client_presents_what_the_server_accepts() {
        let credentials = MeshCredentials::new("internal-token", None);
        let mut auth = credentials.client_auth();
        let request = auth.call(Request::new(())).expect("intercepted");
        assert!(credentials.check(request.metadata()).is_ok());
        assert!(credentials.check(&MetadataMap::new()).is_err());
    }
}
