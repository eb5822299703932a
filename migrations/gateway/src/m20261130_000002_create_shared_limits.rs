use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Limits shared by every gateway replica (`callmesh_runtime::limits`): rate counters, one row
/// per key and fixed window, and cooldowns, one row per key with its holder and end. Named for
/// the gateway: services sharing one database keep disjoint tables.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateCounters::Table)
                    .if_not_exists()
                    .col(string(RateCounters::Key))
                    .col(big_integer(RateCounters::WindowStart))
                    .col(big_integer(RateCounters::Count))
                    .primary_key(
                        Index::create()
                            .col(RateCounters::Key)
                            .col(RateCounters::WindowStart),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Cooldowns::Table)
                    .if_not_exists()
                    .col(string(Cooldowns::Key).primary_key())
                    .col(string(Cooldowns::Holder))
                    .col(big_integer(Cooldowns::UntilMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Cooldowns::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RateCounters::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateCounters {
    #[sea_orm(iden = "gateway_rate_counters")]
    Table,
    Key,
    WindowStart,
    Count,
}

#[derive(DeriveIden)]
enum Cooldowns {
    #[sea_orm(iden = "gateway_cooldowns")]
    Table,
    Key,
    Holder,
    UntilMs,
}
