//! Migrations of the gateway database. The migration table is `seaql_migrations_gateway`, so services
//! sharing one PostgreSQL database through `DATABASE_URL` keep separate histories.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_inbox;
mod m20261130_000001_add_inbox_claims;
mod m20261130_000002_create_shared_limits;
mod m20261130_000003_add_inbox_trace_parent;
mod m20261201_000001_index_waiting_inbox_items;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_inbox::Migration),
            Box::new(m20261130_000001_add_inbox_claims::Migration),
            Box::new(m20261130_000002_create_shared_limits::Migration),
            Box::new(m20261130_000003_add_inbox_trace_parent::Migration),
            Box::new(m20261201_000001_index_waiting_inbox_items::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_gateway").into_iden()
    }
}
