//! Human control: while an operator has taken a conversation over, nothing automatic answers
//! the lead. Setting the state it already has changes nothing (`changed == false`).

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};

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

    pub async fn set_human_control(
        &self,
        key: &str,
        change: ControlChange,
    ) -> Result<(HumanControl, bool), ServiceError> {
        let existing = human_control::Entity::find_by_id(change.lead_id.as_str())
            .one(self.db())
            .await?;
        let now = Utc::now();
        let row = match existing {
            Some(row) if row.enabled == change.enabled => return Ok((to_control(row), false)),
            Some(row) => {
                let mut active = row.into_active_model();
                active.enabled = Set(change.enabled);
                active.operator = Set(change.operator);
                active.note = Set(change.note);
                active.last_idempotency_key = Set(key.to_owned());
                active.changed_at = Set(now);
                active.update(self.db()).await?
            }
            None => {
                human_control::ActiveModel {
                    lead_id: Set(change.lead_id),
                    organization_id: Set(change.organization_id),
                    enabled: Set(change.enabled),
                    operator: Set(change.operator),
                    note: Set(change.note),
                    last_idempotency_key: Set(key.to_owned()),
                    changed_at: Set(now),
                }
                .insert(self.db())
                .await?
            }
        };
        tracing::info!(lead_id = %row.lead_id, enabled = row.enabled, "human control changed");
        Ok((to_control(row), true))
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
