use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .if_not_exists()
                    .col(string(Messages::Id).primary_key())
                    .col(string_uniq(Messages::IdempotencyKey))
                    .col(string(Messages::OrganizationId))
                    .col(string(Messages::LeadId))
                    .col(string(Messages::Channel))
                    .col(string(Messages::Role))
                    .col(text(Messages::Content))
                    .col(string(Messages::ConversationId))
                    .col(string(Messages::ExternalId))
                    .col(timestamp_with_time_zone(Messages::OccurredAt))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_lead_occurred")
                    .table(Messages::Table)
                    .col(Messages::LeadId)
                    .col(Messages::OccurredAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Transcripts::Table)
                    .if_not_exists()
                    .col(string(Transcripts::ConversationId).primary_key())
                    .col(string_uniq(Transcripts::IdempotencyKey))
                    .col(string(Transcripts::OrganizationId))
                    .col(string(Transcripts::LeadId))
                    .col(text(Transcripts::Summary))
                    .col(integer(Transcripts::TurnCount))
                    .col(timestamp_with_time_zone_null(Transcripts::StartedAt))
                    .col(timestamp_with_time_zone(Transcripts::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_transcripts_lead")
                    .table(Transcripts::Table)
                    .col(Transcripts::LeadId)
                    .col(Transcripts::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConversationEvents::Table)
                    .if_not_exists()
                    .col(string(ConversationEvents::Id).primary_key())
                    .col(string_uniq(ConversationEvents::IdempotencyKey))
                    .col(string(ConversationEvents::OrganizationId))
                    .col(string(ConversationEvents::LeadId))
                    .col(string(ConversationEvents::ConversationId))
                    .col(string(ConversationEvents::EventType))
                    .col(text(ConversationEvents::DataJson))
                    .col(timestamp_with_time_zone(ConversationEvents::OccurredAt))
                    .col(timestamp_with_time_zone(ConversationEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversation_events_conversation")
                    .table(ConversationEvents::Table)
                    .col(ConversationEvents::ConversationId)
                    .col(ConversationEvents::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HumanControl::Table)
                    .if_not_exists()
                    .col(string(HumanControl::LeadId).primary_key())
                    .col(string(HumanControl::OrganizationId))
                    .col(boolean(HumanControl::Enabled))
                    .col(string(HumanControl::Operator))
                    .col(text(HumanControl::Note))
                    .col(string(HumanControl::LastIdempotencyKey))
                    .col(timestamp_with_time_zone(HumanControl::ChangedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            HumanControl::Table.into_iden(),
            ConversationEvents::Table.into_iden(),
            Transcripts::Table.into_iden(),
            Messages::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Every message of a lead, voice turns and SMS alike.
#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    IdempotencyKey,
    OrganizationId,
    LeadId,
    Channel,
    Role,
    Content,
    ConversationId,
    ExternalId,
    OccurredAt,
    CreatedAt,
}

/// One row per finished call whose transcript was appended; its summary is the lead's
/// "previous summary".
#[derive(DeriveIden)]
enum Transcripts {
    Table,
    ConversationId,
    IdempotencyKey,
    OrganizationId,
    LeadId,
    Summary,
    TurnCount,
    StartedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ConversationEvents {
    Table,
    Id,
    IdempotencyKey,
    OrganizationId,
    LeadId,
    ConversationId,
    EventType,
    DataJson,
    OccurredAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum HumanControl {
    Table,
    LeadId,
    OrganizationId,
    Enabled,
    Operator,
    Note,
    LastIdempotencyKey,
    ChangedAt,
}
