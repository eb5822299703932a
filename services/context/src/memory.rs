//! `Memory`: every message of a lead across voice and SMS, transcripts of finished calls,
//! conversation events, and the history a new call starts from. Appends are idempotent on the
//! caller's key (unique indexes), so a retried flow stores each thing once.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};

use callmesh_runtime::ServiceError;
use callmesh_runtime::batch::{all_or_each, insert_new};
use callmesh_runtime::paging::Page;

use crate::entity::{conversation_event, message, transcript};
use crate::model::{
    Caller, Channel, ConversationEvent, InitiationData, Message, NewMessage, NewTranscript, Role,
    Transcript,
};

/// How many recent messages the agent sees at the start of a call.
pub const CONTEXT_MESSAGES: u64 = 6;

/// Messages inserted by one statement.
const TURNS_PER_INSERT: usize = 500;

#[derive(Clone)]
pub struct Memory {
    db: DatabaseConnection,
}

impl Memory {
    pub fn new(db: DatabaseConnection) -> Self {
        Memory { db }
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn append_message(
        &self,
        key: &str,
        new: NewMessage,
    ) -> Result<(Message, bool), ServiceError> {
        let inserted = message::Entity::insert(message_row(key, new))
            .on_conflict(
                OnConflict::column(message::Column::IdempotencyKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        let stored = message::Entity::find()
            .filter(message::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("message {key} vanished")))?;
        Ok((to_message(stored)?, inserted == 1))
    }

    /// Stores a finished call's transcript and its turns as messages, all or nothing, once per
    /// conversation.
    pub async fn append_transcript(
        &self,
        key: &str,
        new: NewTranscript,
    ) -> Result<(u32, bool), ServiceError> {
        let txn = self.db.begin().await?;
        let appended = append_transcript_in(&txn, key, &new).await?;
        txn.commit().await?;
        log_transcript(&new, appended);
        Ok(appended)
    }

    /// [`Memory::append_transcript`] for many transcripts, `(key, transcript)`, in one
    /// transaction (see [`all_or_each`]).
    pub async fn append_transcripts(
        &self,
        transcripts: &[(String, NewTranscript)],
    ) -> Vec<Result<(u32, bool), ServiceError>> {
        let appended = all_or_each(
            &self.db,
            transcripts,
            append_transcripts_in,
            async |txn, (key, new)| append_transcript_in(txn, key, new).await,
        )
        .await;
        for ((_, new), result) in transcripts.iter().zip(&appended) {
            if let Ok(appended) = result {
                log_transcript(new, *appended);
            }
        }
        appended
    }

    pub async fn transcript(&self, conversation_id: &str) -> Result<Transcript, ServiceError> {
        let row = transcript::Entity::find_by_id(conversation_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found("transcript of conversation", conversation_id)
            })?;
        Ok(Transcript {
            turn_count: u32::try_from(row.turn_count).unwrap_or(0),
            conversation_id: row.conversation_id,
            organization_id: row.organization_id,
            lead_id: row.lead_id,
            summary: row.summary,
            started_at: row.started_at,
            created_at: row.created_at,
        })
    }

    pub async fn record_event(
        &self,
        key: &str,
        event: ConversationEvent,
    ) -> Result<(ConversationEvent, bool), ServiceError> {
        let inserted = conversation_event::Entity::insert(conversation_event::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            idempotency_key: Set(key.to_owned()),
            organization_id: Set(event.organization_id),
            lead_id: Set(event.lead_id),
            conversation_id: Set(event.conversation_id),
            event_type: Set(event.event_type),
            data_json: Set(event.data_json),
            occurred_at: Set(event.occurred_at),
            created_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(conversation_event::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        let stored = conversation_event::Entity::find()
            .filter(conversation_event::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("event {key} vanished")))?;
        Ok((to_event(stored), inserted == 1))
    }

    pub async fn events(
        &self,
        conversation_id: &str,
        page: &Page,
    ) -> Result<Vec<ConversationEvent>, ServiceError> {
        let mut query = conversation_event::Entity::find()
            .filter(conversation_event::Column::ConversationId.eq(conversation_id))
            .order_by_asc(conversation_event::Column::Id);
        if let Some(after) = &page.after {
            query = query.filter(conversation_event::Column::Id.gt(after.as_str()));
        }
        Ok(query
            .limit(page.size)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_event)
            .collect())
    }

    /// A lead's messages in the order they happened.
    /// A lead's or a conversation's messages, oldest first.
    pub async fn messages(&self, of: Of<'_>, page: &Page) -> Result<Vec<Message>, ServiceError> {
        let mut query = message::Entity::find().order_by_asc(message::Column::Id);
        query = match of {
            Of::Lead(lead_id) => query.filter(message::Column::LeadId.eq(lead_id)),
            Of::Conversation(id) => query.filter(message::Column::ConversationId.eq(id)),
        };
        if let Some(after) = &page.after {
            query = query.filter(message::Column::Id.gt(after.as_str()));
        }
        query
            .limit(page.size)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_message)
            .collect()
    }

    /// The variables a call about `caller` starts with.
    pub async fn initiation_data(&self, caller: Caller) -> Result<InitiationData, ServiceError> {
        // Three reads, at once: on PostgreSQL each takes its own connection, so the phone
        // waits for the slowest instead of all three in turn.
        let count = message::Entity::find()
            .filter(message::Column::LeadId.eq(caller.lead_id.as_str()))
            .count(&self.db);
        let recent = message::Entity::find()
            .filter(message::Column::LeadId.eq(caller.lead_id.as_str()))
            .order_by_desc(message::Column::OccurredAt)
            .order_by_desc(message::Column::Id)
            .limit(CONTEXT_MESSAGES)
            .all(&self.db);
        let summary = transcript::Entity::find()
            .filter(transcript::Column::LeadId.eq(caller.lead_id.as_str()))
            .filter(transcript::Column::Summary.ne(""))
            .order_by_desc(transcript::Column::CreatedAt)
            .one(&self.db);
        let (total, recent, latest_summary) = tokio::try_join!(count, recent, summary)?;
        let mut recent = recent
            .into_iter()
            .map(to_message)
            .collect::<Result<Vec<_>, _>>()?;
        recent.reverse();
        let latest_summary = latest_summary.map(|t| t.summary);
        let has_history = total > 0;
        Ok(InitiationData {
            conversation_context: format_context(&recent),
            customer_name: if caller.name.trim().is_empty() {
                "Customer".to_owned()
            } else {
                caller.name.trim().to_owned()
            },
            organization_name: caller.organization_name,
            organization_id: caller.organization_id,
            lead_status: if has_history {
                "Returning Customer"
            } else {
                "New Inquiry"
            }
            .to_owned(),
            previous_summary: latest_summary.unwrap_or(caller.summary),
            caller_type: if caller.existing {
                "existing_lead"
            } else {
                "new_caller"
            }
            .to_owned(),
            has_conversation_history: has_history,
            total_messages: u32::try_from(total).unwrap_or(u32::MAX),
            lead_id: caller.lead_id,
        })
    }
}

/// One line per message, oldest first: `Customer (SMS): Can you call me back?`.
pub fn format_context(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| {
            let channel = match m.channel {
                Channel::Voice => "call",
                Channel::Sms => "SMS",
            };
            format!("{} ({channel}): {}", m.role.speaker(), m.content)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whose messages.
#[derive(Debug, Clone, Copy)]
pub enum Of<'a> {
    Lead(&'a str),
    Conversation(&'a str),
}

fn message_row(key: &str, new: NewMessage) -> message::ActiveModel {
    message::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        idempotency_key: Set(key.to_owned()),
        organization_id: Set(new.organization_id),
        lead_id: Set(new.lead_id),
        channel: Set(new.channel.as_str().to_owned()),
        role: Set(new.role.as_str().to_owned()),
        content: Set(new.content),
        conversation_id: Set(new.conversation_id),
        external_id: Set(new.external_id),
        occurred_at: Set(new.occurred_at),
        created_at: Set(Utc::now()),
    }
}

fn to_message(row: message::Model) -> Result<Message, ServiceError> {
    let corrupt =
        |what: &str| ServiceError::Internal(format!("message {}: unknown {what}", row.id));
    Ok(Message {
        channel: Channel::from_stored(&row.channel).ok_or_else(|| corrupt("channel"))?,
        role: Role::from_stored(&row.role).ok_or_else(|| corrupt("role"))?,
        id: row.id,
        organization_id: row.organization_id,
        lead_id: row.lead_id,
        content: row.content,
        conversation_id: row.conversation_id,
        external_id: row.external_id,
        occurred_at: row.occurred_at,
        created_at: row.created_at,
    })
}

fn to_event(row: conversation_event::Model) -> ConversationEvent {
    ConversationEvent {
        id: row.id,
        organization_id: row.organization_id,
        lead_id: row.lead_id,
        conversation_id: row.conversation_id,
        event_type: row.event_type,
        data_json: row.data_json,
        occurred_at: row.occurred_at,
    }
}

fn log_transcript(new: &NewTranscript, (turns, created): (u32, bool)) {
    if created {
        tracing::info!(conversation_id = %new.conversation_id, lead_id = %new.lead_id, turns, "transcript stored");
    }
}

/// Stores one transcript inside `txn` (see [`Memory::append_transcript`]).
async fn append_transcript_in(
    txn: &DatabaseTransaction,
    key: &str,
    new: &NewTranscript,
) -> Result<(u32, bool), ServiceError> {
    let (appended, messages) = transcript_in(txn, key, new).await?;
    insert_messages(txn, messages).await?;
    Ok(appended)
}

/// Stores many transcripts inside `txn`: every conversation seen for the first time in the
/// batch with one statement, their messages with a few more; the rest (stored before, or
/// repeated in the batch) as alone, in order.
async fn append_transcripts_in(
    txn: &DatabaseTransaction,
    transcripts: &[(String, NewTranscript)],
) -> Result<Vec<(u32, bool)>, ServiceError> {
    let mut first_seen = HashSet::new();
    let mut fresh: Vec<Option<Vec<message::ActiveModel>>> = Vec::with_capacity(transcripts.len());
    let mut rows = Vec::new();
    for (key, new) in transcripts {
        if first_seen.insert(new.conversation_id.as_str()) {
            let (row, messages) = transcript_rows(key, new);
            rows.push(row);
            fresh.push(Some(messages));
        } else {
            fresh.push(None);
        }
    }
    let inserted = insert_new(txn, rows, transcript::Column::ConversationId).await?;
    let mut appended = Vec::with_capacity(transcripts.len());
    let mut messages = Vec::new();
    for ((key, new), fresh) in transcripts.iter().zip(fresh) {
        match fresh {
            Some(rows) if inserted.contains(&new.conversation_id) => {
                appended.push((u32::try_from(rows.len()).unwrap_or(u32::MAX), true));
                messages.extend(rows);
            }
            // Stored before, or repeated in this batch: as alone.
            _ => {
                let (answer, rows) = transcript_in(txn, key, new).await?;
                appended.push(answer);
                messages.extend(rows);
            }
        }
    }
    insert_messages(txn, messages).await?;
    Ok(appended)
}

/// Inserts `messages` a few hundred rows per statement (within the databases' limits on bound
/// values per statement).
async fn insert_messages(
    txn: &DatabaseTransaction,
    messages: Vec<message::ActiveModel>,
) -> Result<(), ServiceError> {
    for chunk in messages.chunks(TURNS_PER_INSERT) {
        message::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Records a transcript once per conversation: its answer (turns, created) and, when it is
/// new, the messages still to insert.
async fn transcript_in(
    txn: &DatabaseTransaction,
    key: &str,
    new: &NewTranscript,
) -> Result<((u32, bool), Vec<message::ActiveModel>), ServiceError> {
    let (row, messages) = transcript_rows(key, new);
    let inserted = transcript::Entity::insert(row)
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(txn)
        .await?;
    if inserted == 0 {
        let stored = transcript::Entity::find_by_id(new.conversation_id.as_str())
            .one(txn)
            .await?
            .map_or(0, |row| u32::try_from(row.turn_count).unwrap_or(0));
        return Ok(((stored, false), Vec::new()));
    }
    Ok((
        (u32::try_from(messages.len()).unwrap_or(u32::MAX), true),
        messages,
    ))
}

/// A new transcript's row and the messages of its turns (the empty ones left out).
fn transcript_rows(
    key: &str,
    new: &NewTranscript,
) -> (transcript::ActiveModel, Vec<message::ActiveModel>) {
    let started_at = new.started_at.unwrap_or_else(Utc::now);
    let messages: Vec<_> = new
        .turns
        .iter()
        .filter(|turn| !turn.message.trim().is_empty())
        .enumerate()
        .map(|(i, turn)| {
            let offset = Duration::milliseconds((turn.time_in_call_secs.max(0.0) * 1000.0) as i64);
            message_row(
                &format!("{key}#{i}"),
                NewMessage {
                    organization_id: new.organization_id.clone(),
                    lead_id: new.lead_id.clone(),
                    channel: new.channel,
                    role: turn.role,
                    content: turn.message.trim().to_owned(),
                    conversation_id: new.conversation_id.clone(),
                    external_id: String::new(),
                    // Keep turns in order even when several share a second.
                    occurred_at: started_at + offset + Duration::microseconds(i as i64),
                },
            )
        })
        .collect();
    let row = transcript::ActiveModel {
        conversation_id: Set(new.conversation_id.clone()),
        idempotency_key: Set(key.to_owned()),
        organization_id: Set(new.organization_id.clone()),
        lead_id: Set(new.lead_id.clone()),
        summary: Set(new.summary.clone()),
        turn_count: Set(i32::try_from(messages.len()).unwrap_or(i32::MAX)),
        started_at: Set(new.started_at),
        created_at: Set(Utc::now()),
    };
    (row, messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_reads_as_a_dialogue_across_channels() {
        let at = Utc::now();
        let message = |role, channel, content: &str| Message {
            id: String::new(),
            organization_id: String::new(),
            lead_id: String::new(),
            channel,
            role,
            content: content.to_owned(),
            conversation_id: String::new(),
            external_id: String::new(),
            occurred_at: at,
            created_at: at,
        };
        let text = format_context(&[
            message(Role::User, Channel::Sms, "Do you have the red bike?"),
            message(Role::Agent, Channel::Voice, "Yes, in medium."),
        ]);
        assert_eq!(
            text,
            "Customer (SMS): Do you have the red bike?\nAgent (call): Yes, in medium."
        );
    }
}
