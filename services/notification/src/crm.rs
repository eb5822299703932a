//! CRM forwarding: after each call, one record
//! `{"type":"conversationAICall","subject","to","name","summary","status","duration"}` is POSTed
//! to the CRM webhook. The delivery is recorded before the first attempt (one per call, by a
//! unique index), retried with exponential backoff that honours `Retry-After`, and final on a
//! 4xx other than 408/429; every attempt is logged, and a final failure is published as
//! `crm_delivery_failed`. Each POST carries the delivery id as `Idempotency-Key`, so a CRM that
//! deduplicates never stores a record twice even if callmesh dies between its POST and noting
//! the success.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sea_orm::sea_query::{Expr, LockBehavior, LockType, OnConflict, Order, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use callmesh_runtime::ServiceError;
use callmesh_runtime::batch::{all_or_each, insert_new};
use callmesh_runtime::egress::{self, EgressError};
use callmesh_runtime::lookup::find_one;

use crate::entity::{crm_delivery, crm_delivery_attempt};
use crate::log::{EventKind, EventLog, NewEvent};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmRecord {
    pub subject: String,
    pub to: String,
    pub name: String,
    pub summary: String,
    /// "held", "no answer", "voicemail" or "failed".
    pub status: String,
    pub duration: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmAttempt {
    pub attempt: u32,
    pub http_status: u16,
    pub error: String,
    pub attempted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmDelivery {
    pub id: String,
    pub organization_id: String,
    pub lead_id: String,
    pub call_id: String,
    /// "pending", "delivered" or "failed".
    pub state: String,
    pub record: CrmRecord,
    pub webhook_url: String,
    pub attempts: Vec<CrmAttempt>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CrmConfig {
    /// The CRM webhook for organizations that name none of their own.
    pub default_url: Option<String>,
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

/// The stored form: the record plus where it goes.
#[derive(Serialize, Deserialize)]
struct Stored {
    record: CrmRecord,
    url: String,
    /// The operator's `CRM_WEBHOOK_URL`, trusted; an organization's URL (and any record stored
    /// before this field) may reach the public internet only.
    #[serde(default)]
    operator_url: bool,
}

/// Deliveries sent at once.
const SENDERS: usize = 16;
/// Most deliveries one claim takes.
const CLAIM_BATCH: u64 = 64;
/// How long a claimed delivery is held: longer than a send can take (its timeout is 15 s).
const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// Most new deliveries held for this sender while they wait to be sent (see
/// [`CrmForwarder::forward_all`]); beyond them, new deliveries wait in the table to be claimed.
const HELD_AT_MOST: usize = 1024;

#[derive(Clone)]
pub struct CrmForwarder {
    db: DatabaseConnection,
    config: CrmConfig,
    http: reqwest::Client,
    /// For organizations' URLs: connects only to public addresses, whatever DNS answers.
    tenant_http: reqwest::Client,
    wake: Arc<Notify>,
    /// New deliveries this sender recorded as already claimed by itself, to send next.
    held: Arc<Mutex<Vec<crm_delivery::Model>>>,
    /// Whether [`CrmForwarder::run`] is sending: only then are new deliveries held for it.
    sending: Arc<AtomicBool>,
    log: EventLog,
}

impl CrmForwarder {
    pub fn new(db: DatabaseConnection, config: CrmConfig, log: EventLog) -> Self {
        // A redirect could lead anywhere: none is followed, a 3xx is a failed delivery.
        let client = || {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
        };
        let http = client().build().unwrap_or_default();
        let tenant_http = client()
            .dns_resolver(PublicOnly)
            .build()
            .unwrap_or_default();
        CrmForwarder {
            db,
            config,
            http,
            tenant_http,
            wake: Arc::new(Notify::new()),
            held: Arc::new(Mutex::new(Vec::new())),
            sending: Arc::new(AtomicBool::new(false)),
            log,
        }
    }

    /// Records the delivery of `request.record` for its call (once per call) and wakes the
    /// sender.
    pub async fn forward(
        &self,
        request: ForwardRequest,
    ) -> Result<(CrmDelivery, bool), ServiceError> {
        let delivery = self.delivery_of(request)?;
        self.forward_all(vec![delivery])
            .await
            .pop()
            .unwrap_or_else(|| Err(ServiceError::Internal("no delivery was recorded".into())))
    }

    /// Records many deliveries (each from [`CrmForwarder::delivery_of`]), the new ones with one
    /// statement in one transaction (see [`all_or_each`]). Answers are in the order of
    /// `deliveries`.
    ///
    /// A new delivery is written already claimed by this sender (its first attempt counted,
    /// held for `CLAIM_LEASE`, as [`CrmForwarder::claim_due`] would leave it) and handed to the
    /// sender in memory, so the common case, a record sent once, costs no claim statement. If
    /// this process dies first, the claim lapses and any sender takes the delivery; if it stops,
    /// it gives them back. While the sender is not running, or `HELD_AT_MOST` are already
    /// waiting for it, new deliveries are left for a claim instead.
    pub async fn forward_all(
        &self,
        mut deliveries: Vec<NewDelivery>,
    ) -> Vec<Result<(CrmDelivery, bool), ServiceError>> {
        let hold = self.sending.load(Ordering::Acquire) && self.held_now().len() < HELD_AT_MOST;
        if hold {
            for new in &mut deliveries {
                new.held = true;
                new.delivery.next_attempt_at = Some(new.delivery.created_at + lease());
            }
        }
        let inserted = all_or_each(
            &self.db,
            &deliveries,
            insert_deliveries,
            async |txn, delivery| insert_delivery(txn, delivery).await,
        )
        .await;
        if inserted.iter().any(|created| matches!(created, Ok(true))) {
            if hold {
                let rows = deliveries
                    .iter()
                    .zip(&inserted)
                    .filter(|(_, inserted)| matches!(inserted, Ok(true)))
                    .filter_map(|(new, _)| match delivery_model(new) {
                        Ok(row) => Some(row),
                        // Unreachable (it was just stored), and harmless: the claim lapses
                        // and the delivery is claimed from the table.
                        Err(error) => {
                            tracing::error!(%error, "crm delivery not handed over");
                            None
                        }
                    });
                self.held_now().extend(rows);
                if !self.sending.load(Ordering::Acquire) {
                    // The sender stopped meanwhile: nobody will send these here.
                    self.release_held().await;
                }
            }
            self.wake.notify_one();
        }
        let mut answers = Vec::with_capacity(deliveries.len());
        for (NewDelivery { delivery, .. }, inserted) in deliveries.into_iter().zip(inserted) {
            answers.push(match inserted {
                // Answered as written, without reading it back.
                Ok(true) => Ok((delivery, true)),
                // Already asked for: answer what is recorded.
                Ok(false) => self
                    .by_call(&delivery.call_id)
                    .await
                    .map(|known| (known, false)),
                Err(error) => Err(error),
            });
        }
        answers
    }

    /// The deliveries held for this sender (a poisoned lock still holds them).
    fn held_now(&self) -> std::sync::MutexGuard<'_, Vec<crm_delivery::Model>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pending delivery `request` asks for, to its URL or the operator's
    /// (`FAILED_PRECONDITION` when it names none and the operator set none).
    pub fn delivery_of(&self, request: ForwardRequest) -> Result<NewDelivery, ServiceError> {
        let ForwardRequest {
            key,
            organization_id,
            lead_id,
            call_id,
            webhook_url,
            record,
        } = request;
        let (webhook_url, operator_url) = match webhook_url {
            Some(url) => (url, false),
            None => (
                self.config.default_url.clone().ok_or_else(|| {
                    ServiceError::FailedPrecondition("CRM_WEBHOOK_URL is not set".into())
                })?,
                true,
            ),
        };
        let now = {
            use chrono::SubsecRound;
            // As the databases keep it, so the answer is what a read returns.
            Utc::now().trunc_subsecs(6)
        };
        let delivery = CrmDelivery {
            id: uuid::Uuid::now_v7().to_string(),
            state: "pending".to_owned(),
            organization_id,
            lead_id,
            call_id,
            record,
            webhook_url,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
            created_at: now,
        };
        Ok(NewDelivery {
            key,
            delivery,
            operator_url,
            held: false,
        })
    }

    pub async fn by_call(&self, call_id: &str) -> Result<CrmDelivery, ServiceError> {
        let row = find_one::<crm_delivery::Entity, _, 1>(
            &self.db,
            [(crm_delivery::Column::CallId, call_id.to_owned().into())],
            false,
        )
        .await?
        .ok_or_else(|| ServiceError::not_found("crm delivery of call", call_id))?;
        self.with_attempts(row).await
    }

    pub async fn by_id(&self, id: &str) -> Result<CrmDelivery, ServiceError> {
        let row = crm_delivery::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found("crm delivery", id))?;
        self.with_attempts(row).await
    }

    pub async fn list(
        &self,
        organization_id: Option<&str>,
        state: Option<&str>,
        limit: u64,
    ) -> Result<Vec<CrmDelivery>, ServiceError> {
        let mut query = crm_delivery::Entity::find()
            .order_by_desc(crm_delivery::Column::Id)
            .limit(limit);
        if let Some(organization_id) = organization_id {
            query = query.filter(crm_delivery::Column::OrganizationId.eq(organization_id));
        }
        if let Some(state) = state {
            query = query.filter(crm_delivery::Column::State.eq(state));
        }
        let mut out = Vec::new();
        for row in query.all(&self.db).await? {
            out.push(self.with_attempts(row).await?);
        }
        Ok(out)
    }

    /// Sends due deliveries until `shutdown`, a few at a time: first those this sender
    /// recorded itself (already claimed, see [`CrmForwarder::forward_all`]), then those it
    /// claims. Deliveries are claimed, not read: a claim bumps the attempt counter and holds the
    /// delivery for `CLAIM_LEASE`, so another replica takes it only if this one died mid-send,
    /// and a result counts only while the claim (that attempt) still stands.
    pub async fn run(self, shutdown: CancellationToken) {
        self.sending.store(true, Ordering::Release);
        loop {
            if shutdown.is_cancelled() {
                self.sending.store(false, Ordering::Release);
                self.release_held().await;
                return;
            }
            let held = std::mem::take(&mut *self.held_now());
            if !held.is_empty() {
                self.send_all(held).await;
                continue;
            }
            match self.claim_due().await {
                Ok(due) if !due.is_empty() => {
                    self.send_all(due).await;
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "cannot claim crm deliveries"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// On the way out (no new send starts once `shutdown` is cancelled): the deliveries still
    /// held here, never attempted, are given back as if recorded unclaimed (due now, no attempt
    /// counted), so another sender need not wait for their claims to lapse.
    async fn release_held(&self) {
        let held = std::mem::take(&mut *self.held_now());
        if held.is_empty() {
            return;
        }
        let released = crm_delivery::Entity::update_many()
            .col_expr(
                crm_delivery::Column::Attempts,
                Expr::col(crm_delivery::Column::Attempts).sub(1),
            )
            .col_expr(crm_delivery::Column::NextAttemptAt, Expr::value(Utc::now()))
            .filter(crm_delivery::Column::Id.is_in(held.iter().map(|row| row.id.as_str())))
            .filter(crm_delivery::Column::State.eq("pending"))
            .filter(crm_delivery::Column::Attempts.eq(1))
            .exec(&self.db)
            .await;
        if let Err(error) = released {
            // Their claims lapse instead.
            tracing::warn!(%error, held = held.len(), "crm deliveries not released");
        }
    }

    /// Sends `due`, `SENDERS` at a time, and records the results as they come in: whatever
    /// has finished while the last results were being written goes into the next transaction.
    async fn send_all(&self, due: Vec<crm_delivery::Model>) {
        let (finished, mut results) = mpsc::unbounded_channel();
        let sending = async move {
            futures_util::stream::iter(due)
                .for_each_concurrent(SENDERS, |row| {
                    let finished = finished.clone();
                    async move {
                        let _ = finished.send(self.send(row).await);
                    }
                })
                .await;
        };
        let recording = async {
            let mut sent = Vec::new();
            while results.recv_many(&mut sent, CLAIM_BATCH as usize).await > 0 {
                if let Err(error) = self.record(std::mem::take(&mut sent)).await {
                    // The claims lapse and those deliveries are sent again (same Idempotency-Key).
                    tracing::error!(%error, "crm delivery bookkeeping failed");
                }
            }
        };
        tokio::join!(sending, recording);
    }

    /// Claims up to `CLAIM_BATCH` due deliveries in one statement; on PostgreSQL rows another
    /// replica is claiming are skipped (`FOR UPDATE SKIP LOCKED`).
    async fn claim_due(&self) -> Result<Vec<crm_delivery::Model>, ServiceError> {
        let now = Utc::now();
        let mut due = Query::select();
        due.column(crm_delivery::Column::Id)
            .from(crm_delivery::Entity)
            // The state is written into the statement rather than bound: only then may
            // PostgreSQL read the pending deliveries through the partial index kept for them
            // there (`idx_crm_deliveries_pending`), instead of every delivery ever sent.
            .and_where(
                Expr::col(crm_delivery::Column::State).eq(SimpleExpr::Constant("pending".into())),
            )
            .and_where(crm_delivery::Column::NextAttemptAt.lte(now))
            .order_by(crm_delivery::Column::Id, Order::Asc)
            .limit(CLAIM_BATCH);
        let held_until = now + lease();
        let backend = self.db.get_database_backend();
        if backend == DbBackend::Postgres {
            due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let mut claim = Query::update();
        claim
            .table(crm_delivery::Entity)
            .values([
                (
                    crm_delivery::Column::Attempts,
                    Expr::col(crm_delivery::Column::Attempts).add(1),
                ),
                (crm_delivery::Column::NextAttemptAt, Some(held_until).into()),
                (crm_delivery::Column::UpdatedAt, now.into()),
            ])
            .and_where(Expr::col(crm_delivery::Column::Id).in_subquery(due))
            .returning_all();
        let mut rows = self
            .db
            .query_all(backend.build(&claim))
            .await?
            .iter()
            .map(|row| crm_delivery::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(rows)
    }

    /// One attempt at `row`'s delivery: what happened and what follows, not yet recorded.
    async fn send(&self, row: crm_delivery::Model) -> Sent {
        let stored: Stored = match serde_json::from_str(&row.record_json) {
            Ok(stored) => stored,
            Err(error) => {
                // Not a record this service wrote: no attempt can deliver it.
                let error = format!("unreadable record: {error}");
                tracing::error!(delivery_id = %row.id, %error, "crm delivery failed for good");
                return Sent::of(row, 0, error, Outcome::Final, None);
            }
        };
        // The claim already counted this attempt.
        let attempt = u32::try_from(row.attempts).unwrap_or(1);
        let body = serde_json::json!({
            "type": "conversationAICall",
            "subject": stored.record.subject,
            "to": stored.record.to,
            "name": stored.record.name,
            "summary": stored.record.summary,
            "status": stored.record.status,
            "duration": stored.record.duration,
        });
        let http = if stored.operator_url {
            &self.http
        } else {
            &self.tenant_http
        };
        let refused = match stored.operator_url {
            true => Ok(()),
            false => egress::destination(&stored.url).map(|_| ()),
        };
        let response = match refused {
            Ok(()) => Ok(http
                .post(&stored.url)
                .header("Idempotency-Key", &row.id)
                .json(&body)
                .send()
                .await),
            Err(refused) => Err(refused.to_string()),
        };
        // What the organization is shown: a status and a short reason, never the CRM's body.
        let (http_status, error, retry_after, outcome) = match response {
            Err(refused) => (
                0,
                format!("destination refused: {refused}"),
                None,
                Outcome::Final,
            ),
            Ok(Ok(response)) => {
                let status = response.status();
                let retry_after = retry_after(response.headers());
                let outcome = if status.is_success() {
                    Outcome::Delivered
                } else if status.as_u16() == 408
                    || status.as_u16() == 429
                    || status.is_server_error()
                {
                    Outcome::Retry
                } else {
                    Outcome::Final
                };
                let error = if status.is_success() {
                    String::new()
                } else {
                    format!("HTTP {status}")
                };
                (status.as_u16(), error, retry_after, outcome)
            }
            Ok(Err(e)) if refused_by_resolver(&e) => (
                0,
                format!("destination refused: {}", EgressError::PrivateAddress),
                None,
                Outcome::Final,
            ),
            Ok(Err(e)) => (0, short_reason(&e).to_owned(), None, Outcome::Retry),
        };
        let outcome = match outcome {
            Outcome::Retry if attempt >= self.config.max_attempts => Outcome::Final,
            other => other,
        };
        let next_attempt_at = match outcome {
            Outcome::Delivered => {
                tracing::info!(delivery_id = %row.id, call_id = %row.call_id, attempt, "crm record delivered");
                None
            }
            Outcome::Retry => {
                let backoff = ExponentialBuilder::default()
                    .with_min_delay(self.config.base_delay)
                    .with_max_delay(self.config.max_delay)
                    .with_jitter()
                    .with_max_times(attempt as usize + 1)
                    .build()
                    .nth((attempt as usize).saturating_sub(1))
                    .unwrap_or(self.config.max_delay);
                let delay = retry_after.map_or(backoff, |asked| asked.max(backoff));
                tracing::warn!(delivery_id = %row.id, attempt, %error, retry_in_ms = delay.as_millis() as u64, "crm delivery will be retried");
                Some(
                    Utc::now()
                        + chrono::Duration::from_std(delay)
                            .unwrap_or(chrono::Duration::seconds(60)),
                )
            }
            Outcome::Final => {
                tracing::error!(delivery_id = %row.id, attempt, %error, "crm delivery failed for good");
                None
            }
        };
        Sent::of(row, http_status, error, outcome, next_attempt_at)
    }

    /// Records what `sent` found, in one transaction: every attempt with one statement, and
    /// each delivery's new state while its claim (that attempt) still stands, one statement
    /// for every state and time they move to. Then counts them, and reports those that failed
    /// for good.
    async fn record(&self, sent: Vec<Sent>) -> Result<(), ServiceError> {
        if sent.is_empty() {
            return Ok(());
        }
        let backend = self.db.get_database_backend();
        let now = Utc::now();
        let txn = self.db.begin().await?;
        crm_delivery_attempt::Entity::insert_many(sent.iter().map(|sent| {
            crm_delivery_attempt::ActiveModel {
                delivery_id: Set(sent.row.id.clone()),
                attempt: Set(sent.row.attempts),
                http_status: Set(i32::from(sent.http_status)),
                error: Set(sent.error.clone()),
                attempted_at: Set(sent.at),
            }
        }))
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(&txn)
        .await?;
        let mut moves: BTreeMap<(&str, Option<DateTime<Utc>>), Vec<&Sent>> = BTreeMap::new();
        for sent in &sent {
            moves
                .entry((sent.outcome.state(), sent.next_attempt_at))
                .or_default()
                .push(sent);
        }
        let mut settled = HashSet::with_capacity(sent.len());
        for ((state, next_attempt_at), group) in moves {
            let mut settle = Query::update();
            settle
                .table(crm_delivery::Entity)
                .values([
                    (crm_delivery::Column::State, state.into()),
                    (crm_delivery::Column::NextAttemptAt, next_attempt_at.into()),
                    (crm_delivery::Column::UpdatedAt, now.into()),
                ])
                .and_where(crm_delivery::Column::State.eq("pending"))
                .and_where(attempted(backend, &group))
                .returning_col(crm_delivery::Column::Id);
            for row in txn.query_all(backend.build(&settle)).await? {
                settled.insert(row.try_get_by_index::<String>(0)?);
            }
        }
        txn.commit().await?;
        for sent in sent {
            let Sent { row, outcome, .. } = &sent;
            if !settled.contains(&row.id) {
                tracing::warn!(delivery_id = %row.id, attempt = row.attempts, "crm delivery was taken over by another sender; its result stands");
                continue;
            }
            let counted = match outcome {
                Outcome::Delivered => "delivered",
                Outcome::Retry => "retry",
                Outcome::Final => "failed",
            };
            metrics::counter!("callmesh_crm_attempts_total", "outcome" => counted).increment(1);
            if *outcome != Outcome::Retry {
                metrics::counter!("callmesh_crm_deliveries_total", "outcome" => counted)
                    .increment(1);
            }
            if *outcome == Outcome::Final {
                let payload = serde_json::json!({"delivery_id": row.id, "call_id": row.call_id,
                    "attempts": row.attempts, "error": sent.error});
                self.log
                    .publish(
                        &format!("crm_delivery_failed:{}", row.id),
                        NewEvent {
                            organization_id: row.organization_id.clone(),
                            lead_id: row.lead_id.clone(),
                            kind: EventKind::CrmDeliveryFailed,
                            payload_json: payload.to_string(),
                            occurred_at: Utc::now(),
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn with_attempts(&self, row: crm_delivery::Model) -> Result<CrmDelivery, ServiceError> {
        let attempts = crm_delivery_attempt::Entity::find()
            .filter(crm_delivery_attempt::Column::DeliveryId.eq(row.id.as_str()))
            .order_by_asc(crm_delivery_attempt::Column::Attempt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|a| CrmAttempt {
                attempt: u32::try_from(a.attempt).unwrap_or(0),
                http_status: u16::try_from(a.http_status).unwrap_or(0),
                error: a.error,
                attempted_at: a.attempted_at,
            })
            .collect();
        let stored: Stored = serde_json::from_str(&row.record_json)
            .map_err(|e| ServiceError::Internal(format!("delivery {}: {e}", row.id)))?;
        Ok(CrmDelivery {
            id: row.id,
            organization_id: row.organization_id,
            lead_id: row.lead_id,
            call_id: row.call_id,
            state: row.state,
            record: stored.record,
            webhook_url: stored.url,
            attempts,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Retry,
    Final,
}

impl Outcome {
    /// The state a delivery moves to.
    fn state(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "pending",
            Outcome::Final => "failed",
        }
    }
}

/// An attempt made, before it is recorded.
struct Sent {
    /// The delivery as claimed: its `attempts` counts this attempt.
    row: crm_delivery::Model,
    /// HTTP status, 0 when no response came.
    http_status: u16,
    error: String,
    outcome: Outcome,
    /// When to try again (a retry only).
    next_attempt_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
}

impl Sent {
    fn of(
        row: crm_delivery::Model,
        http_status: u16,
        error: String,
        outcome: Outcome,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Sent {
        Sent {
            row,
            http_status,
            error,
            outcome,
            next_attempt_at,
            at: Utc::now(),
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(3600)));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// Resolves like the system does, then keeps public addresses only; a name with none left
/// fails to resolve, so an organization's URL never reaches this network, whatever its DNS says.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| egress::is_public(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no public address")
    }
}

impl std::error::Error for Refused {}

fn refused_by_resolver(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<Refused>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A failed request in a few words: no addresses, no bodies.
fn short_reason(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirected"
    } else {
        "request failed"
    }
}

/// What [`CrmForwarder::forward`] is asked: deliver `record` about `call_id`, once per `key`,
/// to `webhook_url` or, when there is none, the operator's `CRM_WEBHOOK_URL`.
#[derive(Debug, Clone)]
pub struct ForwardRequest {
    pub key: String,
    pub organization_id: String,
    pub lead_id: String,
    pub call_id: String,
    pub webhook_url: Option<String>,
    pub record: CrmRecord,
}

/// A delivery about to be recorded, from [`CrmForwarder::delivery_of`].
pub struct NewDelivery {
    key: String,
    delivery: CrmDelivery,
    operator_url: bool,
    /// Recorded as claimed by this sender, its first attempt counted.
    held: bool,
}

/// How long a claim holds a delivery.
fn lease() -> chrono::Duration {
    chrono::Duration::from_std(CLAIM_LEASE).unwrap_or(chrono::Duration::seconds(60))
}

/// Records a pending delivery unless its key or call has one; answers whether it was new.
/// The deliveries `sent`, each at the attempt it was sent at. On PostgreSQL they travel as one
/// JSON parameter, so the statement's text is the same however many there are and the server
/// plans it once per connection (as `(id, attempts) IN ((…), (…), …)` it was planned afresh
/// for each batch, 0.7 ms a statement).
fn attempted(backend: DbBackend, sent: &[&Sent]) -> SimpleExpr {
    let pairs = sent
        .iter()
        .map(|sent| (sent.row.id.clone(), sent.row.attempts));
    if backend != DbBackend::Postgres {
        return Expr::tuple([
            Expr::col(crm_delivery::Column::Id).into(),
            Expr::col(crm_delivery::Column::Attempts).into(),
        ])
        .in_tuples(pairs);
    }
    let sent = serde_json::Value::Array(
        pairs
            .map(|(id, attempts)| serde_json::json!({"id": id, "attempts": attempts}))
            .collect(),
    );
    // The ids first, as an array, so the rows are found by their key rather than among every
    // pending delivery.
    Expr::cust_with_values(
        r#""id" = ANY (ARRAY(SELECT id FROM jsonb_to_recordset($1) AS sent(id text)))
            AND ("id", "attempts") IN
                (SELECT id, attempts FROM jsonb_to_recordset($2) AS sent(id text, attempts integer))"#,
        [sent.clone(), sent],
    )
}

async fn insert_delivery(
    db: &impl ConnectionTrait,
    delivery: &NewDelivery,
) -> Result<bool, ServiceError> {
    let inserted = crm_delivery::Entity::insert(delivery_row(delivery)?)
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// [`insert_delivery`] for many deliveries, with one statement: a delivery whose key or call
/// has one already (stored, or earlier in `deliveries`) is not new.
async fn insert_deliveries(
    txn: &DatabaseTransaction,
    deliveries: &[NewDelivery],
) -> Result<Vec<bool>, ServiceError> {
    let rows = deliveries
        .iter()
        .map(delivery_row)
        .collect::<Result<Vec<_>, _>>()?;
    let inserted = insert_new(txn, rows, crm_delivery::Column::Id).await?;
    Ok(deliveries
        .iter()
        .map(|new| inserted.contains(&new.delivery.id))
        .collect())
}

/// The row a new delivery is stored as.
fn delivery_row(delivery: &NewDelivery) -> Result<crm_delivery::ActiveModel, ServiceError> {
    Ok(delivery_model(delivery)?.into_active_model())
}

fn delivery_model(
    NewDelivery {
        key,
        delivery,
        operator_url,
        held,
    }: &NewDelivery,
) -> Result<crm_delivery::Model, ServiceError> {
    let stored = Stored {
        record: delivery.record.clone(),
        url: delivery.webhook_url.clone(),
        operator_url: *operator_url,
    };
    let stored_json =
        serde_json::to_string(&stored).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(crm_delivery::Model {
        id: delivery.id.clone(),
        idempotency_key: key.clone(),
        organization_id: delivery.organization_id.clone(),
        lead_id: delivery.lead_id.clone(),
        call_id: delivery.call_id.clone(),
        state: delivery.state.clone(),
        record_json: stored_json,
        attempts: i32::from(*held),
        next_attempt_at: delivery.next_attempt_at,
        created_at: delivery.created_at,
        updated_at: delivery.created_at,
    })
}

#[cfg(test)]
mod destination_tests {
    use std::str::FromStr;

    use reqwest::dns::{Name, Resolve};

    use super::*;

    #[tokio::test]
    async fn names_that_resolve_inside_the_network_resolve_to_nothing() {
        let name = Name::from_str("localhost").expect("name");
        let resolved = PublicOnly.resolve(name).await;
        assert!(resolved.is_err_and(|e| e.is::<Refused>()));
    }
}
