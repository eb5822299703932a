use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Claims carry their owner: a dispatcher renews and settles only the items it holds, so two
/// replicas never settle each other's work.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(InboxItems::Table)
                    .add_column(string(InboxItems::ClaimedBy).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(InboxItems::Table)
                    .drop_column(InboxItems::ClaimedBy)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum InboxItems {
    Table,
    ClaimedBy,
}
