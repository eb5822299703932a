use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// On PostgreSQL, the items still to be done, in arrival order. A claim takes the oldest due
/// items (`state IN ('pending', 'processing') … ORDER BY id LIMIT n`), and PostgreSQL answered
/// it by walking the primary key from the first item ever kept, past every finished one: 3.5 ms
/// a claim with 15,000 finished items, and more with every one kept. Through this partial index
/// a claim reads only the items waiting (0.1 ms). PostgreSQL uses it only when the query names
/// the same states as literals, not parameters (see the inbox writer's claim).
///
/// SQLite needs none: it answers the claim from `idx_inbox_items_due` (state, next attempt)
/// and sorts the due items, never touching the finished ones.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(InboxItems::Table)
                    .col(InboxItems::Id)
                    .and_where(Expr::col(InboxItems::State).is_in(["pending", "processing"]))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(InboxItems::Table)
                    .to_owned(),
            )
            .await
    }
}

const INDEX: &str = "idx_inbox_items_waiting";

#[derive(DeriveIden)]
enum InboxItems {
    Table,
    Id,
    State,
}
