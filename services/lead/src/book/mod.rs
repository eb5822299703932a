//! `LeadBook`: the lead service's domain logic over its database. Organizations and the phone
//! numbers they own, leads found or created by phone, and what conversations teach us about
//! them. Uniqueness and idempotency are enforced by the database (unique indexes and
//! `INSERT ... ON CONFLICT DO NOTHING`), never by a read-then-write.

mod counts;
mod leads;
mod listing;
mod organizations;
mod tokens;

pub use counts::LeadCount;
pub use listing::LeadPage;
pub use tokens::OrganizationToken;

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set};

use crate::entity::idempotency_key;
use crate::error::LeadError;
use crate::phone::DefaultRegion;

pub use callmesh_runtime::config::DEFAULT_ORGANIZATION_ID;

#[derive(Clone)]
pub struct LeadBook {
    db: DatabaseConnection,
    region: DefaultRegion,
    known_organizations: KnownOrganizations,
}

impl LeadBook {
    pub fn new(db: DatabaseConnection, region: DefaultRegion) -> Self {
        LeadBook {
            db,
            region,
            known_organizations: KnownOrganizations::default(),
        }
    }

    /// The region assumed for numbers written without a country code.
    pub fn region(&self) -> DefaultRegion {
        self.region
    }
}

/// Claims `key` for `operation` inside the caller's transaction. Returns `None` when the key is
/// new (the caller goes on and applies the operation), or the id of the resource a previous call
/// with this key produced. On PostgreSQL a concurrent claim of the same key waits for the first
/// transaction, so exactly one applies.
async fn claim_idempotency_key(
    txn: &impl ConnectionTrait,
    operation: &str,
    key: &str,
    resource_id: &str,
) -> Result<Option<String>, LeadError> {
    let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        operation: Set(operation.to_owned()),
        idempotency_key: Set(key.to_owned()),
        resource_id: Set(resource_id.to_owned()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(key_taken())
    .exec_without_returning(txn)
    .await?;
    if inserted == 1 {
        return Ok(None);
    }
    let existing = idempotency_key::Entity::find_by_id((operation.to_owned(), key.to_owned()))
        .one(txn)
        .await?
        .ok_or_else(|| LeadError::Conflict(format!("idempotency key {key:?} is being applied")))?;
    Ok(Some(existing.resource_id))
}

/// An idempotency key already claimed for its operation: nothing is inserted.
fn key_taken() -> OnConflict {
    OnConflict::columns([
        idempotency_key::Column::Operation,
        idempotency_key::Column::IdempotencyKey,
    ])
    .do_nothing()
    .to_owned()
}

/// A new time-ordered id: id order is creation order, which keyset paging relies on.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Organizations this process has seen exist. Organizations are never deleted, so once seen an
/// id stays true on every replica: finding or creating a lead checks its organization in the
/// database only the first time. Bounded: forgotten wholesale past `LIMIT` ids.
#[derive(Clone, Default)]
struct KnownOrganizations(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl KnownOrganizations {
    const LIMIT: usize = 10_000;

    fn contains(&self, id: &str) -> bool {
        self.0.lock().is_ok_and(|known| known.contains(id))
    }

    fn remember(&self, id: &str) {
        if let Ok(mut known) = self.0.lock() {
            if known.len() >= Self::LIMIT {
                known.clear();
            }
            known.insert(id.to_owned());
        }
    }
}
