use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    // Monotonically increasing: the SSE `id:` and the resume point.
                    .col(big_integer(Events::Id).auto_increment().primary_key())
                    .col(string_uniq(Events::IdempotencyKey))
                    .col(string(Events::OrganizationId))
                    .col(string(Events::LeadId))
                    .col(string(Events::EventType))
                    .col(text(Events::PayloadJson))
                    .col(timestamp_with_time_zone(Events::OccurredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_organization_id")
                    .table(Events::Table)
                    .col(Events::OrganizationId)
                    .col(Events::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CrmDeliveries::Table)
                    .if_not_exists()
                    .col(string(CrmDeliveries::Id).primary_key())
                    .col(string_uniq(CrmDeliveries::IdempotencyKey))
                    .col(string(CrmDeliveries::OrganizationId))
                    .col(string(CrmDeliveries::LeadId))
                    // One CRM record per call, whatever the number of requests.
                    .col(string_uniq(CrmDeliveries::CallId))
                    .col(string(CrmDeliveries::State))
                    .col(text(CrmDeliveries::RecordJson))
                    .col(integer(CrmDeliveries::Attempts))
                    .col(timestamp_with_time_zone_null(CrmDeliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone(CrmDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(CrmDeliveries::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_crm_deliveries_due")
                    .table(CrmDeliveries::Table)
                    .col(CrmDeliveries::State)
                    .col(CrmDeliveries::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CrmDeliveryAttempts::Table)
                    .if_not_exists()
                    .col(string(CrmDeliveryAttempts::DeliveryId))
                    .col(integer(CrmDeliveryAttempts::Attempt))
                    .col(integer(CrmDeliveryAttempts::HttpStatus))
                    .col(text(CrmDeliveryAttempts::Error))
                    .col(timestamp_with_time_zone(CrmDeliveryAttempts::AttemptedAt))
                    .primary_key(
                        Index::create()
                            .col(CrmDeliveryAttempts::DeliveryId)
                            .col(CrmDeliveryAttempts::Attempt),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CrmDeliveryAttempts::Table, CrmDeliveryAttempts::DeliveryId)
                            .to(CrmDeliveries::Table, CrmDeliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CrmDeliveryAttempts::Table.into_iden(),
            CrmDeliveries::Table.into_iden(),
            Events::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    IdempotencyKey,
    OrganizationId,
    LeadId,
    EventType,
    PayloadJson,
    OccurredAt,
}

#[derive(DeriveIden)]
enum CrmDeliveries {
    Table,
    Id,
    IdempotencyKey,
    OrganizationId,
    LeadId,
    CallId,
    State,
    RecordJson,
    Attempts,
    NextAttemptAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CrmDeliveryAttempts {
    Table,
    DeliveryId,
    Attempt,
    HttpStatus,
    Error,
    AttemptedAt,
}
