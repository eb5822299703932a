use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(text(Organizations::SettingsJson).default("{}"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .drop_column(Organizations::SettingsJson)
                    .to_owned(),
            )
            .await
    }
}

/// Follow-up settings (business hours, auto-reply, urgency, numbers) as a JSON object.
#[derive(DeriveIden)]
enum Organizations {
    Table,
    SettingsJson,
}
