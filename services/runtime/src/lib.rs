//! Shared plumbing of the callmesh processes, and nothing else: configuration helpers,
//! telemetry, database connection and migration, gRPC server bootstrap (health, reflection,
//! graceful shutdown) and client channels. Domain logic never lives here.

pub mod clients;
pub mod config;
pub mod db;
pub mod errors;
pub mod grpc;
pub mod paging;
pub mod telemetry;
pub mod timestamps;

pub use config::{Component, ConfigError};
pub use errors::ServiceError;
pub use grpc::{ReadinessGate, ServeError};
