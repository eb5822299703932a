//! `EventLog`: the append-only log of everything that happened, in id order. Publishing is
//! idempotent on the caller's key (a unique index), so a retried flow logs an event once.
//! The log is the source of truth for live updates too: each replica reads it to feed its
//! subscribers, so a dashboard sees every event whichever replica published it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set, TransactionTrait,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

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
    /// in one transaction (one commit for many events).
    writer: mpsc::Sender<PendingPublish>,
    /// The highest id this replica's live subscribers have been handed.
    announced: watch::Receiver<u64>,
    /// Becomes true once live subscribers are fed from the end of the log.
    tailing: watch::Receiver<bool>,
}

struct PendingPublish {
    key: String,
    event: NewEvent,
    done: oneshot::Sender<Result<(Event, bool), String>>,
}

/// Most events one commit takes.
const MAX_BATCH: usize = 512;
/// The PostgreSQL channel that tells every replica the log grew (ids only, never payloads).
const APPENDED_CHANNEL: &str = "callmesh_events_appended";
/// Longest a publisher waits for its event to reach this replica's live subscribers.
const ANNOUNCE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often the log is read even without a wake-up, in case one was lost.
const TAIL_BACKSTOP: std::time::Duration = std::time::Duration::from_secs(1);

impl EventLog {
    /// The log on `db`. Live subscribers are fed by reading the log itself, in id order, when a
    /// publish on this replica or (on PostgreSQL, through `LISTEN/NOTIFY`) on any other one says
    /// it grew, and at least every second: every replica serves every event, in order, whoever
    /// published it.
    pub fn new(db: DatabaseConnection) -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let (writer, queue) = mpsc::channel(4 * MAX_BATCH);
        let appended = Arc::new(Notify::new());
        // Nothing is appended before the tail knows where the log ends, so it misses nothing.
        let (tailing, tail_started) = watch::channel(false);
        let (announce, announced) = watch::channel(0u64);
        tokio::spawn(write_batches(
            db.clone(),
            queue,
            appended.clone(),
            tail_started.clone(),
        ));
        if db.get_database_backend() == DbBackend::Postgres {
            tokio::spawn(listen(db.clone(), Arc::downgrade(&appended)));
        }
        tokio::spawn(tail(
            db.clone(),
            live.clone(),
            Arc::downgrade(&appended),
            tailing,
            announce,
        ));
        EventLog {
            db,
            live,
            writer,
            announced,
            tailing: tail_started,
        }
    }

    /// Waits until live subscribers of this replica are fed: an event appended by any replica
    /// after this returns reaches them. (Until then "live" has no start to count from.)
    pub async fn tailing(&self) {
        let mut tailing = self.tailing.clone();
        let _ = tailing.wait_for(|started| *started).await;
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
        let mut published = self.publish_all(vec![(key.to_owned(), event)]).await?;
        published
            .pop()
            .ok_or_else(|| ServiceError::Internal("the event writer answered nothing".into()))
    }

    /// Appends `events` in order, each unless its key was already published (they usually share
    /// one commit); answers each logged event and whether it is new, in the same order.
    pub async fn publish_all(
        &self,
        events: Vec<(String, NewEvent)>,
    ) -> Result<Vec<(Event, bool)>, ServiceError> {
        let stopped = || ServiceError::Internal("the event writer has stopped".into());
        // All are queued before any answer is awaited: the writer takes them together, in order.
        let mut answers = Vec::with_capacity(events.len());
        for (key, event) in events {
            let (done, answer) = oneshot::channel();
            self.writer
                .send(PendingPublish { key, event, done })
                .await
                .map_err(|_| stopped())?;
            answers.push(answer);
        }
        let mut published = Vec::with_capacity(answers.len());
        for answer in answers {
            published.push(
                answer
                    .await
                    .map_err(|_| stopped())?
                    .map_err(ServiceError::Internal)?,
            );
        }
        if let Some(newest) = published
            .iter()
            .filter(|(_, created)| *created)
            .map(|(event, _)| event.id)
            .max()
        {
            // Answer once this replica's subscribers have them, so a subscriber that arrives
            // after the answer never sees them as live. Bounded: the log has them either way.
            let mut announced = self.announced.clone();
            let _ =
                tokio::time::timeout(ANNOUNCE_WAIT, announced.wait_for(|id| *id >= newest)).await;
        }
        Ok(published)
    }

    /// Events matching `filter` with an id above `after`, oldest first.
    pub async fn list(
        &self,
        filter: &EventFilter,
        after: u64,
        limit: u64,
    ) -> Result<Vec<Event>, ServiceError> {
        list_after(&self.db, filter, after, None, limit).await
    }

    /// As [`EventLog::list`], only events that occurred at or after `since` (filtered by the
    /// database, so a long history before it is never read).
    pub async fn list_occurred_since(
        &self,
        filter: &EventFilter,
        after: u64,
        since: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Event>, ServiceError> {
        list_after(&self.db, filter, after, Some(since), limit).await
    }

    /// The newest `limit` events `filter` matches after `after` (and since `since`), newest
    /// first: what a dashboard replays when it opens.
    pub async fn list_newest(
        &self,
        filter: &EventFilter,
        after: u64,
        since: Option<DateTime<Utc>>,
        limit: u64,
    ) -> Result<Vec<Event>, ServiceError> {
        events_after(filter, after, since)
            .order_by_desc(event::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_event)
            .collect()
    }
}

async fn list_after(
    db: &DatabaseConnection,
    filter: &EventFilter,
    after: u64,
    since: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<Event>, ServiceError> {
    events_after(filter, after, since)
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_event)
        .collect()
}

/// The events `filter` matches after `after` (and since `since`), in no order yet.
fn events_after(
    filter: &EventFilter,
    after: u64,
    since: Option<DateTime<Utc>>,
) -> sea_orm::Select<event::Entity> {
    let mut query = event::Entity::find()
        .filter(event::Column::Id.gt(i64::try_from(after).unwrap_or(i64::MAX)));
    if let Some(organization_id) = &filter.organization_id {
        query = query.filter(event::Column::OrganizationId.eq(organization_id.as_str()));
    }
    if let Some(lead_id) = &filter.lead_id {
        query = query.filter(event::Column::LeadId.eq(lead_id.as_str()));
    }
    if let Some(since) = since {
        query = query.filter(event::Column::OccurredAt.gte(since));
    }
    if !filter.kinds.is_empty() {
        query =
            query.filter(event::Column::EventType.is_in(filter.kinds.iter().map(|k| k.as_str())));
    }
    query
}

async fn write_batches(
    db: DatabaseConnection,
    mut queue: mpsc::Receiver<PendingPublish>,
    appended: Arc<Notify>,
    mut tail_started: watch::Receiver<bool>,
) {
    if tail_started.wait_for(|started| *started).await.is_err() {
        return;
    }
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match append_batch(&db, &batch).await {
            Ok(logged) => {
                appended.notify_one();
                for (pending, (event, created)) in batch.drain(..).zip(logged) {
                    if created {
                        tracing::debug!(event_id = event.id, kind = event.kind.as_str(), organization_id = %event.organization_id, "event published");
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
/// A key repeated within the batch (or already logged) is logged once: the whole batch is one
/// multi-row insert, in the batch's order, and the keys that were already there are read back
/// with one more query.
async fn append_batch(
    db: &DatabaseConnection,
    batch: &[PendingPublish],
) -> Result<Vec<(Event, bool)>, ServiceError> {
    let txn = db.begin().await?;
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    if postgres {
        // One appender at a time across replicas, so ids become visible in id order and a
        // reader that has seen id n never later finds a smaller one committed.
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})"))
            .await?;
    }
    let mut distinct = HashSet::with_capacity(batch.len());
    let firsts: Vec<&PendingPublish> = batch
        .iter()
        .filter(|pending| distinct.insert(pending.key.as_str()))
        .collect();
    let mut insert = event::Entity::insert_many(firsts.iter().map(|pending| event::ActiveModel {
        idempotency_key: Set(pending.key.clone()),
        organization_id: Set(pending.event.organization_id.clone()),
        lead_id: Set(pending.event.lead_id.clone()),
        event_type: Set(pending.event.kind.as_str().to_owned()),
        payload_json: Set(pending.event.payload_json.clone()),
        occurred_at: Set(pending.event.occurred_at),
        ..Default::default()
    }))
    .on_conflict(
        OnConflict::column(event::Column::IdempotencyKey)
            .do_nothing()
            .to_owned(),
    )
    .into_query();
    insert
        .returning(Query::returning().columns([event::Column::Id, event::Column::IdempotencyKey]));
    let mut inserted: HashMap<String, i64> = HashMap::with_capacity(firsts.len());
    for row in txn.query_all(backend.build(&insert)).await? {
        inserted.insert(row.try_get("", "idempotency_key")?, row.try_get("", "id")?);
    }
    let missing: Vec<&str> = firsts
        .iter()
        .map(|pending| pending.key.as_str())
        .filter(|key| !inserted.contains_key(*key))
        .collect();
    let mut stored: HashMap<String, Event> = HashMap::with_capacity(missing.len());
    if !missing.is_empty() {
        for model in event::Entity::find()
            .filter(event::Column::IdempotencyKey.is_in(missing))
            .all(&txn)
            .await?
        {
            stored.insert(model.idempotency_key.clone(), to_event(model)?);
        }
    }
    // Each pending event, as logged: new the first time its key was inserted, else the
    // event already stored under the key (the batch's first with that key, when repeated).
    let mut logged: Vec<(Event, bool)> = Vec::with_capacity(batch.len());
    let mut announced: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    for pending in batch {
        let key = pending.key.as_str();
        if let Some(&first) = announced.get(key) {
            let event = logged[first].0.clone();
            logged.push((event, false));
            continue;
        }
        let entry = match (inserted.get(key), stored.remove(key)) {
            (Some(&id), _) => (
                Event {
                    id: u64::try_from(id).unwrap_or(0),
                    organization_id: pending.event.organization_id.clone(),
                    lead_id: pending.event.lead_id.clone(),
                    kind: pending.event.kind,
                    payload_json: pending.event.payload_json.clone(),
                    occurred_at: pending.event.occurred_at,
                },
                true,
            ),
            (None, Some(event)) => (event, false),
            (None, None) => {
                return Err(ServiceError::Internal(format!("event {key} vanished")));
            }
        };
        announced.insert(key, logged.len());
        logged.push(entry);
    }
    if postgres && !inserted.is_empty() {
        // Delivered to every listening replica when (and only if) the batch commits.
        txn.execute_unprepared(&format!("NOTIFY {APPENDED_CHANNEL}"))
            .await?;
    }
    txn.commit().await?;
    Ok(logged)
}

/// The advisory lock key that serialises appends (an arbitrary constant of this log).
const APPEND_LOCK: i64 = 0x6361_6c6c_6d65_7368;

/// Reads what was appended since the last read, in id order, and hands it to live subscribers.
/// Ends when the log's last handle is gone.
async fn tail(
    db: DatabaseConnection,
    live: broadcast::Sender<Event>,
    appended: Weak<Notify>,
    started: watch::Sender<bool>,
    announce: watch::Sender<u64>,
) {
    // Live means from now on: start at the end of the log, once its table exists.
    let mut after = loop {
        if appended.strong_count() == 0 {
            return;
        }
        match newest_id(&db).await {
            Ok(newest) => break newest,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    };
    announce.send_replace(after);
    started.send_replace(true);
    loop {
        let Some(wake) = appended.upgrade() else {
            return;
        };
        let _ = tokio::time::timeout(TAIL_BACKSTOP, wake.notified()).await;
        drop(wake);
        loop {
            match list_after(&db, &EventFilter::default(), after, None, TAIL_BATCH).await {
                Ok(events) => {
                    let more = events.len() as u64 == TAIL_BATCH;
                    for event in events {
                        after = event.id;
                        // No receivers is fine: nobody is watching.
                        let _ = live.send(event);
                    }
                    announce.send_replace(after);
                    if !more {
                        break;
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read new events for live subscribers");
                    break;
                }
            }
        }
    }
}

const TAIL_BATCH: u64 = 1000;

async fn newest_id(db: &DatabaseConnection) -> Result<u64, ServiceError> {
    let newest = event::Entity::find()
        .order_by_desc(event::Column::Id)
        .one(db)
        .await?;
    Ok(newest
        .map(|e| u64::try_from(e.id).unwrap_or(0))
        .unwrap_or(0))
}

/// Wakes the tail whenever any replica's append commits (PostgreSQL `LISTEN`); reconnects
/// after a failure, waking the tail once in case something was missed meanwhile.
async fn listen(db: DatabaseConnection, appended: Weak<Notify>) {
    let pool = db.get_postgres_connection_pool().clone();
    loop {
        if appended.upgrade().is_none() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for new events; retrying");
                tokio::time::sleep(TAIL_BACKSTOP).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(APPENDED_CHANNEL).await {
            tracing::warn!(%error, "cannot listen for new events; retrying");
            tokio::time::sleep(TAIL_BACKSTOP).await;
            continue;
        }
        loop {
            match tokio::time::timeout(TAIL_BACKSTOP * 5, listener.recv()).await {
                Ok(Ok(_)) => match appended.upgrade() {
                    Some(wake) => wake.notify_one(),
                    None => return,
                },
                // Quiet: check the log is still wanted, keep listening.
                Err(_) => {
                    if appended.upgrade().is_none() {
                        return;
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "lost the event notifications; reconnecting");
                    if let Some(wake) = appended.upgrade() {
                        wake.notify_one();
                    }
                    break;
                }
            }
        }
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
