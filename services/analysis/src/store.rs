//! `AnalysisStore`: runs the analyzer and keeps every result, versioned per conversation: a
//! re-run adds a version and never overwrites. Idempotent on the caller's key.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
};

use callmesh_runtime::ServiceError;
use callmesh_runtime::batch::{all_or_each, insert_new};

use crate::analyzer::{Findings, Tier};
use crate::entity::analysis;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnalysis {
    pub id: String,
    pub conversation_id: String,
    pub lead_id: String,
    pub organization_id: String,
    pub version: u32,
    pub findings: Findings,
    pub provider_analysis_json: String,
    pub created_at: DateTime<Utc>,
}

/// Who and what a conversation analysis is about.
#[derive(Debug, Clone)]
pub struct Subject {
    pub organization_id: String,
    pub lead_id: String,
    pub conversation_id: String,
    pub provider_analysis_json: String,
}

#[derive(Clone)]
pub struct AnalysisStore {
    db: DatabaseConnection,
}

impl AnalysisStore {
    pub fn new(db: DatabaseConnection) -> Self {
        AnalysisStore { db }
    }

    /// The analyses any of `keys` already produced, by key, with one query.
    pub async fn existing_many(
        &self,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, StoredAnalysis>, ServiceError> {
        let mut existing = std::collections::HashMap::new();
        if keys.is_empty() {
            return Ok(existing);
        }
        for row in analysis::Entity::find()
            .filter(analysis::Column::IdempotencyKey.is_in(keys.iter().copied()))
            .all(&self.db)
            .await?
        {
            existing.insert(row.idempotency_key.clone(), to_stored(row)?);
        }
        Ok(existing)
    }

    /// The analysis an idempotency key already produced, if any.
    pub async fn existing(&self, key: &str) -> Result<Option<StoredAnalysis>, ServiceError> {
        self.by_key(key).await
    }

    /// Keeps `findings` as the next version of the conversation's analysis; a key already used
    /// answers its first result (and `false`).
    pub async fn insert(
        &self,
        key: &str,
        subject: Subject,
        findings: Findings,
    ) -> Result<(StoredAnalysis, bool), ServiceError> {
        let stored = insert_on(&self.db, &(key.to_owned(), subject, findings)).await?;
        log_stored(&stored);
        Ok(stored)
    }

    /// [`AnalysisStore::insert`] for many analyses, `(key, subject, findings)`, in one
    /// transaction (see [`all_or_each`]).
    pub async fn insert_many(
        &self,
        analyses: &[(String, Subject, Findings)],
    ) -> Vec<Result<(StoredAnalysis, bool), ServiceError>> {
        let stored = all_or_each(&self.db, analyses, insert_all, async |txn, analysis| {
            insert_on(txn, analysis).await
        })
        .await;
        for stored in stored.iter().flatten() {
            log_stored(stored);
        }
        stored
    }

    /// The latest analysis of a conversation, or version `version` when it is not 0.
    pub async fn get(
        &self,
        conversation_id: &str,
        version: u32,
    ) -> Result<StoredAnalysis, ServiceError> {
        let mut query = analysis::Entity::find()
            .filter(analysis::Column::ConversationId.eq(conversation_id))
            .order_by_desc(analysis::Column::Version);
        if version > 0 {
            query = query
                .filter(analysis::Column::Version.eq(i32::try_from(version).unwrap_or(i32::MAX)));
        }
        let row = query
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found("analysis of conversation", conversation_id))?;
        to_stored(row)
    }

    /// Every version for a conversation, or every analysis of a lead, newest first.
    pub async fn list(
        &self,
        conversation_id: Option<&str>,
        lead_id: Option<&str>,
        limit: u64,
    ) -> Result<Vec<StoredAnalysis>, ServiceError> {
        use sea_orm::QuerySelect;
        let mut query = analysis::Entity::find()
            .order_by_desc(analysis::Column::Id)
            .limit(limit);
        if let Some(conversation_id) = conversation_id {
            query = query.filter(analysis::Column::ConversationId.eq(conversation_id));
        }
        if let Some(lead_id) = lead_id {
            query = query.filter(analysis::Column::LeadId.eq(lead_id));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_stored)
            .collect()
    }

    async fn by_key(&self, key: &str) -> Result<Option<StoredAnalysis>, ServiceError> {
        by_key(&self.db, key).await
    }
}

async fn by_key(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<StoredAnalysis>, ServiceError> {
    analysis::Entity::find()
        .filter(analysis::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
        .map(to_stored)
        .transpose()
}

fn to_stored(row: analysis::Model) -> Result<StoredAnalysis, ServiceError> {
    let findings = serde_json::from_str(&row.result_json)
        .map_err(|e| ServiceError::Internal(format!("analysis {}: {e}", row.id)))?;
    Ok(StoredAnalysis {
        version: u32::try_from(row.version).unwrap_or(0),
        id: row.id,
        conversation_id: row.conversation_id,
        lead_id: row.lead_id,
        organization_id: row.organization_id,
        findings,
        provider_analysis_json: row.provider_analysis_json,
        created_at: row.created_at,
    })
}

fn log_stored((stored, created): &(StoredAnalysis, bool)) {
    if *created {
        tracing::info!(conversation_id = %stored.conversation_id, version = stored.version, analyzer = stored.findings.analyzer.as_str(), score = stored.findings.lead_score, "conversation analysed");
    }
}

/// Keeps one analysis on `db` (see [`AnalysisStore::insert`]).
async fn insert_on(
    db: &impl ConnectionTrait,
    analysis: &(String, Subject, Findings),
) -> Result<(StoredAnalysis, bool), ServiceError> {
    let (key, subject, _) = analysis;
    let key = key.as_str();
    let row = analysis_row(analysis)?;
    let written_version = std::sync::atomic::AtomicI32::new(row.version);
    let created = crate::versions::insert_next(
        || {
            analysis::Entity::find()
                .filter(analysis::Column::ConversationId.eq(subject.conversation_id.as_str()))
                .count(db)
        },
        |version| {
            written_version.store(version, std::sync::atomic::Ordering::Relaxed);
            let mut row = row.clone();
            row.version = version;
            analysis::Entity::insert(row.into_active_model())
                .on_conflict(OnConflict::new().do_nothing().to_owned())
                .exec_without_returning(db)
        },
        || async {
            let used = analysis::Entity::find()
                .filter(analysis::Column::IdempotencyKey.eq(key))
                .count(db)
                .await?;
            Ok(used > 0)
        },
    )
    .await?;
    let stored = if created {
        // What was written is answered as written, without reading it back.
        to_stored(analysis::Model {
            version: written_version.load(std::sync::atomic::Ordering::Relaxed),
            ..row
        })?
    } else {
        by_key(db, key)
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("analysis {key} vanished")))?
    };
    Ok((stored, created))
}

/// [`insert_on`] for many analyses inside `txn`: the first analysis of every conversation
/// seen for the first time in the batch is tried as version 1, all with one statement; the
/// rest (a conversation with versions, or repeated in the batch) as alone, in order.
async fn insert_all(
    txn: &DatabaseTransaction,
    analyses: &[(String, Subject, Findings)],
) -> Result<Vec<(StoredAnalysis, bool)>, ServiceError> {
    let mut first_seen = HashSet::new();
    let mut fresh = Vec::with_capacity(analyses.len());
    for analysis in analyses {
        fresh.push(
            match first_seen.insert(analysis.1.conversation_id.as_str()) {
                true => Some(analysis_row(analysis)?),
                false => None,
            },
        );
    }
    let rows: Vec<analysis::ActiveModel> = fresh
        .iter()
        .flatten()
        .map(|row| row.clone().into_active_model())
        .collect();
    let inserted = insert_new(txn, rows, analysis::Column::Id).await?;
    let mut stored = Vec::with_capacity(analyses.len());
    for (analysis, fresh) in analyses.iter().zip(fresh) {
        stored.push(match fresh {
            Some(row) if inserted.contains(&row.id) => (to_stored(row)?, true),
            _ => insert_on(txn, analysis).await?,
        });
    }
    Ok(stored)
}

/// The row `findings` are kept as, as version 1.
fn analysis_row(
    (key, subject, findings): &(String, Subject, Findings),
) -> Result<analysis::Model, ServiceError> {
    let result_json = serde_json::to_string(&findings)
        .map_err(|e| ServiceError::Internal(format!("encoding findings: {e}")))?;
    let created_at = {
        use chrono::SubsecRound;
        // As the databases keep it, so the answer is what a read returns.
        Utc::now().trunc_subsecs(6)
    };
    Ok(analysis::Model {
        id: uuid::Uuid::now_v7().to_string(),
        idempotency_key: key.clone(),
        conversation_id: subject.conversation_id.clone(),
        version: 1,
        organization_id: subject.organization_id.clone(),
        lead_id: subject.lead_id.clone(),
        analyzer: findings.analyzer.as_str().to_owned(),
        lead_score: i32::from(findings.lead_score),
        tier: Tier::of(findings.lead_score).as_str().to_owned(),
        sentiment: format!("{:?}", findings.sentiment).to_lowercase(),
        outcome: format!("{:?}", findings.outcome).to_lowercase(),
        result_json,
        provider_analysis_json: subject.provider_analysis_json.clone(),
        created_at,
    })
}
