//! Versions of one interview session's evaluation are numbered without repeats, as analyses are.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("uq_interview_evaluations_session_version")
                    .table(InterviewEvaluations::Table)
                    .col(InterviewEvaluations::SessionId)
                    .col(InterviewEvaluations::Version)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("uq_interview_evaluations_session_version")
                    .table(InterviewEvaluations::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum InterviewEvaluations {
    Table,
    SessionId,
    Version,
}
