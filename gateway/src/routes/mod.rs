//! HTTP handlers, one module per area.

pub mod admin;
pub mod initiation;
pub mod webhooks;
