//! Organizations and the phone numbers they own.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use callmesh_runtime::lookup::find_one;
use callmesh_runtime::paging::Page;

use super::{DEFAULT_ORGANIZATION_ID, LeadBook, claim_idempotency_key, new_id};
use crate::entity::{organization, phone_number};
use crate::error::LeadError;
use crate::model::{NewOrganization, Organization, OrganizationSettings};
use crate::phone::PhoneNumber;

impl LeadBook {
    /// Creates the default organization if it is missing and keeps its name in step with
    /// configuration. Safe to run from every replica at once.
    pub async fn ensure_default_organization(&self, name: &str) -> Result<Organization, LeadError> {
        let now = Utc::now();
        organization::Entity::insert(organization::ActiveModel {
            id: Set(DEFAULT_ORGANIZATION_ID.to_owned()),
            name: Set(name.to_owned()),
            timezone: Set(chrono_tz::UTC.name().to_owned()),
            is_default: Set(true),
            settings_json: Set("{}".to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(organization::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        organization::Entity::update_many()
            .col_expr(organization::Column::Name, name.into())
            .filter(organization::Column::Id.eq(DEFAULT_ORGANIZATION_ID))
            .filter(organization::Column::Name.ne(name))
            .exec(&self.db)
            .await?;
        self.organization(DEFAULT_ORGANIZATION_ID).await
    }

    /// Creates an organization with its numbers, all or nothing. With an idempotency key, a
    /// repeated call answers the organization the first one created (`created == false`).
    pub async fn create_organization(
        &self,
        idempotency_key: Option<&str>,
        new: NewOrganization,
    ) -> Result<(Organization, bool), LeadError> {
        let id = new_id();
        let txn = self.db.begin().await?;
        if let Some(key) = idempotency_key
            && let Some(existing) =
                claim_idempotency_key(&txn, "create_organization", key, &id).await?
        {
            txn.rollback().await?;
            return Ok((self.organization(&existing).await?, false));
        }
        let now = Utc::now();
        organization::Entity::insert(organization::ActiveModel {
            id: Set(id.clone()),
            name: Set(new.name),
            timezone: Set(new.timezone.name().to_owned()),
            is_default: Set(false),
            settings_json: Set(settings_json(&new.settings)?),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        for number in &new.phone_numbers {
            claim_number(&txn, &id, number).await?;
        }
        txn.commit().await?;
        Ok((self.organization(&id).await?, true))
    }

    pub async fn organization(&self, id: &str) -> Result<Organization, LeadError> {
        let model = find_one::<organization::Entity, _, 1>(
            &self.db,
            [(organization::Column::Id, id.to_owned().into())],
            false,
        )
        .await?
        .ok_or_else(|| LeadError::not_found("organization", id))?;
        let mut numbers = self.numbers_of(std::slice::from_ref(&model.id)).await?;
        Ok(to_organization(
            model,
            numbers.remove(id).unwrap_or_default(),
        ))
    }

    /// Organizations in creation order (the default organization, whose id sorts first, leads).
    pub async fn list_organizations(&self, page: &Page) -> Result<Vec<Organization>, LeadError> {
        let mut query = organization::Entity::find().order_by_asc(organization::Column::Id);
        if let Some(after) = &page.after {
            query = query.filter(organization::Column::Id.gt(after.as_str()));
        }
        let models = query.limit(page.size).all(&self.db).await?;
        let ids: Vec<String> = models.iter().map(|m| m.id.clone()).collect();
        let mut numbers = self.numbers_of(&ids).await?;
        Ok(models
            .into_iter()
            .map(|m| {
                let owned = numbers.remove(&m.id).unwrap_or_default();
                to_organization(m, owned)
            })
            .collect())
    }

    /// Replaces the organization's follow-up settings.
    pub async fn update_settings(
        &self,
        organization_id: &str,
        settings: &OrganizationSettings,
    ) -> Result<Organization, LeadError> {
        let updated = organization::Entity::update_many()
            .col_expr(
                organization::Column::SettingsJson,
                settings_json(settings)?.into(),
            )
            .col_expr(organization::Column::UpdatedAt, Utc::now().into())
            .filter(organization::Column::Id.eq(organization_id))
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 0 {
            return Err(LeadError::not_found("organization", organization_id));
        }
        self.organization(organization_id).await
    }

    /// Claims `number` for the organization. Claiming a number it already owns changes
    /// nothing; a number another organization owns is a conflict.
    pub async fn add_phone_number(
        &self,
        organization_id: &str,
        number: &PhoneNumber,
    ) -> Result<Organization, LeadError> {
        let txn = self.db.begin().await?;
        organization::Entity::find_by_id(organization_id)
            .one(&txn)
            .await?
            .ok_or_else(|| LeadError::not_found("organization", organization_id))?;
        claim_number(&txn, organization_id, number).await?;
        txn.commit().await?;
        self.organization(organization_id).await
    }

    /// Releases `number`; a number the organization does not own is not found.
    pub async fn remove_phone_number(
        &self,
        organization_id: &str,
        number: &PhoneNumber,
    ) -> Result<Organization, LeadError> {
        let deleted = phone_number::Entity::delete_many()
            .filter(phone_number::Column::PhoneNumber.eq(number.as_str()))
            .filter(phone_number::Column::OrganizationId.eq(organization_id))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            self.organization(organization_id).await?;
            return Err(LeadError::not_found(
                "phone number",
                format!("{number} of organization {organization_id}"),
            ));
        }
        self.organization(organization_id).await
    }

    /// The organization owning `number`, or the default organization.
    pub async fn resolve_organization(
        &self,
        number: &PhoneNumber,
    ) -> Result<Organization, LeadError> {
        let owner = find_one::<phone_number::Entity, _, 1>(
            &self.db,
            [(
                phone_number::Column::PhoneNumber,
                number.as_str().to_owned().into(),
            )],
            false,
        )
        .await?;
        match owner {
            Some(owner) => self.organization(&owner.organization_id).await,
            None => self.organization(DEFAULT_ORGANIZATION_ID).await,
        }
    }

    async fn numbers_of(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<PhoneNumber>>, LeadError> {
        let rows = phone_number::Entity::find()
            .filter(phone_number::Column::OrganizationId.is_in(ids.iter().cloned()))
            .order_by_asc(phone_number::Column::PhoneNumber)
            .all(&self.db)
            .await?;
        let mut by_org: HashMap<String, Vec<PhoneNumber>> = HashMap::new();
        for row in rows {
            by_org
                .entry(row.organization_id)
                .or_default()
                .push(PhoneNumber::from_stored(row.phone_number));
        }
        Ok(by_org)
    }
}

/// Inserts the ownership row unless the number is already claimed, then checks who owns it.
async fn claim_number(
    txn: &impl sea_orm::ConnectionTrait,
    organization_id: &str,
    number: &PhoneNumber,
) -> Result<(), LeadError> {
    phone_number::Entity::insert(phone_number::ActiveModel {
        phone_number: Set(number.as_str().to_owned()),
        organization_id: Set(organization_id.to_owned()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(phone_number::Column::PhoneNumber)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    let owner = phone_number::Entity::find_by_id(number.as_str())
        .one(txn)
        .await?
        .ok_or_else(|| {
            LeadError::Conflict(format!("phone number {number} was released concurrently"))
        })?;
    if owner.organization_id != organization_id {
        return Err(LeadError::Conflict(format!(
            "phone number {number} already belongs to organization {}",
            owner.organization_id
        )));
    }
    Ok(())
}

fn settings_json(settings: &OrganizationSettings) -> Result<String, LeadError> {
    serde_json::to_string(settings).map_err(|e| LeadError::Internal(format!("settings: {e}")))
}

fn to_organization(model: organization::Model, phone_numbers: Vec<PhoneNumber>) -> Organization {
    // Settings written by this code always parse; anything else reads as "all defaults".
    let settings = serde_json::from_str(&model.settings_json).unwrap_or_default();
    Organization {
        settings,
        // Only valid zones are stored; a hand-edited row degrades to UTC rather than failing.
        timezone: model.timezone.parse().unwrap_or(chrono_tz::UTC),
        id: model.id,
        name: model.name,
        phone_numbers,
        is_default: model.is_default,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}
