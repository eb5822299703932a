use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// On PostgreSQL, the deliveries still to be sent, in order. The sender claims the oldest due
/// ones (`state = 'pending' … ORDER BY id LIMIT n`), and PostgreSQL answered it by walking the
/// primary key past every delivery already sent. Through this partial index a claim reads only
/// the pending ones. PostgreSQL uses it only when the query names the state as a literal, not
/// a parameter (see the sender's claim). SQLite answers the claim from `idx_crm_deliveries_due`.
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
                    .table(CrmDeliveries::Table)
                    .col(CrmDeliveries::Id)
                    .and_where(Expr::col(CrmDeliveries::State).eq("pending"))
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
                    .table(CrmDeliveries::Table)
                    .to_owned(),
            )
            .await
    }
}

const INDEX: &str = "idx_crm_deliveries_pending";

#[derive(DeriveIden)]
enum CrmDeliveries {
    Table,
    Id,
    State,
}
