//! `InterviewStore`: interview sessions (a candidate, a job, the call) and their evaluations,
//! versioned per session like analyses. Idempotent on the caller's keys.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use callmesh_runtime::ServiceError;

use crate::analyzer::interview::Evaluation;
use crate::entity::{interview_evaluation, interview_session};

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: String,
    pub candidate_name: String,
    pub job_role: String,
    pub job_id: String,
    pub conversation_id: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub candidate_name: String,
    pub job_role: String,
    pub job_id: String,
    pub conversation_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvaluation {
    pub id: String,
    pub session_id: String,
    pub conversation_id: String,
    pub version: u32,
    pub evaluation: Evaluation,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct InterviewStore {
    db: DatabaseConnection,
}

impl InterviewStore {
    pub fn new(db: DatabaseConnection) -> Self {
        InterviewStore { db }
    }

    pub async fn create_session(
        &self,
        key: &str,
        new: NewSession,
    ) -> Result<(Session, bool), ServiceError> {
        let row = interview_session::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            idempotency_key: Set(key.to_owned()),
            candidate_name: Set(new.candidate_name),
            job_role: Set(new.job_role),
            job_id: Set(new.job_id),
            conversation_id: Set(new.conversation_id),
            created_at: Set(Utc::now()),
        };
        let inserted = interview_session::Entity::insert(row)
            .on_conflict(
                OnConflict::column(interview_session::Column::IdempotencyKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        let session = interview_session::Entity::find()
            .filter(interview_session::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("interview session {key} vanished")))?;
        if inserted == 1 {
            tracing::info!(session_id = %session.id, job_id = %session.job_id, "interview session created");
        }
        Ok((session.into(), inserted == 1))
    }

    pub async fn session(&self, session_id: &str) -> Result<Session, ServiceError> {
        interview_session::Entity::find_by_id(session_id)
            .one(&self.db)
            .await?
            .map(Into::into)
            .ok_or_else(|| ServiceError::not_found("interview session", session_id))
    }

    /// The newest session linked to a conversation.
    pub async fn session_of_conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Session, ServiceError> {
        self.linked_session(conversation_id).await?.ok_or_else(|| {
            ServiceError::not_found("interview session of conversation", conversation_id)
        })
    }

    /// The newest session linked to each of `conversation_ids` that has one, with one query.
    pub async fn linked_sessions(
        &self,
        conversation_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Session>, ServiceError> {
        let mut linked = std::collections::HashMap::new();
        if conversation_ids.is_empty() {
            return Ok(linked);
        }
        // Oldest first, so a conversation's newest session is the one left in the map.
        for session in interview_session::Entity::find()
            .filter(
                interview_session::Column::ConversationId.is_in(conversation_ids.iter().copied()),
            )
            .order_by_asc(interview_session::Column::Id)
            .all(&self.db)
            .await?
        {
            let session = Session::from(session);
            linked.insert(session.conversation_id.clone(), session);
        }
        Ok(linked)
    }

    /// The newest session linked to a conversation, if any.
    pub async fn linked_session(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Session>, ServiceError> {
        Ok(interview_session::Entity::find()
            .filter(interview_session::Column::ConversationId.eq(conversation_id))
            .order_by_desc(interview_session::Column::Id)
            .one(&self.db)
            .await?
            .map(Into::into))
    }

    pub async fn existing(&self, key: &str) -> Result<Option<StoredEvaluation>, ServiceError> {
        interview_evaluation::Entity::find()
            .filter(interview_evaluation::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
            .map(to_stored)
            .transpose()
    }

    /// Keeps `evaluation` as the session's next version. A conversation given here that the
    /// session did not know yet is linked to it.
    pub async fn insert(
        &self,
        key: &str,
        session: &Session,
        conversation_id: &str,
        evaluation: &Evaluation,
    ) -> Result<(StoredEvaluation, bool), ServiceError> {
        if session.conversation_id.is_empty() && !conversation_id.is_empty() {
            interview_session::Entity::update_many()
                .col_expr(
                    interview_session::Column::ConversationId,
                    sea_orm::sea_query::Expr::value(conversation_id),
                )
                .filter(interview_session::Column::Id.eq(session.id.as_str()))
                .filter(interview_session::Column::ConversationId.eq(""))
                .exec(&self.db)
                .await?;
        }
        let result_json = serde_json::to_string(evaluation)
            .map_err(|e| ServiceError::Internal(format!("encoding evaluation: {e}")))?;
        let created = crate::versions::insert_next(
            || {
                interview_evaluation::Entity::find()
                    .filter(interview_evaluation::Column::SessionId.eq(session.id.as_str()))
                    .count(&self.db)
            },
            |version| {
                let row = interview_evaluation::ActiveModel {
                    id: Set(uuid::Uuid::now_v7().to_string()),
                    idempotency_key: Set(key.to_owned()),
                    session_id: Set(session.id.clone()),
                    job_id: Set(session.job_id.clone()),
                    conversation_id: Set(conversation_id.to_owned()),
                    version: Set(version),
                    analyzer: Set(evaluation.analyzer.as_str().to_owned()),
                    overall_score: Set(i32::from(evaluation.overall_score)),
                    result_json: Set(result_json.clone()),
                    created_at: Set(Utc::now()),
                };
                interview_evaluation::Entity::insert(row)
                    .on_conflict(OnConflict::new().do_nothing().to_owned())
                    .exec_without_returning(&self.db)
            },
            || async {
                let used = interview_evaluation::Entity::find()
                    .filter(interview_evaluation::Column::IdempotencyKey.eq(key))
                    .count(&self.db)
                    .await?;
                Ok(used > 0)
            },
        )
        .await?;
        let stored = self.existing(key).await?.ok_or_else(|| {
            ServiceError::Internal(format!("interview evaluation {key} vanished"))
        })?;
        if created {
            tracing::info!(session_id = %session.id, version = stored.version, overall = evaluation.overall_score, "interview evaluated");
        }
        Ok((stored, created))
    }

    /// A job's sessions, oldest first, after `after` (a session id) when paging, each with its
    /// latest evaluation: two queries whatever the number of sessions.
    pub async fn sessions_of_job(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<(Session, Option<StoredEvaluation>)>, ServiceError> {
        let mut query = interview_session::Entity::find()
            .filter(interview_session::Column::JobId.eq(job_id))
            .order_by_asc(interview_session::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(interview_session::Column::Id.gt(after));
        }
        let sessions = query.all(&self.db).await?;
        let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
        let mut latest = std::collections::HashMap::new();
        if !ids.is_empty() {
            let evaluations = interview_evaluation::Entity::find()
                .filter(interview_evaluation::Column::SessionId.is_in(ids))
                .order_by_desc(interview_evaluation::Column::Version)
                .all(&self.db)
                .await?;
            for row in evaluations {
                if !latest.contains_key(&row.session_id) {
                    latest.insert(row.session_id.clone(), to_stored(row)?);
                }
            }
        }
        Ok(sessions
            .into_iter()
            .map(|row| {
                let evaluation = latest.remove(&row.id);
                (Session::from(row), evaluation)
            })
            .collect())
    }

    /// A job's evaluations, newest first.
    pub async fn list_by_job(
        &self,
        job_id: &str,
        limit: u64,
    ) -> Result<Vec<StoredEvaluation>, ServiceError> {
        interview_evaluation::Entity::find()
            .filter(interview_evaluation::Column::JobId.eq(job_id))
            .order_by_desc(interview_evaluation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_stored)
            .collect()
    }
}

impl From<interview_session::Model> for Session {
    fn from(row: interview_session::Model) -> Self {
        Session {
            id: row.id,
            candidate_name: row.candidate_name,
            job_role: row.job_role,
            job_id: row.job_id,
            conversation_id: row.conversation_id,
            created_at: row.created_at,
        }
    }
}

fn to_stored(row: interview_evaluation::Model) -> Result<StoredEvaluation, ServiceError> {
    let evaluation = serde_json::from_str(&row.result_json)
        .map_err(|e| ServiceError::Internal(format!("interview evaluation {}: {e}", row.id)))?;
    Ok(StoredEvaluation {
        version: u32::try_from(row.version).unwrap_or(0),
        id: row.id,
        session_id: row.session_id,
        conversation_id: row.conversation_id,
        evaluation,
        created_at: row.created_at,
    })
}
