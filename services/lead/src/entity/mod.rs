//! SeaORM entities of the lead database (see `migrations/lead`).

pub mod idempotency_key;
pub mod lead;
pub mod organization;
pub mod phone_number;
pub mod token;
