//! Human control: while an operator has taken a conversation over, nothing automatic answers
//! the lead. Setting the state it already has changes nothing (`changed == false`). The state
//! lives in the context database, so every replica of every service sees one answer.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, QueryTrait, Set};

use callmesh_runtime::ServiceError;

use crate::entity::human_control;
use crate::memory::Memory;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanControl {
    pub lead_id: String,
    pub enabled: bool,
    pub operator: String,
    pub note: String,
    pub changed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct ControlChange {
    pub organization_id: String,
    pub lead_id: String,
    pub enabled: bool,
    pub operator: String,
    pub note: String,
}

impl Memory {
    pub async fn human_control(&self, lead_id: &str) -> Result<HumanControl, ServiceError> {
        let row = human_control::Entity::find_by_id(lead_id)
            .one(self.db())
            .await?;
        Ok(match row {
            Some(row) => to_control(row),
            None => HumanControl {
                lead_id: lead_id.to_owned(),
                enabled: false,
                operator: String::new(),
                note: String::new(),
                changed_at: None,
            },
        })
    }

    /// Sets `change.lead_id`'s control in one statement: insert, or update a row whose state
    /// differs. Replicas racing on one lead cannot both report a change, and neither fails on
    /// the other's insert.
    pub async fn set_human_control(
        &self,
        key: &str,
        change: ControlChange,
    ) -> Result<(HumanControl, bool), ServiceError> {
        use human_control::Column;
        let lead_id = change.lead_id.clone();
        let row = human_control::ActiveModel {
            lead_id: Set(change.lead_id),
            organization_id: Set(change.organization_id),
            enabled: Set(change.enabled),
            operator: Set(change.operator),
            note: Set(change.note),
            last_idempotency_key: Set(key.to_owned()),
            changed_at: Set(Utc::now()),
        };
        let mut upsert = human_control::Entity::insert(row)
            .on_conflict(
                OnConflict::column(Column::LeadId)
                    .update_columns([
                        Column::Enabled,
                        Column::Operator,
                        Column::Note,
                        Column::LastIdempotencyKey,
                        Column::ChangedAt,
                    ])
                    .action_and_where(
                        Expr::col((human_control::Entity, Column::Enabled)).ne(change.enabled),
                    )
                    .to_owned(),
            )
            .into_query();
        upsert.returning_all();
        let backend = self.db().get_database_backend();
        match self.db().query_one(backend.build(&upsert)).await? {
            Some(row) => {
                let row = human_control::Model::from_query_result(&row, "")?;
                tracing::info!(lead_id = %row.lead_id, enabled = row.enabled, "human control changed");
                Ok((to_control(row), true))
            }
            None => {
                let row = human_control::Entity::find_by_id(lead_id.as_str())
                    .one(self.db())
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Internal(format!("human control of {lead_id} vanished"))
                    })?;
                Ok((to_control(row), false))
            }
        }
    }
}

fn to_control(row: human_control::Model) -> HumanControl {
    HumanControl {
        lead_id: row.lead_id,
        enabled: row.enabled,
        operator: row.operator,
        note: row.note,
        changed_at: Some(row.changed_at),
    }
}
