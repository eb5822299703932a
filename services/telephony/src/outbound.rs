//! Calls callmesh starts or steers: outbound agent calls through ElevenLabs (recorded before
//! the provider is asked, so a retried request never calls twice), redirects of live calls
//! through Twilio, listing, and transcription of stored recordings.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use callmesh_runtime::ServiceError;
use callmesh_runtime::errors::is_unique_violation;
use callmesh_runtime::paging::Page;

use crate::calls::{CallBook, to_call};
use crate::entity::call;
use crate::model::{Call, CallRef, CallStatus, Direction};
use crate::providers::elevenlabs::Transcription;
use crate::providers::with_retries;

#[derive(Debug, Clone)]
pub struct OutboundCall {
    pub organization_id: String,
    pub lead_id: String,
    pub to_number: String,
    pub agent_id: String,
    pub agent_phone_number_id: String,
    pub dynamic_variables: HashMap<String, String>,
}

impl CallBook {
    pub async fn start_outbound(
        &self,
        key: &str,
        request: OutboundCall,
    ) -> Result<Call, ServiceError> {
        if let Some(existing) = call::Entity::find()
            .filter(call::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
        {
            return to_call(existing);
        }
        let now = Utc::now();
        let row = call::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            idempotency_key: Set(key.to_owned()),
            organization_id: Set(request.organization_id.clone()),
            lead_id: Set(request.lead_id.clone()),
            conversation_id: Set(None),
            call_sid: Set(None),
            agent_id: Set(request.agent_id.clone()),
            direction: Set(Direction::Outbound.as_str().to_owned()),
            status: Set(CallStatus::Queued.as_str().to_owned()),
            from_number: Set(String::new()),
            to_number: Set(request.to_number.clone()),
            duration_secs: Set(0),
            cost: Set(0.0),
            termination_reason: Set(String::new()),
            answered_by: Set(String::new()),
            last_sequence_number: Set(0),
            started_at: Set(Some(now)),
            ended_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let row = match row.insert(&self.db).await {
            Ok(row) => row,
            // A concurrent request with the same key won the insert: answer its call.
            Err(e) if is_unique_violation(&e) => {
                let existing = call::Entity::find()
                    .filter(call::Column::IdempotencyKey.eq(key))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| ServiceError::Internal(format!("call {key} vanished")))?;
                return to_call(existing);
            }
            Err(e) => return Err(e.into()),
        };
        let started = with_retries(|| {
            self.elevenlabs.start_call(
                &request.agent_id,
                &request.agent_phone_number_id,
                &request.to_number,
                &request.dynamic_variables,
            )
        })
        .await;
        let mut active = row.into_active_model();
        active.updated_at = Set(Utc::now());
        match started {
            Ok(started) => {
                active.conversation_id = Set(started.conversation_id.clone());
                active.call_sid = Set(started.call_sid.clone());
                active.status = Set(CallStatus::Initiated.as_str().to_owned());
                let updated = active.update(&self.db).await?;
                tracing::info!(call_id = %updated.id, conversation_id = ?updated.conversation_id, "outbound call started");
                to_call(updated)
            }
            // The call never started: forget it, so that a later try (a replay) places it.
            Err(error) if error.is_transient() => {
                active.delete(&self.db).await?;
                Err(error.into())
            }
            Err(error) => {
                active.status = Set(CallStatus::Failed.as_str().to_owned());
                active.termination_reason = Set(error.to_string());
                active.ended_at = Set(Some(Utc::now()));
                active.update(&self.db).await?;
                Err(error.into())
            }
        }
    }

    /// Replaces a live call's instructions (e.g. dial a human) through Twilio.
    pub async fn redirect(&self, call_sid: &str, twiml: &str) -> Result<Call, ServiceError> {
        let call = self.call(&CallRef::Sid(call_sid.to_owned())).await?;
        self.twilio.redirect_call(call_sid, twiml).await?;
        tracing::info!(call_id = %call.id, "live call redirected");
        Ok(call)
    }

    /// An organization's calls, newest first, optionally only one lead's.
    pub async fn list(
        &self,
        organization_id: &str,
        lead_id: Option<&str>,
        page: &Page,
    ) -> Result<Vec<Call>, ServiceError> {
        let mut query = call::Entity::find()
            .filter(call::Column::OrganizationId.eq(organization_id))
            .order_by_desc(call::Column::Id);
        if let Some(lead_id) = lead_id {
            query = query.filter(call::Column::LeadId.eq(lead_id));
        }
        if let Some(before) = &page.after {
            query = query.filter(call::Column::Id.lt(before.as_str()));
        }
        query
            .limit(page.size)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_call)
            .collect()
    }

    /// Transcribes a stored recording with the configured speech-to-text endpoint.
    pub async fn transcribe(&self, recording_id: &str) -> Result<Transcription, ServiceError> {
        let (recording, audio) = self.recording_audio(recording_id).await?;
        Ok(self
            .elevenlabs
            .transcribe(audio, &recording.content_type)
            .await?)
    }
}
