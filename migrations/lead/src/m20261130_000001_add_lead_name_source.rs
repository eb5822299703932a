use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Leads::Table)
                    .add_column(text(Leads::NameSource).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Leads::Table)
                    .add_column(text(Leads::NameEvidence).default(""))
                    .to_owned(),
            )
            .await?;
        // Every name before this migration was given through the API or an import: a person's.
        manager
            .exec_stmt(
                Query::update()
                    .table(Leads::Table)
                    .value(Leads::NameSource, "person")
                    .and_where(Expr::col(Leads::Name).ne(""))
                    .to_owned(),
            )
            .await?;
        // The dashboard's orders: best score first, most recent contact first.
        manager
            .create_index(
                Index::create()
                    .name("idx_leads_organization_score")
                    .table(Leads::Table)
                    .col(Leads::OrganizationId)
                    .col(Leads::Score)
                    .col(Leads::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_leads_organization_last_contact")
                    .table(Leads::Table)
                    .col(Leads::OrganizationId)
                    .col(Leads::LastContactAt)
                    .col(Leads::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in [
            "idx_leads_organization_score",
            "idx_leads_organization_last_contact",
        ] {
            manager
                .drop_index(Index::drop().name(index).table(Leads::Table).to_owned())
                .await?;
        }
        for column in [Leads::NameSource, Leads::NameEvidence] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Leads::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Where a lead's name came from (`person`, `agent`, `caller`, or empty while there is none)
/// and what shows it.
#[derive(DeriveIden, Clone, Copy)]
enum Leads {
    Table,
    Id,
    OrganizationId,
    Name,
    Score,
    LastContactAt,
    NameSource,
    NameEvidence,
}
