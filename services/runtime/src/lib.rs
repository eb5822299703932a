//! Shared plumbing of the callmesh processes, and nothing else: configuration helpers,
//! telemetry, database connection and migration, gRPC server bootstrap (health, reflection,
//! graceful shutdown), client channels, and limits shared by replicas through a database.
//! Domain logic never lives here.

pub mod auth;
pub mod batch;
pub mod cache;
pub mod clients;
pub mod config;
pub mod db;
pub mod durability;
pub mod egress;
pub mod errors;
pub mod grpc;
pub mod limits;
pub mod lookup;
pub mod metrics;
pub mod paging;
pub mod redact;
pub mod telemetry;
pub mod timestamps;
pub mod tls;

pub use config::{Component, ConfigError};
pub use durability::Durability;
pub use errors::ServiceError;
pub use grpc::{ReadinessGate, ServeError};

/// Declares a domain enum stored in the database as a lowercase string, with its round trip
/// (`as_str` / `from_stored`).
#[macro_export]
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_stored(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}
