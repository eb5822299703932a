//! Migrations of the context database. The migration table is `seaql_migrations_context`, so services
//! sharing one PostgreSQL database through `DATABASE_URL` keep separate histories.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_conversation_memory;
mod m20261122_000002_index_messages_by_conversation;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_conversation_memory::Migration),
            Box::new(m20261122_000002_index_messages_by_conversation::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_context").into_iden()
    }
}
