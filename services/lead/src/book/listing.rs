//! Lead lists as a dashboard pages through them: filtered by status, tier and a search text,
//! in creation order, by score or by last contact, with keyset paging on (sort key, id) so a
//! page never repeats or skips a lead however many there are.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::LeadBook;
use super::leads::{search_condition, to_lead};
use crate::entity::lead;
use crate::error::LeadError;
use crate::model::{Lead, LeadCursor, LeadFilter, LeadOrder};

/// One page of an ordered list.
#[derive(Debug, Clone)]
pub struct LeadPage {
    pub size: u64,
    pub after: Option<LeadCursor>,
}

impl LeadBook {
    /// Up to `page.size` leads of the organization matching `filter`, in `order`, after the
    /// cursor. The next page's cursor is [`LeadCursor::after`] the last lead, when the page is full.
    pub async fn list_leads_by(
        &self,
        organization_id: &str,
        filter: &LeadFilter,
        order: LeadOrder,
        page: &LeadPage,
    ) -> Result<Vec<Lead>, LeadError> {
        self.require_organization(organization_id).await?;
        let mut query =
            lead::Entity::find().filter(lead::Column::OrganizationId.eq(organization_id));
        if let Some(status) = filter.status {
            query = query.filter(lead::Column::Status.eq(status.as_str()));
        }
        if let Some(tier) = filter.tier {
            query = query.filter(lead::Column::Tier.eq(tier.as_str()));
        }
        if let Some(text) = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            query = query.filter(search_condition(text));
        }
        query = match order {
            LeadOrder::Oldest => query.order_by_asc(lead::Column::Id),
            LeadOrder::Score => query
                .order_by_desc(lead::Column::Score)
                .order_by_asc(lead::Column::Id),
            // NULL sorts first descending on PostgreSQL and last on SQLite: say which.
            LeadOrder::LastContact => query
                .order_by(Expr::col(lead::Column::LastContactAt).is_null(), Order::Asc)
                .order_by_desc(lead::Column::LastContactAt)
                .order_by_asc(lead::Column::Id),
        };
        if let Some(after) = &page.after {
            query = query.filter(after_cursor(after));
        }
        query
            .limit(page.size)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_lead)
            .collect()
    }
}

/// The rows after `cursor` in its order.
fn after_cursor(cursor: &LeadCursor) -> Condition {
    match cursor {
        LeadCursor::Oldest { id } => Condition::all().add(lead::Column::Id.gt(id.as_str())),
        LeadCursor::Score { score, id } => {
            Condition::any().add(lead::Column::Score.lt(*score)).add(
                Condition::all()
                    .add(lead::Column::Score.eq(*score))
                    .add(lead::Column::Id.gt(id.as_str())),
            )
        }
        LeadCursor::LastContact { at: None, id } => Condition::all()
            .add(lead::Column::LastContactAt.is_null())
            .add(lead::Column::Id.gt(id.as_str())),
        LeadCursor::LastContact { at: Some(at), id } => {
            let at: DateTime<Utc> = *at;
            Condition::any()
                .add(lead::Column::LastContactAt.is_null())
                .add(lead::Column::LastContactAt.lt(at))
                .add(
                    Condition::all()
                        .add(lead::Column::LastContactAt.eq(at))
                        .add(lead::Column::Id.gt(id.as_str())),
                )
        }
    }
}
