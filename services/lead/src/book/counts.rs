//! How an organization's leads are spread over tiers and statuses, counted by the database.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::LeadBook;
use crate::entity::lead;
use crate::error::LeadError;
use crate::model::{LeadStatus, LeadTier};

/// Leads of one tier (`None`: not scored yet) and one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadCount {
    pub tier: Option<LeadTier>,
    pub status: LeadStatus,
    pub leads: u64,
}

impl LeadBook {
    /// The organization's leads grouped by tier and status: one `GROUP BY`, however many.
    pub async fn count_leads(&self, organization_id: &str) -> Result<Vec<LeadCount>, LeadError> {
        let rows: Vec<(String, String, i64)> = lead::Entity::find()
            .select_only()
            .column(lead::Column::Tier)
            .column(lead::Column::Status)
            .column_as(Expr::col(lead::Column::Id).count(), "leads")
            .filter(lead::Column::OrganizationId.eq(organization_id))
            .group_by(lead::Column::Tier)
            .group_by(lead::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(tier, status, leads)| {
                Some(LeadCount {
                    tier: LeadTier::from_stored(&tier),
                    // A status nobody defined is not counted as any of them.
                    status: LeadStatus::from_stored(&status)?,
                    leads: u64::try_from(leads).unwrap_or(0),
                })
            })
            .collect())
    }
}
