use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .if_not_exists()
                    .col(string(Organizations::Id).primary_key())
                    .col(string(Organizations::Name))
                    .col(string(Organizations::Timezone))
                    .col(boolean(Organizations::IsDefault))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .col(timestamp_with_time_zone(Organizations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrganizationPhoneNumbers::Table)
                    .if_not_exists()
                    // A number belongs to at most one organization.
                    .col(string(OrganizationPhoneNumbers::PhoneNumber).primary_key())
                    .col(string(OrganizationPhoneNumbers::OrganizationId))
                    .col(timestamp_with_time_zone(
                        OrganizationPhoneNumbers::CreatedAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                OrganizationPhoneNumbers::Table,
                                OrganizationPhoneNumbers::OrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_organization_phone_numbers_organization")
                    .table(OrganizationPhoneNumbers::Table)
                    .col(OrganizationPhoneNumbers::OrganizationId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Leads::Table)
                    .if_not_exists()
                    .col(string(Leads::Id).primary_key())
                    .col(string(Leads::OrganizationId))
                    .col(string(Leads::PhoneNumber))
                    .col(string(Leads::Name))
                    .col(string(Leads::Email))
                    .col(string(Leads::Status))
                    .col(integer(Leads::Score))
                    .col(string(Leads::Tier))
                    .col(text(Leads::Summary))
                    .col(integer(Leads::InteractionCount))
                    .col(timestamp_with_time_zone_null(Leads::LastContactAt))
                    .col(timestamp_with_time_zone_null(Leads::LastAttemptAt))
                    .col(string_null(Leads::LastAttemptOutcome))
                    .col(string(Leads::Source))
                    .col(text(Leads::Notes))
                    .col(timestamp_with_time_zone(Leads::CreatedAt))
                    .col(timestamp_with_time_zone(Leads::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Leads::Table, Leads::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One lead per phone number within an organization: find-or-create relies on it.
        manager
            .create_index(
                Index::create()
                    .name("uq_leads_organization_phone")
                    .table(Leads::Table)
                    .col(Leads::OrganizationId)
                    .col(Leads::PhoneNumber)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_leads_organization_id")
                    .table(Leads::Table)
                    .col(Leads::OrganizationId)
                    .col(Leads::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LeadIdempotencyKeys::Table)
                    .if_not_exists()
                    .col(string(LeadIdempotencyKeys::IdempotencyKey))
                    .col(string(LeadIdempotencyKeys::Operation))
                    .col(string(LeadIdempotencyKeys::ResourceId))
                    .col(timestamp_with_time_zone(LeadIdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(LeadIdempotencyKeys::Operation)
                            .col(LeadIdempotencyKeys::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LeadIdempotencyKeys::Table.into_iden(),
            Leads::Table.into_iden(),
            OrganizationPhoneNumbers::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    Timezone,
    IsDefault,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrganizationPhoneNumbers {
    Table,
    PhoneNumber,
    OrganizationId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Leads {
    Table,
    Id,
    OrganizationId,
    PhoneNumber,
    Name,
    Email,
    Status,
    Score,
    Tier,
    Summary,
    InteractionCount,
    LastContactAt,
    LastAttemptAt,
    LastAttemptOutcome,
    Source,
    Notes,
    CreatedAt,
    UpdatedAt,
}

/// Keys of mutating calls already applied, per operation: a repeated call finds its key here
/// and answers the resource it produced instead of applying twice.
#[derive(DeriveIden)]
enum LeadIdempotencyKeys {
    Table,
    IdempotencyKey,
    Operation,
    ResourceId,
    CreatedAt,
}
