use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Items keep the W3C `traceparent` they arrived with, so the flow that runs later, on any
/// replica, joins the webhook's trace.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(InboxItems::Table)
                    .add_column(string(InboxItems::TraceParent).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(InboxItems::Table)
                    .drop_column(InboxItems::TraceParent)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum InboxItems {
    Table,
    TraceParent,
}
