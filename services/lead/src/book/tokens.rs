//! Organization API tokens: random secrets shown once, stored as SHA-256 hashes (the secrets
//! carry 256 bits of entropy, so a fast hash is enough), revocable.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use sha2::{Digest, Sha256};

use super::{LeadBook, new_id};
use crate::entity::token;
use crate::error::LeadError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationToken {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const PREFIX: &str = "cm_";

fn hash(secret: &str) -> String {
    hex_lower(&Sha256::digest(secret.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl LeadBook {
    /// A new token for the organization, and its secret (returned this once). With an
    /// idempotency key, a repeat answers the same token but no secret.
    pub async fn create_token(
        &self,
        idempotency_key: Option<&str>,
        organization_id: &str,
        name: &str,
    ) -> Result<(OrganizationToken, Option<String>), LeadError> {
        self.organization(organization_id).await?;
        if let Some(key) = idempotency_key
            && let Some(existing) = token::Entity::find()
                .filter(token::Column::IdempotencyKey.eq(key))
                .one(&self.db)
                .await?
        {
            return Ok((to_token(existing), None));
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let id = new_id();
        let row = token::ActiveModel {
            id: Set(id.clone()),
            organization_id: Set(organization_id.to_owned()),
            name: Set(name.to_owned()),
            secret_hash: Set(hash(&secret)),
            idempotency_key: Set(idempotency_key
                .map(str::to_owned)
                .unwrap_or_else(|| format!("token:{id}"))),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        tracing::info!(token_id = %row.id, %organization_id, "organization token created");
        Ok((to_token(row), Some(secret)))
    }

    pub async fn tokens(&self, organization_id: &str) -> Result<Vec<OrganizationToken>, LeadError> {
        Ok(token::Entity::find()
            .filter(token::Column::OrganizationId.eq(organization_id))
            .order_by_asc(token::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_token)
            .collect())
    }

    /// Revokes a token; revoking it again changes nothing.
    pub async fn revoke_token(&self, token_id: &str) -> Result<OrganizationToken, LeadError> {
        let row = token::Entity::find_by_id(token_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| LeadError::not_found("token", token_id))?;
        if row.revoked_at.is_some() {
            return Ok(to_token(row));
        }
        let mut active = row.into_active_model();
        active.revoked_at = Set(Some(Utc::now()));
        let row = active.update(&self.db).await?;
        tracing::info!(token_id = %row.id, "organization token revoked");
        Ok(to_token(row))
    }

    /// The live token with this secret, or `None`.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<OrganizationToken>, LeadError> {
        if !secret.starts_with(PREFIX) {
            return Ok(None);
        }
        let row = token::Entity::find()
            .filter(token::Column::SecretHash.eq(hash(secret)))
            .filter(token::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?;
        Ok(row.map(to_token))
    }
}

fn to_token(row: token::Model) -> OrganizationToken {
    OrganizationToken {
        id: row.id,
        organization_id: row.organization_id,
        name: row.name,
        created_at: row.created_at,
        revoked_at: row.revoked_at,
    }
}
