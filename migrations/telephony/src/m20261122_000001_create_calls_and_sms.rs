use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Calls::Table)
                    .if_not_exists()
                    .col(string(Calls::Id).primary_key())
                    .col(string_uniq(Calls::IdempotencyKey))
                    .col(string(Calls::OrganizationId))
                    .col(string(Calls::LeadId))
                    // Unique when set; NULL until the provider assigns one.
                    .col(string_null(Calls::ConversationId).unique_key())
                    .col(string_null(Calls::CallSid).unique_key())
                    .col(string(Calls::AgentId))
                    .col(string(Calls::Direction))
                    .col(string(Calls::Status))
                    .col(string(Calls::FromNumber))
                    .col(string(Calls::ToNumber))
                    .col(integer(Calls::DurationSecs))
                    .col(double(Calls::Cost))
                    .col(text(Calls::TerminationReason))
                    .col(string(Calls::AnsweredBy))
                    .col(big_integer(Calls::LastSequenceNumber))
                    .col(timestamp_with_time_zone_null(Calls::StartedAt))
                    .col(timestamp_with_time_zone_null(Calls::EndedAt))
                    .col(timestamp_with_time_zone(Calls::CreatedAt))
                    .col(timestamp_with_time_zone(Calls::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_calls_organization_lead")
                    .table(Calls::Table)
                    .col(Calls::OrganizationId)
                    .col(Calls::LeadId)
                    .col(Calls::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CallStatusChanges::Table)
                    .if_not_exists()
                    .col(string(CallStatusChanges::Id).primary_key())
                    .col(string_uniq(CallStatusChanges::IdempotencyKey))
                    .col(string(CallStatusChanges::CallId))
                    .col(string(CallStatusChanges::Status))
                    .col(big_integer(CallStatusChanges::SequenceNumber))
                    .col(boolean(CallStatusChanges::Applied))
                    .col(text(CallStatusChanges::RawPayloadJson))
                    .col(timestamp_with_time_zone(CallStatusChanges::OccurredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CallStatusChanges::Table, CallStatusChanges::CallId)
                            .to(Calls::Table, Calls::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SmsMessages::Table)
                    .if_not_exists()
                    .col(string(SmsMessages::Id).primary_key())
                    .col(string_uniq(SmsMessages::IdempotencyKey))
                    .col(string(SmsMessages::OrganizationId))
                    .col(string(SmsMessages::LeadId))
                    .col(string_null(SmsMessages::MessageSid).unique_key())
                    .col(string(SmsMessages::Direction))
                    .col(string(SmsMessages::Status))
                    .col(string(SmsMessages::FromNumber))
                    .col(string(SmsMessages::ToNumber))
                    .col(text(SmsMessages::Body))
                    .col(string(SmsMessages::ErrorCode))
                    .col(text(SmsMessages::ErrorMessage))
                    .col(timestamp_with_time_zone(SmsMessages::CreatedAt))
                    .col(timestamp_with_time_zone(SmsMessages::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sms_messages_organization_lead")
                    .table(SmsMessages::Table)
                    .col(SmsMessages::OrganizationId)
                    .col(SmsMessages::LeadId)
                    .col(SmsMessages::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SmsStatusChanges::Table)
                    .if_not_exists()
                    .col(string(SmsStatusChanges::Id).primary_key())
                    .col(string_uniq(SmsStatusChanges::IdempotencyKey))
                    .col(string(SmsStatusChanges::SmsId))
                    .col(string(SmsStatusChanges::Status))
                    .col(boolean(SmsStatusChanges::Applied))
                    .col(text(SmsStatusChanges::RawPayloadJson))
                    .col(timestamp_with_time_zone(SmsStatusChanges::OccurredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SmsStatusChanges::Table, SmsStatusChanges::SmsId)
                            .to(SmsMessages::Table, SmsMessages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Recordings::Table)
                    .if_not_exists()
                    .col(string(Recordings::Id).primary_key())
                    .col(string_uniq(Recordings::IdempotencyKey))
                    .col(string(Recordings::CallId))
                    .col(string_null(Recordings::RecordingSid).unique_key())
                    .col(string(Recordings::StoragePath))
                    .col(string(Recordings::ContentType))
                    .col(integer(Recordings::DurationSecs))
                    .col(timestamp_with_time_zone(Recordings::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Recordings::Table, Recordings::CallId)
                            .to(Calls::Table, Calls::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Recordings::Table.into_iden(),
            SmsStatusChanges::Table.into_iden(),
            SmsMessages::Table.into_iden(),
            CallStatusChanges::Table.into_iden(),
            Calls::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Calls {
    Table,
    Id,
    IdempotencyKey,
    OrganizationId,
    LeadId,
    ConversationId,
    CallSid,
    AgentId,
    Direction,
    Status,
    FromNumber,
    ToNumber,
    DurationSecs,
    Cost,
    TerminationReason,
    AnsweredBy,
    LastSequenceNumber,
    StartedAt,
    EndedAt,
    CreatedAt,
    UpdatedAt,
}

/// Every status callback as received, whether or not it moved the call.
#[derive(DeriveIden)]
enum CallStatusChanges {
    Table,
    Id,
    IdempotencyKey,
    CallId,
    Status,
    SequenceNumber,
    Applied,
    RawPayloadJson,
    OccurredAt,
}

#[derive(DeriveIden)]
enum SmsMessages {
    Table,
    Id,
    IdempotencyKey,
    OrganizationId,
    LeadId,
    MessageSid,
    Direction,
    Status,
    FromNumber,
    ToNumber,
    Body,
    ErrorCode,
    ErrorMessage,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SmsStatusChanges {
    Table,
    Id,
    IdempotencyKey,
    SmsId,
    Status,
    Applied,
    RawPayloadJson,
    OccurredAt,
}

#[derive(DeriveIden)]
enum Recordings {
    Table,
    Id,
    IdempotencyKey,
    CallId,
    RecordingSid,
    StoragePath,
    ContentType,
    DurationSecs,
    CreatedAt,
}
