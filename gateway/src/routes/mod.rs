//! HTTP handlers, one module per area.

pub mod admin;
pub mod analysis;
pub mod analysis_views;
pub mod dashboard;
pub mod initiation;
pub mod metrics;
pub mod operator;
pub mod payloads;
pub mod reads;
pub mod stream;
pub mod twilio;
pub mod webhooks;
