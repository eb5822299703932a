//! The `inbox_items` table (see `migrations/gateway`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbox_items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub event_type: String,
    pub idempotency_key: String,
    pub raw_body: Vec<u8>,
    pub received_at: DateTimeUtc,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub last_error: String,
    pub updated_at: DateTimeUtc,
    /// The dispatcher holding the item while it is `processing` (empty otherwise).
    pub claimed_by: String,
    /// The W3C `traceparent` of the trace the item arrived in ("" for none).
    pub trace_parent: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
