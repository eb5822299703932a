use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organization_id: String,
    pub phone_number: String,
    pub name: String,
    /// `person`, `agent`, `caller`, or empty while there is no name.
    pub name_source: String,
    pub name_evidence: String,
    pub email: String,
    pub status: String,
    pub score: i32,
    /// Empty until the lead is first scored.
    pub tier: String,
    pub summary: String,
    pub interaction_count: i32,
    pub last_contact_at: Option<DateTimeUtc>,
    pub last_attempt_at: Option<DateTimeUtc>,
    pub last_attempt_outcome: Option<String>,
    pub source: String,
    pub notes: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
