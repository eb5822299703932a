//! Migrations of the analysis database. The migration table is `seaql_migrations_analysis`, so services
//! sharing one PostgreSQL database through `DATABASE_URL` keep separate histories.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_analyses;
mod m20261122_000002_unique_evaluation_versions;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_analyses::Migration),
            Box::new(m20261122_000002_unique_evaluation_versions::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_analysis").into_iden()
    }
}
