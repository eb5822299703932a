use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Limits shared by every telephony replica (`callmesh_runtime::limits`): rate counters, one row
/// per key and fixed window (the per-lead SMS limit). Named for telephony: services sharing one
/// database keep disjoint tables.
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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateCounters::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateCounters {
    #[sea_orm(iden = "telephony_rate_counters")]
    Table,
    Key,
    WindowStart,
    Count,
}
