use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrganizationTokens::Table)
                    .if_not_exists()
                    .col(string(OrganizationTokens::Id).primary_key())
                    .col(string(OrganizationTokens::OrganizationId))
                    .col(string(OrganizationTokens::Name))
                    // SHA-256 of the secret: the secret itself is never stored.
                    .col(string_uniq(OrganizationTokens::SecretHash))
                    .col(string_uniq(OrganizationTokens::IdempotencyKey))
                    .col(timestamp_with_time_zone(OrganizationTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(OrganizationTokens::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_organization_tokens_organization")
                    .table(OrganizationTokens::Table)
                    .col(OrganizationTokens::OrganizationId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(OrganizationTokens::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum OrganizationTokens {
    Table,
    Id,
    OrganizationId,
    Name,
    SecretHash,
    IdempotencyKey,
    CreatedAt,
    RevokedAt,
}
