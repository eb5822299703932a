use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InboxItems::Table)
                    .if_not_exists()
                    .col(big_integer(InboxItems::Id).auto_increment().primary_key())
                    .col(string(InboxItems::Provider))
                    .col(string(InboxItems::EventType))
                    .col(string(InboxItems::IdempotencyKey))
                    .col(blob(InboxItems::RawBody))
                    .col(timestamp_with_time_zone(InboxItems::ReceivedAt))
                    .col(string(InboxItems::State))
                    .col(integer(InboxItems::Attempts))
                    .col(timestamp_with_time_zone(InboxItems::NextAttemptAt))
                    .col(text(InboxItems::LastError))
                    .col(timestamp_with_time_zone(InboxItems::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // A repeated delivery of the same event is recognised here, not in memory.
        manager
            .create_index(
                Index::create()
                    .name("uq_inbox_items_provider_key")
                    .table(InboxItems::Table)
                    .col(InboxItems::Provider)
                    .col(InboxItems::IdempotencyKey)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_inbox_items_due")
                    .table(InboxItems::Table)
                    .col(InboxItems::State)
                    .col(InboxItems::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(InboxItems::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

/// Webhooks accepted by the gateway, committed before the provider gets its 200.
#[derive(DeriveIden)]
enum InboxItems {
    Table,
    Id,
    Provider,
    EventType,
    IdempotencyKey,
    RawBody,
    ReceivedAt,
    State,
    Attempts,
    NextAttemptAt,
    LastError,
    UpdatedAt,
}
