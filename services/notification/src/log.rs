//! `EventLog`: the append-only log of everything that happened, in id order. Publishing is
//! idempotent on the caller's key (a unique index), so a retried flow logs an event once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use tokio::sync::{broadcast, mpsc, oneshot};

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

impl EventFilter {
    pub fn matches(&self, event: &Event) -> bool {
        self.organization_id
            .as_ref()
            .is_none_or(|o| *o == event.organization_id)
            && self.lead_id.as_ref().is_none_or(|l| *l == event.lead_id)
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
    }
}

/// How many events a live subscriber may fall behind the newest before it is cut off.
pub const LIVE_BUFFER: usize = 4096;

#[derive(Clone)]
pub struct EventLog {
    db: DatabaseConnection,
    live: broadcast::Sender<Event>,
    /// Publishing goes through one writer task: it appends what concurrent publishers hand it
    /// in one transaction and broadcasts the new events in id order after the commit, so live
    /// subscribers see events in id order and a resume point never skips a slower commit.
    writer: mpsc::Sender<PendingPublish>,
}

struct PendingPublish {
    key: String,
    event: NewEvent,
    done: oneshot::Sender<Result<(Event, bool), String>>,
}

/// Most events one commit takes.
const MAX_BATCH: usize = 512;

impl EventLog {
    pub fn new(db: DatabaseConnection) -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let (writer, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(db.clone(), live.clone(), queue));
        EventLog { db, live, writer }
    }

    /// Live events from now on; a receiver that falls `LIVE_BUFFER` behind gets `Lagged`.
    pub fn live(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// The oldest id still in the log (0 when it is empty).
    pub async fn oldest_id(&self) -> Result<u64, ServiceError> {
        let oldest = event::Entity::find()
            .order_by_asc(event::Column::Id)
            .one(&self.db)
            .await?;
        Ok(oldest
            .map(|e| u64::try_from(e.id).unwrap_or(0))
            .unwrap_or(0))
    }

    /// Drops events older than `keep`; resuming from before them then gets a reset.
    pub async fn prune(&self, keep: chrono::Duration) -> Result<u64, ServiceError> {
        let deleted = event::Entity::delete_many()
            .filter(event::Column::OccurredAt.lt(Utc::now() - keep))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Appends `event` unless `key` was already published; answers the logged event and
    /// whether it is new.
    pub async fn publish(&self, key: &str, event: NewEvent) -> Result<(Event, bool), ServiceError> {
        let (done, answer) = oneshot::channel();
        self.writer
            .send(PendingPublish {
                key: key.to_owned(),
                event,
                done,
            })
            .await
            .map_err(|_| ServiceError::Internal("the event writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| ServiceError::Internal("the event writer has stopped".into()))?
            .map_err(ServiceError::Internal)
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

async fn write_batches(
    db: DatabaseConnection,
    live: broadcast::Sender<Event>,
    mut queue: mpsc::Receiver<PendingPublish>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match append_batch(&db, &batch).await {
            Ok(logged) => {
                for (pending, (event, created)) in batch.drain(..).zip(logged) {
                    if created {
                        tracing::debug!(event_id = event.id, kind = event.kind.as_str(), organization_id = %event.organization_id, "event published");
                        // No receivers is fine: nobody is watching.
                        let _ = live.send(event.clone());
                    }
                    let _ = pending.done.send(Ok((event, created)));
                }
            }
            Err(error) => {
                tracing::error!(%error, size = batch.len(), "event log commit failed");
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err(error.to_string()));
                }
            }
        }
    }
}

/// Appends a batch in one transaction; answers each event as logged and whether it is new.
/// A key repeated within the batch is logged once.
async fn append_batch(
    db: &DatabaseConnection,
    batch: &[PendingPublish],
) -> Result<Vec<(Event, bool)>, ServiceError> {
    let txn = db.begin().await?;
    let mut logged = Vec::with_capacity(batch.len());
    for pending in batch {
        let inserted = event::Entity::insert(event::ActiveModel {
            idempotency_key: Set(pending.key.clone()),
            organization_id: Set(pending.event.organization_id.clone()),
            lead_id: Set(pending.event.lead_id.clone()),
            event_type: Set(pending.event.kind.as_str().to_owned()),
            payload_json: Set(pending.event.payload_json.clone()),
            occurred_at: Set(pending.event.occurred_at),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(event::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        )
        .exec(&txn)
        .await;
        match inserted {
            Ok(result) => {
                let event = Event {
                    id: u64::try_from(result.last_insert_id).unwrap_or(0),
                    organization_id: pending.event.organization_id.clone(),
                    lead_id: pending.event.lead_id.clone(),
                    kind: pending.event.kind,
                    payload_json: pending.event.payload_json.clone(),
                    occurred_at: pending.event.occurred_at,
                };
                logged.push((event, true));
            }
            Err(DbErr::RecordNotInserted) => {
                let stored = event::Entity::find()
                    .filter(event::Column::IdempotencyKey.eq(pending.key.as_str()))
                    .one(&txn)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Internal(format!("event {} vanished", pending.key))
                    })?;
                logged.push((to_event(stored)?, false));
            }
            Err(error) => return Err(error.into()),
        }
    }
    txn.commit().await?;
    Ok(logged)
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
