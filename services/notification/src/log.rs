//! `EventLog`: the append-only log of everything that happened, in id order. Publishing is
//! idempotent on the caller's key (a unique index), so a retried flow logs an event once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use callmesh_runtime::ServiceError;

use crate::entity::event;

/// What an event is about. Stored by name; the names are the SSE event names too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    CallStarted,
    CallEnded,
    CallStatus,
    CallFailed,
    ConversationEvent,
    SmsReceived,
    SmsSent,
    SmsStatus,
    RecordingAvailable,
    AnalysisCompleted,
    LeadUpdated,
    HumanTakeover,
    HumanReleased,
    CrmDeliveryFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::CallStarted,
        EventKind::CallEnded,
        EventKind::CallStatus,
        EventKind::CallFailed,
        EventKind::ConversationEvent,
        EventKind::SmsReceived,
        EventKind::SmsSent,
        EventKind::SmsStatus,
        EventKind::RecordingAvailable,
        EventKind::AnalysisCompleted,
        EventKind::LeadUpdated,
        EventKind::HumanTakeover,
        EventKind::HumanReleased,
        EventKind::CrmDeliveryFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CallStarted => "call_started",
            EventKind::CallEnded => "call_ended",
            EventKind::CallStatus => "call_status",
            EventKind::CallFailed => "call_failed",
            EventKind::ConversationEvent => "conversation_event",
            EventKind::SmsReceived => "sms_received",
            EventKind::SmsSent => "sms_sent",
            EventKind::SmsStatus => "sms_status",
            EventKind::RecordingAvailable => "recording_available",
            EventKind::AnalysisCompleted => "analysis_completed",
            EventKind::LeadUpdated => "lead_updated",
            EventKind::HumanTakeover => "human_takeover",
            EventKind::HumanReleased => "human_released",
            EventKind::CrmDeliveryFailed => "crm_delivery_failed",
        }
    }

    pub fn from_stored(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: u64,
    pub organization_id: String,
    pub lead_id: String,
    pub kind: EventKind,
    pub payload_json: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub organization_id: String,
    pub lead_id: String,
    pub kind: EventKind,
    pub payload_json: String,
    pub occurred_at: DateTime<Utc>,
}

/// Which events a reader wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub organization_id: Option<String>,
    pub lead_id: Option<String>,
    pub kinds: Vec<EventKind>,
}

#[derive(Clone)]
pub struct EventLog {
    db: DatabaseConnection,
}

impl EventLog {
    pub fn new(db: DatabaseConnection) -> Self {
        EventLog { db }
    }

    /// Appends `event` unless `key` was already published; answers the logged event.
    pub async fn publish(&self, key: &str, event: NewEvent) -> Result<(Event, bool), ServiceError> {
        let inserted = event::Entity::insert(event::ActiveModel {
            idempotency_key: Set(key.to_owned()),
            organization_id: Set(event.organization_id),
            lead_id: Set(event.lead_id),
            event_type: Set(event.kind.as_str().to_owned()),
            payload_json: Set(event.payload_json),
            occurred_at: Set(event.occurred_at),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(event::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        let stored = event::Entity::find()
            .filter(event::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("event {key} vanished")))?;
        let event = to_event(stored)?;
        if inserted == 1 {
            tracing::info!(event_id = event.id, kind = event.kind.as_str(), organization_id = %event.organization_id, "event published");
        }
        Ok((event, inserted == 1))
    }

    /// Events matching `filter` with an id above `after`, oldest first.
    pub async fn list(
        &self,
        filter: &EventFilter,
        after: u64,
        limit: u64,
    ) -> Result<Vec<Event>, ServiceError> {
        let mut query = event::Entity::find()
            .filter(event::Column::Id.gt(i64::try_from(after).unwrap_or(i64::MAX)))
            .order_by_asc(event::Column::Id)
            .limit(limit);
        if let Some(organization_id) = &filter.organization_id {
            query = query.filter(event::Column::OrganizationId.eq(organization_id.as_str()));
        }
        if let Some(lead_id) = &filter.lead_id {
            query = query.filter(event::Column::LeadId.eq(lead_id.as_str()));
        }
        if !filter.kinds.is_empty() {
            query = query
                .filter(event::Column::EventType.is_in(filter.kinds.iter().map(|k| k.as_str())));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_event)
            .collect()
    }
}

fn to_event(model: event::Model) -> Result<Event, ServiceError> {
    let kind = EventKind::from_stored(&model.event_type).ok_or_else(|| {
        ServiceError::Internal(format!(
            "event {}: unknown type {:?}",
            model.id, model.event_type
        ))
    })?;
    Ok(Event {
        id: u64::try_from(model.id).unwrap_or(0),
        organization_id: model.organization_id,
        lead_id: model.lead_id,
        kind,
        payload_json: model.payload_json,
        occurred_at: model.occurred_at,
    })
}
