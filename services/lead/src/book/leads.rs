//! Leads: found or created by phone, listed, searched, and updated by what each conversation
//! and contact attempt teaches us.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::{Expr, Func, LikeExpr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    EntityTrait, FromQueryResult, IdenStatic, IntoActiveModel, Iterable, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select, Set, Statement, TransactionTrait, TryIntoModel,
};

use callmesh_runtime::batch::{all_or_each, insert_new_on};
use callmesh_runtime::lookup::find_one;
use callmesh_runtime::paging::Page;

use super::{LeadBook, claim_idempotency_key, key_taken, new_id};
use crate::entity::{idempotency_key, lead, organization};
use crate::error::LeadError;
use crate::model::{
    AnalysisOutcome, ContactAttempt, ContactOutcome, HeardName, Lead, LeadChanges, LeadContact,
    LeadStatus, LeadTier, NameSource,
};
use crate::phone::PhoneNumber;

impl LeadBook {
    /// The lead with this phone number in the organization, created when there is none.
    /// Concurrent calls for one number all answer the same lead; exactly one sees `created`.
    pub async fn find_or_create_lead(
        &self,
        contact: LeadContact,
    ) -> Result<(Lead, bool), LeadError> {
        let known = self.known_organizations.contains(&contact.organization_id);
        let found = find_or_create_on(&self.db, &(contact, known)).await?;
        self.known_organizations.remember(&found.0.organization_id);
        Ok(found)
    }

    /// [`LeadBook::find_or_create_lead`] for many contacts, in one transaction (see
    /// [`all_or_each`]).
    pub async fn find_or_create_leads(
        &self,
        contacts: Vec<LeadContact>,
    ) -> Vec<Result<(Lead, bool), LeadError>> {
        let contacts: Vec<_> = contacts
            .into_iter()
            .map(|contact| {
                let known = self.known_organizations.contains(&contact.organization_id);
                (contact, known)
            })
            .collect();
        let found = all_or_each(
            &self.db,
            &contacts,
            find_or_create_all,
            async |txn, contact| find_or_create_on(txn, contact).await,
        )
        .await;
        for (lead, _) in found.iter().flatten() {
            self.known_organizations.remember(&lead.organization_id);
        }
        found
    }

    pub async fn lead(&self, id: &str) -> Result<Lead, LeadError> {
        let model = lead::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| LeadError::not_found("lead", id))?;
        to_lead(model)
    }

    /// An organization's leads in creation order, optionally only those with `status`.
    pub async fn list_leads(
        &self,
        organization_id: &str,
        status: Option<LeadStatus>,
        page: &Page,
    ) -> Result<Vec<Lead>, LeadError> {
        self.require_organization(organization_id).await?;
        let mut query = lead::Entity::find();
        if let Some(status) = status {
            query = query.filter(lead::Column::Status.eq(status.as_str()));
        }
        self.page_of(query, organization_id, page).await
    }

    /// Leads whose name, phone number or email contains `query`, ignoring case.
    pub async fn search_leads(
        &self,
        organization_id: &str,
        query: &str,
        page: &Page,
    ) -> Result<Vec<Lead>, LeadError> {
        self.require_organization(organization_id).await?;
        self.page_of(
            lead::Entity::find().filter(search_condition(query)),
            organization_id,
            page,
        )
        .await
    }

    /// Sets the fields given and leaves the rest.
    pub async fn update_lead(&self, id: &str, changes: LeadChanges) -> Result<Lead, LeadError> {
        let model = lead::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| LeadError::not_found("lead", id))?;
        let mut active = model.into_active_model();
        if let Some(name) = changes.name {
            // A person set it: nothing callmesh hears replaces it (an empty name clears it, and
            // the next name heard fills it again).
            active.name_source = Set(if name.is_empty() {
                String::new()
            } else {
                NameSource::Person.as_str().to_owned()
            });
            active.name_evidence = Set(String::new());
            active.name = Set(name);
        }
        if let Some(email) = changes.email {
            active.email = Set(email);
        }
        if let Some(status) = changes.status {
            active.status = Set(status.as_str().to_owned());
        }
        if let Some(notes) = changes.notes {
            active.notes = Set(notes);
        }
        active.updated_at = Set(Utc::now());
        to_lead(active.update(&self.db).await?)
    }

    /// Applies a conversation's analysis once per idempotency key: score, tier, summary,
    /// status, one more interaction, and last contact (which only moves forward).
    pub async fn apply_analysis(
        &self,
        idempotency_key: &str,
        outcome: AnalysisOutcome,
    ) -> Result<(Lead, bool), LeadError> {
        let txn = self.db.begin().await?;
        let applied = apply_analysis_in(&txn, idempotency_key, &outcome).await?;
        txn.commit().await?;
        log_applied(&outcome, &applied);
        Ok(applied)
    }

    /// [`LeadBook::apply_analysis`] for many analyses, `(key, outcome)`, in one transaction
    /// (see [`all_or_each`]).
    pub async fn apply_analyses(
        &self,
        analyses: &[(String, AnalysisOutcome)],
    ) -> Vec<Result<(Lead, bool), LeadError>> {
        let applied = all_or_each(
            &self.db,
            analyses,
            apply_analyses_in,
            async |txn, (key, outcome)| apply_analysis_in(txn, key, outcome).await,
        )
        .await;
        for ((_, outcome), result) in analyses.iter().zip(&applied) {
            if let Ok(applied) = result {
                log_applied(outcome, applied);
            }
        }
        applied
    }

    /// Records an attempt to reach the lead; a connected or delivered attempt is also contact.
    pub async fn record_contact_attempt(&self, attempt: ContactAttempt) -> Result<Lead, LeadError> {
        let txn = self.db.begin().await?;
        let model = lead::Entity::find_by_id(attempt.lead_id.as_str())
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| LeadError::not_found("lead", &attempt.lead_id))?;
        let is_newer = model
            .last_attempt_at
            .is_none_or(|previous| previous <= attempt.attempted_at);
        let reached = matches!(
            attempt.outcome,
            ContactOutcome::Connected | ContactOutcome::Delivered
        );
        let newer_contact = model
            .last_contact_at
            .is_none_or(|previous| previous < attempt.attempted_at);
        let was_new = model.status == LeadStatus::New.as_str();
        let mut active = model.into_active_model();
        // A late callback about an older attempt must not overwrite a newer one.
        if is_newer {
            active.last_attempt_at = Set(Some(attempt.attempted_at));
            active.last_attempt_outcome = Set(Some(attempt.outcome.as_str().to_owned()));
        }
        if reached && newer_contact {
            active.last_contact_at = Set(Some(attempt.attempted_at));
        }
        if reached && was_new {
            active.status = Set(LeadStatus::Contacted.as_str().to_owned());
        }
        active.updated_at = Set(Utc::now());
        let updated = active.update(&txn).await?;
        txn.commit().await?;
        tracing::info!(
            lead_id = %updated.id,
            channel = attempt.channel.as_str(),
            outcome = attempt.outcome.as_str(),
            detail = %attempt.detail,
            "contact attempt recorded"
        );
        to_lead(updated)
    }

    pub(super) async fn require_organization(
        &self,
        organization_id: &str,
    ) -> Result<(), LeadError> {
        organization::Entity::find_by_id(organization_id)
            .one(&self.db)
            .await?
            .map(|_| ())
            .ok_or_else(|| LeadError::not_found("organization", organization_id))
    }

    async fn page_of(
        &self,
        query: Select<lead::Entity>,
        organization_id: &str,
        page: &Page,
    ) -> Result<Vec<Lead>, LeadError> {
        let mut query = query
            .filter(lead::Column::OrganizationId.eq(organization_id))
            .order_by_asc(lead::Column::Id);
        if let Some(after) = &page.after {
            query = query.filter(lead::Column::Id.gt(after.as_str()));
        }
        query
            .limit(page.size)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_lead)
            .collect()
    }
}

/// The lead with the contact's phone number, created when there is none; the organization is
/// looked up unless it is known to exist (organizations are never deleted).
async fn find_or_create_on(
    db: &impl ConnectionTrait,
    (contact, organization_known): &(LeadContact, bool),
) -> Result<(Lead, bool), LeadError> {
    if !organization_known {
        find_one::<organization::Entity, _, 1>(
            db,
            [(
                organization::Column::Id,
                contact.organization_id.clone().into(),
            )],
            false,
        )
        .await?
        .ok_or_else(|| LeadError::not_found("organization", &contact.organization_id))?;
    }
    let row = new_lead(contact);
    if db.get_database_backend() == DbBackend::Postgres
        && let Some(found) = find_or_insert_on_postgres(db, contact, &row).await?
    {
        return Ok(found);
    }
    let inserted = lead::Entity::insert(row.clone())
        .on_conflict(lead_exists())
        .exec_without_returning(db)
        .await?;
    if inserted == 1 {
        // Answered as written, without reading it back.
        return Ok((created(row)?, true));
    }
    let model = find_one::<lead::Entity, _, 2>(
        db,
        [
            (
                lead::Column::OrganizationId,
                contact.organization_id.clone().into(),
            ),
            (
                lead::Column::PhoneNumber,
                contact.phone_number.as_str().to_owned().into(),
            ),
        ],
        false,
    )
    .await?
    .ok_or_else(|| LeadError::not_found("lead", contact.phone_number.as_str()))?;
    Ok((to_lead(model)?, false))
}

/// On PostgreSQL, the lead of `contact`'s number found, or `row` inserted, in one round trip
/// (a ringing phone waits for this): `None` only when another request inserted the number's
/// lead between this statement's look and its insert, for the caller to read.
async fn find_or_insert_on_postgres(
    db: &impl ConnectionTrait,
    contact: &LeadContact,
    row: &lead::ActiveModel,
) -> Result<Option<(Lead, bool)>, LeadError> {
    let mut columns = Vec::new();
    let mut values: Vec<sea_orm::Value> = vec![
        contact.organization_id.clone().into(),
        contact.phone_number.as_str().to_owned().into(),
    ];
    for column in lead::Column::iter() {
        if let Some(value) = row.get(column).into_value() {
            columns.push(format!("\"{}\"", column.as_str()));
            values.push(value);
        }
    }
    let placeholders: Vec<String> = (3..values.len() + 1).map(|n| format!("${n}")).collect();
    let sql = format!(
        r#"WITH found AS (
               SELECT * FROM "leads" WHERE "organization_id" = $1 AND "phone_number" = $2
           ), created AS (
               INSERT INTO "leads" ({columns})
               SELECT {placeholders} WHERE NOT EXISTS (SELECT 1 FROM found)
               ON CONFLICT ("organization_id", "phone_number") DO NOTHING
               RETURNING *
           )
           SELECT *, FALSE AS "created" FROM found
           UNION ALL SELECT *, TRUE AS "created" FROM created"#,
        columns = columns.join(", "),
        placeholders = placeholders.join(", "),
    );
    let Some(answer) = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
    else {
        return Ok(None);
    };
    let created: bool = answer.try_get("", "created")?;
    let model = lead::Model::from_query_result(&answer, "")?;
    Ok(Some((to_lead(model)?, created)))
}

/// [`find_or_create_on`] for many contacts inside `txn`: the organizations not known to exist
/// looked up with one query, and the leads of every number seen for the first time in the
/// batch created with one statement; the rest (numbers with a lead, or repeated in the batch)
/// as alone, in order.
async fn find_or_create_all(
    txn: &DatabaseTransaction,
    contacts: &[(LeadContact, bool)],
) -> Result<Vec<(Lead, bool)>, LeadError> {
    let unknown: HashSet<&str> = contacts
        .iter()
        .filter(|(_, known)| !known)
        .map(|(contact, _)| contact.organization_id.as_str())
        .collect();
    if !unknown.is_empty() {
        let found: HashSet<String> = organization::Entity::find()
            .select_only()
            .column(organization::Column::Id)
            .filter(organization::Column::Id.is_in(unknown.iter().copied()))
            .into_tuple::<String>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        if let Some(missing) = unknown.into_iter().find(|id| !found.contains(*id)) {
            return Err(LeadError::not_found("organization", missing));
        }
    }
    let mut first_seen = HashSet::new();
    let fresh: Vec<Option<lead::ActiveModel>> = contacts
        .iter()
        .map(|(contact, _)| {
            first_seen
                .insert((
                    contact.organization_id.as_str(),
                    contact.phone_number.as_str(),
                ))
                .then(|| new_lead(contact))
        })
        .collect();
    let rows: Vec<lead::ActiveModel> = fresh.iter().flatten().cloned().collect();
    let inserted = insert_new_on(txn, rows, lead_exists(), lead::Column::Id).await?;
    let mut found = Vec::with_capacity(contacts.len());
    for ((contact, _), fresh) in contacts.iter().zip(fresh) {
        found.push(match fresh {
            Some(row) if inserted.contains(row.id.as_ref()) => (created(row)?, true),
            // The number has a lead already, or came earlier in this batch: as alone (the
            // organization is known to exist by now).
            _ => find_or_create_on(txn, &(contact.clone(), true)).await?,
        });
    }
    Ok(found)
}

/// The lead a contact starts.
fn new_lead(contact: &LeadContact) -> lead::ActiveModel {
    let now = stored_precision(Utc::now());
    lead::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(contact.organization_id.clone()),
        phone_number: Set(contact.phone_number.as_str().to_owned()),
        // A name given with the contact is a person's (an operator, an import, the API).
        name_source: Set(if contact.name.trim().is_empty() {
            String::new()
        } else {
            NameSource::Person.as_str().to_owned()
        }),
        name_evidence: Set(String::new()),
        name: Set(contact.name.clone()),
        email: Set(contact.email.clone()),
        status: Set(LeadStatus::New.as_str().to_owned()),
        score: Set(0),
        tier: Set(String::new()),
        summary: Set(String::new()),
        interaction_count: Set(0),
        last_contact_at: Set(None),
        last_attempt_at: Set(None),
        last_attempt_outcome: Set(None),
        source: Set(contact.source.clone()),
        notes: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// A lead just inserted, as the answer reports it.
fn created(row: lead::ActiveModel) -> Result<Lead, LeadError> {
    let model = row
        .try_into_model()
        .map_err(|e| LeadError::Internal(format!("new lead: {e}")))?;
    to_lead(model)
}

/// An organization has one lead per phone number.
fn lead_exists() -> OnConflict {
    OnConflict::columns([lead::Column::OrganizationId, lead::Column::PhoneNumber])
        .do_nothing()
        .to_owned()
}

fn log_applied(outcome: &AnalysisOutcome, (lead, applied): &(Lead, bool)) {
    if *applied {
        tracing::info!(
            lead_id = %lead.id,
            conversation_id = %outcome.conversation_id,
            score = lead.score,
            "analysis applied to lead"
        );
    }
}

/// Applies one analysis inside `txn` (see [`LeadBook::apply_analysis`]).
async fn apply_analysis_in(
    txn: &DatabaseTransaction,
    idempotency_key: &str,
    outcome: &AnalysisOutcome,
) -> Result<(Lead, bool), LeadError> {
    // Claim the key first: on SQLite this takes the write lock before anything is read.
    let claimed =
        claim_idempotency_key(txn, "apply_analysis", idempotency_key, &outcome.lead_id).await?;
    let found = lead::Entity::find_by_id(outcome.lead_id.as_str());
    if claimed.is_some() {
        let model = found
            .one(txn)
            .await?
            .ok_or_else(|| LeadError::not_found("lead", &outcome.lead_id))?;
        return Ok((to_lead(model)?, false));
    }
    let model = found
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| LeadError::not_found("lead", &outcome.lead_id))?;
    let updated = with_analysis(model, outcome);
    write_analysed(txn, [updated.clone()]).await?;
    Ok((to_lead(updated)?, true))
}

/// Applies many analyses inside `txn` with a few statements for them all: every key claimed
/// with one insert, every lead read (and locked) with one query, and each lead written once,
/// with the analyses applied in order as one at a time would have.
async fn apply_analyses_in(
    txn: &DatabaseTransaction,
    analyses: &[(String, AnalysisOutcome)],
) -> Result<Vec<(Lead, bool)>, LeadError> {
    let backend = txn.get_database_backend();
    let now = Utc::now();
    let mut claim = idempotency_key::Entity::insert_many(analyses.iter().map(|(key, outcome)| {
        idempotency_key::ActiveModel {
            operation: Set("apply_analysis".to_owned()),
            idempotency_key: Set(key.clone()),
            resource_id: Set(outcome.lead_id.clone()),
            created_at: Set(now),
        }
    }))
    .on_conflict(key_taken())
    .into_query();
    claim.returning(Query::returning().column(idempotency_key::Column::IdempotencyKey));
    // Keys this batch claimed; a key repeated in the batch is applied by its first item only.
    let mut unapplied: HashSet<String> = HashSet::with_capacity(analyses.len());
    for row in txn.query_all(backend.build(&claim)).await? {
        unapplied.insert(row.try_get("", "idempotency_key")?);
    }
    let ids: HashSet<&str> = analyses
        .iter()
        .map(|(_, outcome)| outcome.lead_id.as_str())
        .collect();
    // Locked in id order, so two batches sharing leads wait for each other instead of
    // deadlocking.
    let mut leads: HashMap<String, lead::Model> = lead::Entity::find()
        .filter(lead::Column::Id.is_in(ids))
        .order_by_asc(lead::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?
        .into_iter()
        .map(|model| (model.id.clone(), model))
        .collect();
    let mut changed: Vec<String> = Vec::new();
    let mut answers = Vec::with_capacity(analyses.len());
    for (key, outcome) in analyses {
        let lead_id = outcome.lead_id.as_str();
        let Some(model) = leads.remove(lead_id) else {
            return Err(LeadError::not_found("lead", lead_id));
        };
        let applied = unapplied.remove(key);
        let model = if applied {
            if !changed.iter().any(|id| id == lead_id) {
                changed.push(lead_id.to_owned());
            }
            with_analysis(model, outcome)
        } else {
            model
        };
        answers.push((to_lead(model.clone())?, applied));
        leads.insert(lead_id.to_owned(), model);
    }
    write_analysed(txn, changed.iter().filter_map(|id| leads.remove(id))).await?;
    Ok(answers)
}

/// `model` with `outcome` applied: score, tier, summary, a heard name it takes, and, unless a
/// revision, status, one more interaction and last contact (which only moves forward).
fn with_analysis(model: lead::Model, outcome: &AnalysisOutcome) -> lead::Model {
    let status = match outcome.status {
        Some(status) => status,
        None if model.status == LeadStatus::New.as_str() => LeadStatus::Contacted,
        None => LeadStatus::from_stored(&model.status).unwrap_or(LeadStatus::Contacted),
    };
    let occurred_at = stored_precision(outcome.occurred_at);
    let last_contact_at = match model.last_contact_at {
        Some(previous) if previous > occurred_at => previous,
        _ => occurred_at,
    };
    let heard = outcome
        .heard_name
        .as_ref()
        .filter(|heard| takes_heard_name(&model, heard))
        .cloned();
    let mut updated = model;
    if let Some(heard) = heard {
        updated.name = heard.name.trim().to_owned();
        updated.name_source = heard.source.as_str().to_owned();
        updated.name_evidence = heard.evidence;
    }
    updated.score = i32::from(outcome.score.min(100));
    updated.tier = outcome.tier.as_str().to_owned();
    if !outcome.summary.trim().is_empty() {
        updated.summary = outcome.summary.clone();
    }
    if !outcome.revision {
        updated.status = status.as_str().to_owned();
        updated.interaction_count += 1;
        updated.last_contact_at = Some(last_contact_at);
    }
    updated.updated_at = stored_precision(Utc::now());
    updated
}

/// The columns an analysis changes.
const ANALYSED_COLUMNS: [lead::Column; 10] = [
    lead::Column::Name,
    lead::Column::NameSource,
    lead::Column::NameEvidence,
    lead::Column::Score,
    lead::Column::Tier,
    lead::Column::Summary,
    lead::Column::Status,
    lead::Column::InteractionCount,
    lead::Column::LastContactAt,
    lead::Column::UpdatedAt,
];

/// Writes back the columns an analysis changes of leads read (and locked) in `txn`, with one
/// statement: each row exists, so each insert turns into an update. No read-back: the records
/// are known.
async fn write_analysed(
    txn: &DatabaseTransaction,
    models: impl IntoIterator<Item = lead::Model>,
) -> Result<(), LeadError> {
    let rows: Vec<lead::ActiveModel> = models
        .into_iter()
        .map(IntoActiveModel::into_active_model)
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    lead::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(lead::Column::Id)
                .update_columns(ANALYSED_COLUMNS)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Name, email or phone (by its digits) contains `query`, ignoring case.
pub(super) fn search_condition(query: &str) -> Condition {
    let pattern = format!("%{}%", escape_like(&query.to_lowercase()));
    let lower_like = |column: lead::Column| {
        Expr::expr(Func::lower(Expr::col(column))).like(LikeExpr::new(pattern.clone()).escape('\\'))
    };
    let mut matches = Condition::any()
        .add(lower_like(lead::Column::Name))
        .add(lower_like(lead::Column::Email));
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    if !digits.is_empty() {
        matches = matches.add(lead::Column::PhoneNumber.contains(digits));
    }
    matches
}

/// Whether a heard name goes on the lead: it fills an empty name, replaces a name from a less
/// trusted source ([`NameSource::yields_to`]), and never replaces a person's.
fn takes_heard_name(model: &lead::Model, heard: &HeardName) -> bool {
    let name = heard.name.trim();
    if name.is_empty() {
        return false;
    }
    // A "person" here would be a caller claiming a person's authority: the agent's at most.
    let source = match heard.source {
        NameSource::Person => NameSource::Agent,
        other => other,
    };
    if model.name.trim().is_empty() {
        return true;
    }
    // A name stored before sources were kept is a person's (the migration says so).
    let current = NameSource::from_stored(&model.name_source).unwrap_or(NameSource::Person);
    current.yields_to(source)
}

pub(super) fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(super) fn to_lead(model: lead::Model) -> Result<Lead, LeadError> {
    let corrupt = |column: &str, value: &str| {
        LeadError::Database(sea_orm::DbErr::Type(format!(
            "lead {}: unknown {column} {value:?}",
            model.id
        )))
    };
    let status =
        LeadStatus::from_stored(&model.status).ok_or_else(|| corrupt("status", &model.status))?;
    let tier = match model.tier.as_str() {
        "" => None,
        stored => Some(LeadTier::from_stored(stored).ok_or_else(|| corrupt("tier", stored))?),
    };
    let last_attempt_outcome = match model.last_attempt_outcome.as_deref() {
        None => None,
        Some(stored) => Some(
            ContactOutcome::from_stored(stored)
                .ok_or_else(|| corrupt("last_attempt_outcome", stored))?,
        ),
    };
    Ok(Lead {
        status,
        tier,
        last_attempt_outcome,
        score: u8::try_from(model.score.clamp(0, 100)).unwrap_or(0),
        interaction_count: u32::try_from(model.interaction_count).unwrap_or(0),
        phone_number: PhoneNumber::from_stored(model.phone_number),
        id: model.id,
        organization_id: model.organization_id,
        name_source: NameSource::from_stored(&model.name_source),
        name_evidence: model.name_evidence,
        name: model.name,
        email: model.email,
        summary: model.summary,
        last_contact_at: model.last_contact_at,
        last_attempt_at: model.last_attempt_at,
        source: model.source,
        notes: model.notes,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

/// `at` as the databases keep it (microseconds), so an answer built in memory is what a read
/// returns.
fn stored_precision(at: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    use chrono::SubsecRound;
    at.trunc_subsecs(6)
}
