use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Analyses::Table)
                    .if_not_exists()
                    .col(string(Analyses::Id).primary_key())
                    .col(string_uniq(Analyses::IdempotencyKey))
                    .col(string(Analyses::ConversationId))
                    .col(integer(Analyses::Version))
                    .col(string(Analyses::OrganizationId))
                    .col(string(Analyses::LeadId))
                    .col(string(Analyses::Analyzer))
                    .col(integer(Analyses::LeadScore))
                    .col(string(Analyses::Tier))
                    .col(string(Analyses::Sentiment))
                    .col(string(Analyses::Outcome))
                    // The whole result (intents, factors, keywords...) as JSON.
                    .col(text(Analyses::ResultJson))
                    .col(text(Analyses::ProviderAnalysisJson))
                    .col(timestamp_with_time_zone(Analyses::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Versions of one conversation's analysis are numbered without gaps or repeats.
        manager
            .create_index(
                Index::create()
                    .name("uq_analyses_conversation_version")
                    .table(Analyses::Table)
                    .col(Analyses::ConversationId)
                    .col(Analyses::Version)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_analyses_lead")
                    .table(Analyses::Table)
                    .col(Analyses::LeadId)
                    .col(Analyses::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InterviewSessions::Table)
                    .if_not_exists()
                    .col(string(InterviewSessions::Id).primary_key())
                    .col(string_uniq(InterviewSessions::IdempotencyKey))
                    .col(string(InterviewSessions::CandidateName))
                    .col(string(InterviewSessions::JobRole))
                    .col(string(InterviewSessions::JobId))
                    .col(string(InterviewSessions::ConversationId))
                    .col(timestamp_with_time_zone(InterviewSessions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_interview_sessions_conversation")
                    .table(InterviewSessions::Table)
                    .col(InterviewSessions::ConversationId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InterviewEvaluations::Table)
                    .if_not_exists()
                    .col(string(InterviewEvaluations::Id).primary_key())
                    .col(string_uniq(InterviewEvaluations::IdempotencyKey))
                    .col(string(InterviewEvaluations::SessionId))
                    .col(string(InterviewEvaluations::JobId))
                    .col(string(InterviewEvaluations::ConversationId))
                    .col(integer(InterviewEvaluations::Version))
                    .col(string(InterviewEvaluations::Analyzer))
                    .col(integer(InterviewEvaluations::OverallScore))
                    .col(text(InterviewEvaluations::ResultJson))
                    .col(timestamp_with_time_zone(InterviewEvaluations::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(InterviewEvaluations::Table, InterviewEvaluations::SessionId)
                            .to(InterviewSessions::Table, InterviewSessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_interview_evaluations_job")
                    .table(InterviewEvaluations::Table)
                    .col(InterviewEvaluations::JobId)
                    .col(InterviewEvaluations::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            InterviewEvaluations::Table.into_iden(),
            InterviewSessions::Table.into_iden(),
            Analyses::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Analyses {
    Table,
    Id,
    IdempotencyKey,
    ConversationId,
    Version,
    OrganizationId,
    LeadId,
    Analyzer,
    LeadScore,
    Tier,
    Sentiment,
    Outcome,
    ResultJson,
    ProviderAnalysisJson,
    CreatedAt,
}

#[derive(DeriveIden)]
enum InterviewSessions {
    Table,
    Id,
    IdempotencyKey,
    CandidateName,
    JobRole,
    JobId,
    ConversationId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum InterviewEvaluations {
    Table,
    Id,
    IdempotencyKey,
    SessionId,
    JobId,
    ConversationId,
    Version,
    Analyzer,
    OverallScore,
    ResultJson,
    CreatedAt,
}
