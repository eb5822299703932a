//! Migrations of the lead database. The migration table is `seaql_migrations_lead`, so services
//! sharing one PostgreSQL database through `DATABASE_URL` keep separate histories.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_organizations_and_leads;
mod m20261122_000002_add_organization_settings;
mod m20261122_000003_create_organization_tokens;
mod m20261130_000001_add_lead_name_source;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_organizations_and_leads::Migration),
            Box::new(m20261122_000002_add_organization_settings::Migration),
            Box::new(m20261122_000003_create_organization_tokens::Migration),
            Box::new(m20261130_000001_add_lead_name_source::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_lead").into_iden()
    }
}
