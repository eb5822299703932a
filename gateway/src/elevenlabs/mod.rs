//! ElevenLabs: the payloads it sends (parsed leniently: unknown fields are fine, numbers may
//! arrive as strings) and the REST API callmesh calls.

pub mod api;
pub mod payload;
