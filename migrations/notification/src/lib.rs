//! Migrations of the notification database. The migration table is `seaql_migrations_notification`, so services
//! sharing one PostgreSQL database through `DATABASE_URL` keep separate histories.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_event_log;
mod m20261201_000001_index_pending_crm_deliveries;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_event_log::Migration),
            Box::new(m20261201_000001_index_pending_crm_deliveries::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_notification").into_iden()
    }
}
