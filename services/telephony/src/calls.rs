//! `CallBook`: call records, their forward-only status machine, and recordings. A call is
//! found by CallSid or ElevenLabs conversation id, whichever arrives first, and created on first
//! sight (its audio may arrive before its transcript); unique indexes make concurrent first
//! sightings agree on one record.

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait, TryIntoModel,
};

use callmesh_runtime::ServiceError;
use callmesh_runtime::batch::{all_or_each, insert_new};
use callmesh_runtime::lookup::find_one;

use crate::entity::{call, call_status_change, recording};
use crate::model::{
    Call, CallOutcome, CallRef, CallStatus, Direction, Recording, StatusChange, StatusUpdate,
};
use crate::providers::elevenlabs::ElevenLabsApi;
use crate::providers::twilio::TwilioApi;

#[derive(Clone)]
pub struct CallBook {
    pub(crate) db: DatabaseConnection,
    storage_dir: PathBuf,
    pub(crate) twilio: TwilioApi,
    pub(crate) elevenlabs: ElevenLabsApi,
}

/// Audio to keep for a call.
#[derive(Debug, Clone)]
pub struct NewRecording {
    pub call: CallRef,
    pub recording_sid: Option<String>,
    pub source: AudioSource,
    pub content_type: String,
    pub duration_secs: u32,
}

#[derive(Debug, Clone)]
pub enum AudioSource {
    /// The audio itself (ElevenLabs' `post_call_audio`).
    Bytes(Vec<u8>),
    /// Media on Twilio's API host, fetched with the account's credentials.
    TwilioUrl(String),
}

impl CallBook {
    pub fn new(
        db: DatabaseConnection,
        storage_dir: PathBuf,
        twilio: TwilioApi,
        elevenlabs: ElevenLabsApi,
    ) -> Self {
        CallBook {
            db,
            storage_dir,
            twilio,
            elevenlabs,
        }
    }

    pub async fn call(&self, reference: &CallRef) -> Result<Call, ServiceError> {
        let model = self
            .find(reference)
            .await?
            .ok_or_else(|| ServiceError::not_found("call", describe(reference)))?;
        to_call(model)
    }

    /// Records a finished call's outcome, creating the call when callmesh has not seen it.
    /// Facts already known are completed, never erased; the status only moves forward.
    pub async fn record_outcome(
        &self,
        key: &str,
        outcome: CallOutcome,
    ) -> Result<Call, ServiceError> {
        let txn = self.db.begin().await?;
        let call = record_outcome_in(&txn, key, &outcome).await?;
        txn.commit().await?;
        tracing::info!(call_id = %call.id, conversation_id = ?call.conversation_id, status = ?call.status, "call outcome recorded");
        Ok(call)
    }

    /// [`CallBook::record_outcome`] for many calls, in one transaction (see
    /// [`all_or_each`]); `outcomes` are `(key, outcome)`.
    pub async fn record_outcomes(
        &self,
        outcomes: &[(String, CallOutcome)],
    ) -> Vec<Result<Call, ServiceError>> {
        let recorded = all_or_each(
            &self.db,
            outcomes,
            record_outcomes_in,
            async |txn, (key, outcome)| record_outcome_in(txn, key, outcome).await,
        )
        .await;
        for call in recorded.iter().flatten() {
            tracing::info!(call_id = %call.id, conversation_id = ?call.conversation_id, status = ?call.status, "call outcome recorded");
        }
        recorded
    }
}

/// Records many outcomes inside `txn`. Calls first seen here (a conversation callmesh does not
/// know yet, at its first outcome in the batch) are found missing with one query and inserted
/// with one statement; every other outcome is recorded one at a time, after them, as alone.
async fn record_outcomes_in(
    txn: &DatabaseTransaction,
    outcomes: &[(String, CallOutcome)],
) -> Result<Vec<Call>, ServiceError> {
    let conversations: Vec<&str> = outcomes
        .iter()
        .filter_map(|(_, outcome)| outcome.conversation_id.as_deref())
        .collect();
    let known: HashSet<String> = call::Entity::find()
        .select_only()
        .column(call::Column::ConversationId)
        .filter(call::Column::ConversationId.is_in(conversations))
        .lock_exclusive()
        .into_tuple::<Option<String>>()
        .all(txn)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let mut first_seen = HashSet::new();
    let fresh: Vec<Option<call::Model>> = outcomes
        .iter()
        .map(|(key, outcome)| match outcome.conversation_id.as_deref() {
            Some(conversation)
                if !known.contains(conversation) && first_seen.insert(conversation) =>
            {
                Some(first_sight(key, outcome))
            }
            _ => None,
        })
        .collect();
    let rows: Vec<call::ActiveModel> = fresh
        .iter()
        .flatten()
        .map(|model| model.clone().into_active_model())
        .collect();
    let inserted = insert_new(txn, rows, call::Column::Id).await?;
    let mut calls = Vec::with_capacity(outcomes.len());
    for ((key, outcome), fresh) in outcomes.iter().zip(fresh) {
        calls.push(match fresh {
            Some(created) if inserted.contains(&created.id) => to_call(created)?,
            // Known, repeated, or taken meanwhile (its CallSid another call's): as alone.
            _ => record_outcome_in(txn, key, outcome).await?,
        });
    }
    Ok(calls)
}

/// Records one outcome inside `txn` (see [`CallBook::record_outcome`]).
async fn record_outcome_in(
    txn: &DatabaseTransaction,
    key: &str,
    outcome: &CallOutcome,
) -> Result<Call, ServiceError> {
    let reference = match (&outcome.conversation_id, &outcome.call_sid) {
        (Some(conversation), _) => CallRef::Conversation(conversation.clone()),
        (None, Some(sid)) => CallRef::Sid(sid.clone()),
        (None, None) => {
            return Err(ServiceError::invalid(
                "conversation_id",
                "a conversation_id or call_sid is required",
            ));
        }
    };
    let taken = || {
        ServiceError::Conflict(format!(
            "call_sid {} already belongs to another call",
            outcome.call_sid.clone().unwrap_or_default()
        ))
    };
    // On first sight one INSERT of the whole record.
    let current = match find_locked(txn, &reference).await? {
        Some(current) => current,
        None => {
            let created = first_sight(key, outcome);
            let inserted = call::Entity::insert(created.clone().into_active_model())
                .on_conflict(OnConflict::new().do_nothing().to_owned())
                .exec_without_returning(txn)
                .await?;
            if inserted == 1 {
                return to_call(created);
            }
            // Created meanwhile by another request (ours changes it below), or the
            // CallSid is another call's.
            find_locked(txn, &reference).await?.ok_or_else(taken)?
        }
    };
    let status = CallStatus::from_stored(&current.status).unwrap_or(CallStatus::Pending);
    let mut active = current.clone().into_active_model();
    fill(
        &mut active.organization_id,
        &current.organization_id,
        &outcome.organization_id,
    );
    fill(&mut active.lead_id, &current.lead_id, &outcome.lead_id);
    fill(&mut active.agent_id, &current.agent_id, &outcome.agent_id);
    fill(
        &mut active.from_number,
        &current.from_number,
        &outcome.from_number,
    );
    fill(
        &mut active.to_number,
        &current.to_number,
        &outcome.to_number,
    );
    fill(
        &mut active.direction,
        &current.direction,
        outcome.direction.as_str(),
    );
    if current.conversation_id.is_none() && outcome.conversation_id.is_some() {
        active.conversation_id = Set(outcome.conversation_id.clone());
    }
    if current.call_sid.is_none() && outcome.call_sid.is_some() {
        active.call_sid = Set(outcome.call_sid.clone());
    }
    if status.advances_to(outcome.status) {
        active.status = Set(outcome.status.as_str().to_owned());
    }
    if outcome.duration_secs > 0 {
        active.duration_secs = Set(i32::try_from(outcome.duration_secs).unwrap_or(i32::MAX));
    }
    if outcome.cost > 0.0 {
        active.cost = Set(outcome.cost);
    }
    if !outcome.termination_reason.is_empty() {
        active.termination_reason = Set(outcome.termination_reason.clone());
    }
    if outcome.started_at.is_some() {
        active.started_at = Set(outcome.started_at.map(stored_precision));
    }
    if outcome.ended_at.is_some() {
        active.ended_at = Set(outcome.ended_at.map(stored_precision));
    }
    active.updated_at = Set(stored_precision(Utc::now()));
    let updated = active
        .clone()
        .try_into_model()
        .map_err(|e| ServiceError::Internal(format!("call {}: {e}", current.id)))?;
    // Only the changed columns, and no read-back: the record is known.
    call::Entity::update_many()
        .set(active)
        .filter(call::Column::Id.eq(current.id.as_str()))
        .exec(txn)
        .await
        .map_err(|e| {
            if callmesh_runtime::errors::is_unique_violation(&e) {
                taken()
            } else {
                e.into()
            }
        })?;
    to_call(updated)
}

impl CallBook {
    /// Applies a status callback once per key. Every callback is kept in the call's history;
    /// only one that moves the call forward (and is not older by sequence number) changes it.
    pub async fn update_status(
        &self,
        key: &str,
        update: StatusUpdate,
    ) -> Result<(Call, bool), ServiceError> {
        let txn = self.db.begin().await?;
        let Some(current) = find_locked(&txn, &update.call).await? else {
            txn.rollback().await?;
            return Err(ServiceError::not_found("call", describe(&update.call)));
        };
        let change_id = uuid::Uuid::now_v7().to_string();
        let inserted = call_status_change::Entity::insert(call_status_change::ActiveModel {
            id: Set(change_id.clone()),
            idempotency_key: Set(key.to_owned()),
            call_id: Set(current.id.clone()),
            status: Set(update.status.as_str().to_owned()),
            sequence_number: Set(update.sequence_number),
            applied: Set(false),
            raw_payload_json: Set(update.raw_payload_json.clone()),
            occurred_at: Set(update.occurred_at),
        })
        .on_conflict(
            OnConflict::column(call_status_change::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            txn.rollback().await?;
            return Ok((to_call(current)?, false));
        }
        let status = CallStatus::from_stored(&current.status).unwrap_or(CallStatus::Pending);
        let stale = update.sequence_number > 0
            && current.last_sequence_number > 0
            && update.sequence_number <= current.last_sequence_number;
        let applies = !stale && status.advances_to(update.status);
        call_status_change::Entity::update_many()
            .col_expr(call_status_change::Column::Applied, applies.into())
            .filter(call_status_change::Column::Id.eq(change_id))
            .exec(&txn)
            .await?;
        let mut active = current.clone().into_active_model();
        if applies {
            active.status = Set(update.status.as_str().to_owned());
            if update.status.is_terminal() && current.ended_at.is_none() {
                active.ended_at = Set(Some(update.occurred_at));
            }
            if !update.reason.is_empty() {
                active.termination_reason = Set(update.reason.clone());
            }
        }
        if update.sequence_number > current.last_sequence_number {
            active.last_sequence_number = Set(update.sequence_number);
        }
        if update.duration_secs > 0 {
            active.duration_secs = Set(i32::try_from(update.duration_secs).unwrap_or(i32::MAX));
        }
        if !update.answered_by.is_empty() {
            active.answered_by = Set(update.answered_by.clone());
        }
        active.updated_at = Set(Utc::now());
        let updated = active.update(&txn).await?;
        txn.commit().await?;
        tracing::info!(call_id = %updated.id, status = update.status.as_str(), applied = applies, "call status callback");
        Ok((to_call(updated)?, applies))
    }

    pub async fn status_changes(&self, call_id: &str) -> Result<Vec<StatusChange>, ServiceError> {
        let rows = call_status_change::Entity::find()
            .filter(call_status_change::Column::CallId.eq(call_id))
            .order_by_asc(call_status_change::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| StatusChange {
                status: CallStatus::from_stored(&row.status).unwrap_or(CallStatus::Pending),
                call_id: row.call_id,
                sequence_number: row.sequence_number,
                applied: row.applied,
                raw_payload_json: row.raw_payload_json,
                occurred_at: row.occurred_at,
            })
            .collect())
    }

    /// Stores audio under the storage directory and links it to its call (created when unseen:
    /// ElevenLabs may send the audio before the transcript). Once per key.
    pub async fn record_recording(
        &self,
        key: &str,
        new: NewRecording,
    ) -> Result<(Recording, bool), ServiceError> {
        if let Some(existing) = recording::Entity::find()
            .filter(recording::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
        {
            return Ok((to_recording(existing), false));
        }
        let (audio, content_type) = match new.source {
            AudioSource::Bytes(bytes) => (bytes, new.content_type),
            AudioSource::TwilioUrl(url) => {
                if !self.twilio.owns(&url) {
                    return Err(ServiceError::invalid(
                        "source_url",
                        "recordings are fetched from the configured Twilio API host only",
                    ));
                }
                self.twilio.download(&url).await?
            }
        };
        let call = self.find_or_create(key, &new.call, "").await?;
        let id = uuid::Uuid::now_v7().to_string();
        let extension = match content_type.as_str() {
            "audio/wav" | "audio/x-wav" => "wav",
            "audio/ogg" => "ogg",
            _ => "mp3",
        };
        let relative = format!("recordings/{}/{id}.{extension}", call.id);
        self.write_atomically(&relative, &audio).await?;
        let inserted = recording::Entity::insert(recording::ActiveModel {
            id: Set(id),
            idempotency_key: Set(key.to_owned()),
            call_id: Set(call.id.clone()),
            recording_sid: Set(new.recording_sid),
            storage_path: Set(relative.clone()),
            content_type: Set(content_type),
            duration_secs: Set(i32::try_from(new.duration_secs).unwrap_or(i32::MAX)),
            created_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(recording::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        if inserted == 0 {
            // A concurrent call with the same key won; our file is surplus.
            let _ = tokio::fs::remove_file(self.storage_dir.join(&relative)).await;
        }
        let stored = recording::Entity::find()
            .filter(recording::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("recording {key} vanished")))?;
        tracing::info!(call_id = %call.id, path = %stored.storage_path, "recording stored");
        Ok((to_recording(stored), inserted == 1))
    }

    pub async fn recordings(&self, call_id: &str) -> Result<Vec<Recording>, ServiceError> {
        let rows = recording::Entity::find()
            .filter(recording::Column::CallId.eq(call_id))
            .order_by_asc(recording::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(to_recording).collect())
    }

    /// Reads a stored recording back.
    pub async fn recording_audio(
        &self,
        recording_id: &str,
    ) -> Result<(Recording, Vec<u8>), ServiceError> {
        let row = recording::Entity::find_by_id(recording_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found("recording", recording_id))?;
        let bytes = tokio::fs::read(self.storage_dir.join(&row.storage_path))
            .await
            .map_err(|e| ServiceError::Internal(format!("reading {}: {e}", row.storage_path)))?;
        Ok((to_recording(row), bytes))
    }

    async fn write_atomically(&self, relative: &str, bytes: &[u8]) -> Result<(), ServiceError> {
        let path = self.storage_dir.join(relative);
        let io = |e: std::io::Error| ServiceError::Internal(format!("storing {relative}: {e}"));
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, bytes).await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        Ok(())
    }

    async fn find(&self, reference: &CallRef) -> Result<Option<call::Model>, ServiceError> {
        find_in(&self.db, reference).await
    }

    async fn find_or_create(
        &self,
        key: &str,
        reference: &CallRef,
        organization_id: &str,
    ) -> Result<call::Model, ServiceError> {
        if let Some(found) = self.find(reference).await? {
            return Ok(found);
        }
        let (conversation_id, call_sid) = match reference {
            CallRef::Conversation(c) => (Some(c.clone()), None),
            CallRef::Sid(s) => (None, Some(s.clone())),
            CallRef::Id(id) => return Err(ServiceError::not_found("call", id.clone())),
        };
        let now = Utc::now();
        call::Entity::insert(call::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            idempotency_key: Set(format!("{key}#{}", uuid::Uuid::new_v4())),
            organization_id: Set(organization_id.to_owned()),
            lead_id: Set(String::new()),
            conversation_id: Set(conversation_id),
            call_sid: Set(call_sid),
            agent_id: Set(String::new()),
            direction: Set(Direction::Unknown.as_str().to_owned()),
            status: Set(CallStatus::Pending.as_str().to_owned()),
            from_number: Set(String::new()),
            to_number: Set(String::new()),
            duration_secs: Set(0),
            cost: Set(0.0),
            termination_reason: Set(String::new()),
            answered_by: Set(String::new()),
            last_sequence_number: Set(0),
            started_at: Set(None),
            ended_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(&self.db)
        .await?;
        self.find(reference)
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("call {} vanished", describe(reference))))
    }
}

async fn find_locked(
    txn: &sea_orm::DatabaseTransaction,
    reference: &CallRef,
) -> Result<Option<call::Model>, ServiceError> {
    find(txn, reference, true).await
}

async fn find_in(
    db: &impl sea_orm::ConnectionTrait,
    reference: &CallRef,
) -> Result<Option<call::Model>, ServiceError> {
    find(db, reference, false).await
}

async fn find(
    db: &impl sea_orm::ConnectionTrait,
    reference: &CallRef,
    lock: bool,
) -> Result<Option<call::Model>, ServiceError> {
    let (column, value) = match reference {
        CallRef::Id(id) => (call::Column::Id, id),
        CallRef::Sid(sid) => (call::Column::CallSid, sid),
        CallRef::Conversation(c) => (call::Column::ConversationId, c),
    };
    Ok(find_one::<call::Entity, _, 1>(db, [(column, value.clone().into())], lock).await?)
}

/// Sets `slot` to `new` when the stored value is empty and `new` is not: facts are completed,
/// never erased.
fn fill(slot: &mut sea_orm::ActiveValue<String>, current: &str, new: &str) {
    if current.is_empty() && !new.is_empty() {
        *slot = Set(new.to_owned());
    }
}

/// `at` as the databases keep it (microseconds), so an answer built in memory is what a read
/// returns.
fn stored_precision(at: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    use chrono::SubsecRound;
    at.trunc_subsecs(6)
}

/// The record of a call first seen through its outcome: everything the outcome says.
fn first_sight(key: &str, outcome: &CallOutcome) -> call::Model {
    let now = stored_precision(Utc::now());
    let status = if CallStatus::Pending.advances_to(outcome.status) {
        outcome.status
    } else {
        CallStatus::Pending
    };
    call::Model {
        id: uuid::Uuid::now_v7().to_string(),
        idempotency_key: format!("{key}#{}", uuid::Uuid::new_v4()),
        organization_id: outcome.organization_id.clone(),
        lead_id: outcome.lead_id.clone(),
        conversation_id: outcome.conversation_id.clone(),
        call_sid: outcome.call_sid.clone(),
        agent_id: outcome.agent_id.clone(),
        direction: outcome.direction.as_str().to_owned(),
        status: status.as_str().to_owned(),
        from_number: outcome.from_number.clone(),
        to_number: outcome.to_number.clone(),
        duration_secs: i32::try_from(outcome.duration_secs).unwrap_or(i32::MAX),
        cost: outcome.cost.max(0.0),
        termination_reason: outcome.termination_reason.clone(),
        answered_by: String::new(),
        last_sequence_number: 0,
        started_at: outcome.started_at.map(stored_precision),
        ended_at: outcome.ended_at.map(stored_precision),
        created_at: now,
        updated_at: now,
    }
}

fn describe(reference: &CallRef) -> String {
    match reference {
        CallRef::Id(id) => id.clone(),
        CallRef::Sid(sid) => format!("with CallSid {sid}"),
        CallRef::Conversation(c) => format!("of conversation {c}"),
    }
}

pub(crate) fn to_call(model: call::Model) -> Result<Call, ServiceError> {
    let status = CallStatus::from_stored(&model.status).ok_or_else(|| {
        ServiceError::Internal(format!(
            "call {}: unknown status {:?}",
            model.id, model.status
        ))
    })?;
    Ok(Call {
        status,
        direction: Direction::from_stored(&model.direction),
        duration_secs: u32::try_from(model.duration_secs).unwrap_or(0),
        id: model.id,
        organization_id: model.organization_id,
        lead_id: model.lead_id,
        conversation_id: model.conversation_id,
        call_sid: model.call_sid,
        agent_id: model.agent_id,
        from_number: model.from_number,
        to_number: model.to_number,
        cost: model.cost,
        termination_reason: model.termination_reason,
        answered_by: model.answered_by,
        last_sequence_number: model.last_sequence_number,
        started_at: model.started_at,
        ended_at: model.ended_at,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

fn to_recording(model: recording::Model) -> Recording {
    Recording {
        duration_secs: u32::try_from(model.duration_secs).unwrap_or(0),
        id: model.id,
        call_id: model.call_id,
        recording_sid: model.recording_sid,
        storage_path: model.storage_path,
        content_type: model.content_type,
        created_at: model.created_at,
    }
}
