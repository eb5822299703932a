//! What the gateway keeps briefly about organizations: which one owns a phone number, and its
//! settings. Every flow asks both and they change rarely, so each answer is kept for
//! `ORGANIZATION_CACHE_SECS` (5 s by default; 0 turns the cache off): a number moved to another
//! organization, or changed settings, take effect within that time on every replica.

use std::time::Duration;

use moka::sync::Cache;

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_runtime::cache::expiring;

#[derive(Clone)]
pub(crate) struct Directory {
    owners: Option<Cache<String, String>>,
    organizations: Option<Cache<String, lead_pb::Organization>>,
}

impl Directory {
    pub(crate) fn new(keep: Duration) -> Directory {
        Directory {
            owners: expiring(keep),
            organizations: expiring(keep),
        }
    }

    /// The organization owning `number`, if known lately.
    pub(crate) fn owner(&self, number: &str) -> Option<String> {
        self.owners.as_ref()?.get(number)
    }

    pub(crate) fn remember_owner(&self, number: &str, organization_id: &str) {
        if let Some(owners) = &self.owners {
            owners.insert(number.to_owned(), organization_id.to_owned());
        }
    }

    /// The organization `id`, if known lately.
    pub(crate) fn organization(&self, id: &str) -> Option<lead_pb::Organization> {
        self.organizations.as_ref()?.get(id)
    }

    pub(crate) fn remember_organization(&self, organization: &lead_pb::Organization) {
        if let Some(organizations) = &self.organizations {
            organizations.insert(organization.id.clone(), organization.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_zero_keeps_nothing() {
        let directory = Directory::new(Duration::from_millis(50));
        directory.remember_owner("+12125550100", "org_a");
        assert_eq!(directory.owner("+12125550100").as_deref(), Some("org_a"));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(directory.owner("+12125550100"), None, "expired");

        let off = Directory::new(Duration::ZERO);
        off.remember_owner("+12125550100", "org_a");
        assert_eq!(off.owner("+12125550100"), None);
    }
}
