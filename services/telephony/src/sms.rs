//! `SmsBook`: every SMS in and out, sent through Twilio exactly once per idempotency key, with
//! a status machine that only moves forward and a history of every callback.

use chrono::{Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use callmesh_runtime::ServiceError;
use callmesh_runtime::limits::{RateLimiter, Verdict};
use callmesh_runtime::paging::Page;

use crate::entity::{sms_message, sms_status_change};
use crate::model::Direction;
use crate::providers::twilio::TwilioApi;
use crate::providers::{ProviderError, with_retries};
use crate::sms_status::SmsStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    pub id: String,
    pub organization_id: String,
    pub lead_id: String,
    pub message_sid: Option<String>,
    pub direction: Direction,
    /// `None` for a status string nobody defined (kept raw in the history).
    pub status: Option<SmsStatus>,
    pub from_number: String,
    pub to_number: String,
    pub body: String,
    pub error_code: String,
    pub error_message: String,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewSms {
    pub organization_id: String,
    pub lead_id: String,
    pub message_sid: Option<String>,
    pub direction: Direction,
    pub status: SmsStatus,
    pub from_number: String,
    pub to_number: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct SmsStatusUpdate {
    pub message_sid: String,
    /// As Twilio sent it; unknown values are kept in the history and change nothing.
    pub status: String,
    pub error_code: String,
    pub error_message: String,
    pub raw_payload_json: String,
    pub occurred_at: chrono::DateTime<Utc>,
}

/// Limits on sending.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    /// Number SMS are sent from when the caller names none.
    pub default_from: Option<String>,
    /// Where Twilio reports delivery (`PUBLIC_BASE_URL` + the status webhook path).
    pub status_callback: Option<String>,
    /// At most this many outbound SMS per lead per window.
    pub per_lead_limit: u64,
    pub window: Duration,
}

#[derive(Clone)]
pub struct SmsBook {
    db: DatabaseConnection,
    twilio: TwilioApi,
    policy: SendPolicy,
    /// The per-lead limit, counted in this database so every replica sees every send.
    per_lead: RateLimiter,
}

impl SmsBook {
    pub fn new(db: DatabaseConnection, twilio: TwilioApi, policy: SendPolicy) -> Self {
        let per_lead = RateLimiter::new(
            db.clone(),
            "telephony_rate_counters",
            "sms_per_lead",
            policy.per_lead_limit,
            policy.window.to_std().unwrap_or_default(),
        );
        SmsBook {
            db,
            twilio,
            policy,
            per_lead,
        }
    }

    /// Records an SMS callmesh did not send (an inbound message). Once per key.
    pub async fn record(&self, key: &str, new: NewSms) -> Result<(Sms, bool), ServiceError> {
        let inserted = self.insert(key, new).await?;
        Ok((self.by_key(key).await?, inserted))
    }

    /// Sends an SMS through Twilio, once per key: the message is recorded before Twilio is
    /// asked, and a repeat returns the record instead of sending again. Only a message that
    /// certainly never reached Twilio is tried again.
    pub async fn send(&self, key: &str, mut new: NewSms) -> Result<Sms, ServiceError> {
        if new.from_number.is_empty() {
            new.from_number = self.policy.default_from.clone().ok_or_else(|| {
                ServiceError::FailedPrecondition(
                    "TWILIO_PHONE_NUMBER is not set and no from_number was given".into(),
                )
            })?;
        }
        let existing = sms_message::Entity::find()
            .filter(sms_message::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?;
        let row = match existing {
            Some(row) if row.status != SmsStatus::NotSent.as_str() => return to_sms(row),
            Some(row) => {
                // Try again only if this request is the one that moves it back to pending.
                let claimed = sms_message::Entity::update_many()
                    .col_expr(
                        sms_message::Column::Status,
                        Expr::value(SmsStatus::Pending.as_str()),
                    )
                    .filter(sms_message::Column::Id.eq(row.id.as_str()))
                    .filter(sms_message::Column::Status.eq(SmsStatus::NotSent.as_str()))
                    .exec(&self.db)
                    .await?;
                if claimed.rows_affected == 0 {
                    return self.by_key(key).await;
                }
                row
            }
            None => {
                self.check_rate(&new.lead_id).await?;
                new.status = SmsStatus::Pending;
                new.direction = Direction::Outbound;
                // Only the request whose insert wins sends; a racing twin answers its record.
                if !self.insert(key, new).await? {
                    return self.by_key(key).await;
                }
                sms_message::Entity::find()
                    .filter(sms_message::Column::IdempotencyKey.eq(key))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| ServiceError::Internal(format!("sms {key} vanished")))?
            }
        };
        let sent = with_retries(|| {
            self.twilio.send_message(
                &row.to_number,
                &row.from_number,
                &row.body,
                self.policy.status_callback.as_deref(),
            )
        })
        .await;
        let mut active = row.clone().into_active_model();
        active.updated_at = Set(Utc::now());
        let outcome = match sent {
            Ok(message) => {
                active.message_sid = Set(message.sid.clone());
                let status = message
                    .status
                    .as_deref()
                    .and_then(SmsStatus::parse)
                    .unwrap_or(SmsStatus::Queued);
                active.status = Set(status.as_str().to_owned());
                Ok(())
            }
            Err(error) => {
                let status = match &error {
                    // Twilio did not take it: a later try (a replay) sends it.
                    ProviderError::NotSent { .. }
                    | ProviderError::NotConfigured(_)
                    | ProviderError::Busy { .. } => SmsStatus::NotSent,
                    ProviderError::Unknown { .. } => SmsStatus::Unknown,
                    ProviderError::Rejected { .. } => SmsStatus::Failed,
                };
                active.status = Set(status.as_str().to_owned());
                if let ProviderError::Rejected { code, message, .. } = &error {
                    active.error_code = Set(code.clone());
                    active.error_message = Set(message.clone());
                }
                Err(error)
            }
        };
        let updated = active.update(&self.db).await?;
        tracing::info!(sms_id = %updated.id, status = %updated.status, message_sid = ?updated.message_sid, "sms handed to twilio");
        outcome?;
        to_sms(updated)
    }

    /// Applies a MessageStatus callback once per (MessageSid, status).
    pub async fn update_status(
        &self,
        key: &str,
        update: SmsStatusUpdate,
    ) -> Result<(Sms, bool), ServiceError> {
        let txn = self.db.begin().await?;
        let current = sms_message::Entity::find()
            .filter(sms_message::Column::MessageSid.eq(update.message_sid.as_str()))
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found("sms", format!("with MessageSid {}", update.message_sid))
            })?;
        let next = SmsStatus::parse(&update.status);
        let state = SmsStatus::parse(&current.status).unwrap_or(SmsStatus::Pending);
        // Of two endings, the first Twilio sent wins. Callbacks of one message may be processed
        // side by side, so an ending received earlier can come after one received later: it
        // takes the message over, and what the later one (and a read after it) did no longer
        // holds. Callbacks stored in the same instant keep the order they are processed in.
        let overtaken = match next {
            Some(next) if next.is_ending() && state.has_ended() => {
                let later = applied_endings_after(&txn, &current.id, update.occurred_at).await?;
                if later.iter().any(|(_, status)| next.overtakes(*status)) {
                    later.into_iter().map(|(id, _)| id).collect()
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        let applies = next.is_some_and(|next| state.advances_to(next)) || !overtaken.is_empty();
        let inserted = sms_status_change::Entity::insert(sms_status_change::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            idempotency_key: Set(key.to_owned()),
            sms_id: Set(current.id.clone()),
            status: Set(update.status.clone()),
            applied: Set(applies),
            raw_payload_json: Set(update.raw_payload_json.clone()),
            occurred_at: Set(update.occurred_at),
        })
        .on_conflict(
            OnConflict::column(sms_status_change::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 || !applies {
            if next.is_none() {
                tracing::warn!(status = %update.status, "unknown sms status kept in the history");
            }
            txn.commit().await?;
            return Ok((to_sms(current)?, false));
        }
        if !overtaken.is_empty() {
            sms_status_change::Entity::update_many()
                .col_expr(sms_status_change::Column::Applied, Expr::value(false))
                .filter(sms_status_change::Column::Id.is_in(overtaken.iter().map(String::as_str)))
                .exec(&txn)
                .await?;
        }
        let mut active = current.into_active_model();
        active.status = Set(update.status.clone());
        // An ending that takes another's place brings its own error, or none.
        if !update.error_code.is_empty() || !overtaken.is_empty() {
            active.error_code = Set(update.error_code.clone());
        }
        if !update.error_message.is_empty() || !overtaken.is_empty() {
            active.error_message = Set(update.error_message.clone());
        }
        active.updated_at = Set(Utc::now());
        let updated = active.update(&txn).await?;
        txn.commit().await?;
        Ok((to_sms(updated)?, true))
    }

    pub async fn get(
        &self,
        id: Option<&str>,
        message_sid: Option<&str>,
    ) -> Result<Sms, ServiceError> {
        let query = match (id, message_sid) {
            (Some(id), _) => sms_message::Entity::find_by_id(id),
            (None, Some(sid)) => {
                sms_message::Entity::find().filter(sms_message::Column::MessageSid.eq(sid))
            }
            (None, None) => {
                return Err(ServiceError::invalid(
                    "sms_id",
                    "an sms_id or message_sid is required",
                ));
            }
        };
        let row = query.one(&self.db).await?.ok_or_else(|| {
            ServiceError::not_found("sms", id.or(message_sid).unwrap_or_default())
        })?;
        to_sms(row)
    }

    pub async fn list(
        &self,
        organization_id: &str,
        lead_id: Option<&str>,
        page: &Page,
    ) -> Result<Vec<Sms>, ServiceError> {
        let mut query = sms_message::Entity::find()
            .filter(sms_message::Column::OrganizationId.eq(organization_id))
            .order_by_asc(sms_message::Column::Id);
        if let Some(lead_id) = lead_id {
            query = query.filter(sms_message::Column::LeadId.eq(lead_id));
        }
        if let Some(after) = &page.after {
            query = query.filter(sms_message::Column::Id.gt(after.as_str()));
        }
        query
            .limit(page.size)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_sms)
            .collect()
    }

    /// Counts a send to `lead_id` against its limit (a refused send counts too, so retrying in
    /// a loop does not get through sooner).
    async fn check_rate(&self, lead_id: &str) -> Result<(), ServiceError> {
        if lead_id.is_empty() {
            return Ok(());
        }
        match self.per_lead.hit(lead_id).await? {
            Verdict::Allowed { .. } => Ok(()),
            Verdict::Limited { .. } => Err(ServiceError::ResourceExhausted(format!(
                "lead {lead_id} is over its SMS limit ({} in {} s)",
                self.policy.per_lead_limit,
                self.policy.window.num_seconds()
            ))),
        }
    }

    async fn insert(&self, key: &str, new: NewSms) -> Result<bool, ServiceError> {
        let now = Utc::now();
        let inserted = sms_message::Entity::insert(sms_message::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            idempotency_key: Set(key.to_owned()),
            organization_id: Set(new.organization_id),
            lead_id: Set(new.lead_id),
            message_sid: Set(new.message_sid),
            direction: Set(new.direction.as_str().to_owned()),
            status: Set(new.status.as_str().to_owned()),
            from_number: Set(new.from_number),
            to_number: Set(new.to_number),
            body: Set(new.body),
            error_code: Set(String::new()),
            error_message: Set(String::new()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(&self.db)
        .await?;
        Ok(inserted == 1)
    }

    async fn by_key(&self, key: &str) -> Result<Sms, ServiceError> {
        let row = sms_message::Entity::find()
            .filter(sms_message::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "the MessageSid of sms {key} belongs to another record"
                ))
            })?;
        to_sms(row)
    }
}

/// The changes of message `sms_id` that ended it (or read it after) and count, received after
/// `at`: their ids and statuses.
async fn applied_endings_after(
    txn: &DatabaseTransaction,
    sms_id: &str,
    at: chrono::DateTime<Utc>,
) -> Result<Vec<(String, SmsStatus)>, ServiceError> {
    let ended: Vec<&str> = SmsStatus::ALL
        .into_iter()
        .filter(|s| s.has_ended())
        .map(SmsStatus::as_str)
        .collect();
    let rows: Vec<(String, String)> = sms_status_change::Entity::find()
        .select_only()
        .column(sms_status_change::Column::Id)
        .column(sms_status_change::Column::Status)
        .filter(sms_status_change::Column::SmsId.eq(sms_id))
        .filter(sms_status_change::Column::Applied.eq(true))
        .filter(sms_status_change::Column::Status.is_in(ended))
        .filter(sms_status_change::Column::OccurredAt.gt(at))
        .into_tuple()
        .all(txn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, status)| SmsStatus::parse(&status).map(|s| (id, s)))
        .collect())
}

fn to_sms(row: sms_message::Model) -> Result<Sms, ServiceError> {
    Ok(Sms {
        status: SmsStatus::parse(&row.status),
        direction: Direction::from_stored(&row.direction),
        id: row.id,
        organization_id: row.organization_id,
        lead_id: row.lead_id,
        message_sid: row.message_sid,
        from_number: row.from_number,
        to_number: row.to_number,
        body: row.body,
        error_code: row.error_code,
        error_message: row.error_message,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
