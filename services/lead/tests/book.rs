//! LeadBook against real databases: SQLite always, PostgreSQL when reachable.

use std::collections::HashSet;

use callmesh_lead::model::{
    AnalysisOutcome, Channel, ContactAttempt, ContactOutcome, LeadChanges, LeadContact, LeadStatus,
    LeadTier, NewOrganization,
};
use callmesh_lead::phone::{DefaultRegion, PhoneNumber};
use callmesh_lead::{DEFAULT_ORGANIZATION_ID, LeadBook};
use callmesh_migration_lead::Migrator;
use callmesh_runtime::Component;
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::paging::Page;
use callmesh_testkit::{Backend, TestDatabase, backends};
use chrono::{Duration, Utc};

async fn open(backend: Backend) -> (LeadBook, TestDatabase) {
    let database = TestDatabase::create(backend).await;
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("test URL");
    let connection = db::connect(&url).await.expect("connect");
    db::migrate::<Migrator>(&connection, Component::Lead)
        .await
        .expect("migrate");
    let book = LeadBook::new(connection, DefaultRegion::default());
    book.ensure_default_organization("Acme Plumbing")
        .await
        .expect("default organization");
    (book, database)
}

fn phone(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw, DefaultRegion::default()).expect("valid test number")
}

fn contact(organization_id: &str, number: &str) -> LeadContact {
    LeadContact {
        organization_id: organization_id.to_owned(),
        phone_number: phone(number),
        name: String::new(),
        email: String::new(),
        source: "test".to_owned(),
    }
}

fn organization(name: &str, numbers: &[&str]) -> NewOrganization {
    NewOrganization {
        name: name.to_owned(),
        timezone: chrono_tz::America::New_York,
        phone_numbers: numbers.iter().map(|n| phone(n)).collect(),
        settings: Default::default(),
    }
}

#[tokio::test]
async fn find_or_create_is_idempotent_and_keyed_by_normalised_phone() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let (first, created) = book
            .find_or_create_lead(contact(DEFAULT_ORGANIZATION_ID, "(415) 555-2671"))
            .await
            .expect("create");
        assert!(created, "{backend:?}: first call creates");
        assert_eq!(first.phone_number.as_str(), "+14155552671");
        assert_eq!(first.status, LeadStatus::New);

        let (again, created) = book
            .find_or_create_lead(contact(DEFAULT_ORGANIZATION_ID, "+1 415-555-2671"))
            .await
            .expect("find");
        assert!(
            !created,
            "{backend:?}: the same number in another notation is found"
        );
        assert_eq!(again.id, first.id);
        assert_eq!(
            again, first,
            "{backend:?}: the creating answer is what was stored"
        );
    }
}

#[tokio::test]
async fn concurrent_find_or_create_yields_exactly_one_lead() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let calls = (0..16).map(|_| {
            let book = book.clone();
            tokio::spawn(async move {
                book.find_or_create_lead(contact(DEFAULT_ORGANIZATION_ID, "+14155550123"))
                    .await
            })
        });
        let mut ids = HashSet::new();
        let mut creations = 0;
        for call in futures_join(calls).await {
            let (lead, created) = call.expect("task").expect("find or create");
            ids.insert(lead.id);
            creations += usize::from(created);
        }
        assert_eq!(ids.len(), 1, "{backend:?}: one lead for one number");
        assert_eq!(creations, 1, "{backend:?}: exactly one call created it");
    }
}

async fn futures_join<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await);
    }
    out
}

#[tokio::test]
async fn leads_are_scoped_to_their_organization() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let (shop, _) = book
            .create_organization(None, organization("Bike Shop", &["+12125550199"]))
            .await
            .expect("create organization");
        let (in_default, _) = book
            .find_or_create_lead(contact(DEFAULT_ORGANIZATION_ID, "+14155550123"))
            .await
            .expect("lead in default");
        let (in_shop, created) = book
            .find_or_create_lead(contact(&shop.id, "+14155550123"))
            .await
            .expect("lead in shop");
        assert!(
            created,
            "{backend:?}: same number, other organization, other lead"
        );
        assert_ne!(in_default.id, in_shop.id);

        let shop_leads = book
            .list_leads(&shop.id, None, &Page::default())
            .await
            .expect("list");
        assert_eq!(
            shop_leads.iter().map(|l| &l.id).collect::<Vec<_>>(),
            vec![&in_shop.id]
        );

        let missing = book
            .find_or_create_lead(contact(
                "01900000-0000-7000-8000-000000000000",
                "+14155550123",
            ))
            .await
            .expect_err("unknown organization");
        assert_eq!(
            missing.to_string(),
            "organization 01900000-0000-7000-8000-000000000000 not found"
        );
    }
}

#[tokio::test]
async fn listing_pages_through_every_lead_once_in_creation_order() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let mut created = Vec::new();
        for i in 0..7 {
            let (lead, _) = book
                .find_or_create_lead(contact(DEFAULT_ORGANIZATION_ID, &format!("+1415555010{i}")))
                .await
                .expect("create");
            created.push(lead.id);
        }
        let mut seen = Vec::new();
        let mut page = Page {
            size: 3,
            after: None,
        };
        loop {
            let leads = book
                .list_leads(DEFAULT_ORGANIZATION_ID, None, &page)
                .await
                .expect("list");
            let token = page.next_token(leads.iter().map(|l| l.id.as_str()), leads.len());
            seen.extend(leads.into_iter().map(|l| l.id));
            if token.is_empty() {
                break;
            }
            page.after = Some(token);
        }
        assert_eq!(seen, created, "{backend:?}");
    }
}

#[tokio::test]
async fn search_matches_name_email_and_phone_ignoring_case() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let mut ann = contact(DEFAULT_ORGANIZATION_ID, "+14155550101");
        ann.name = "Ann O'Brien".into();
        ann.email = "ann@example.com".into();
        let (ann, _) = book.find_or_create_lead(ann).await.expect("ann");
        let mut bob = contact(DEFAULT_ORGANIZATION_ID, "+12125550102");
        bob.name = "Bob 100% Real".into();
        let (bob, _) = book.find_or_create_lead(bob).await.expect("bob");

        let ids = |leads: Vec<callmesh_lead::model::Lead>| {
            leads.into_iter().map(|l| l.id).collect::<Vec<_>>()
        };
        let page = Page::default();
        let search = |q: &'static str| {
            let book = book.clone();
            let page = page.clone();
            async move {
                book.search_leads(DEFAULT_ORGANIZATION_ID, q, &page)
                    .await
                    .expect("search")
            }
        };
        assert_eq!(
            ids(search("o'bRIEN").await),
            vec![ann.id.clone()],
            "{backend:?}"
        );
        assert_eq!(ids(search("EXAMPLE.com").await), vec![ann.id.clone()]);
        assert_eq!(ids(search("212").await), vec![bob.id.clone()]);
        // LIKE wildcards in the query are literal characters.
        assert_eq!(ids(search("100%").await), vec![bob.id.clone()]);
        assert!(search("%").await.len() == 1);
        assert!(search("nobody").await.is_empty());
    }
}

#[tokio::test]
async fn applying_an_analysis_counts_once_per_key() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let (lead, _) = book
            .find_or_create_lead(contact(DEFAULT_ORGANIZATION_ID, "+14155550123"))
            .await
            .expect("lead");
        let ended = Utc::now();
        let outcome = AnalysisOutcome {
            lead_id: lead.id.clone(),
            conversation_id: "conv_1".into(),
            score: 85,
            tier: LeadTier::Hot,
            summary: "Wants a quote for two e-bikes.".into(),
            status: None,
            occurred_at: ended,
            revision: false,
            heard_name: None,
        };
        let (updated, applied) = book
            .apply_analysis("analysis:conv_1", outcome.clone())
            .await
            .expect("apply");
        assert!(applied);
        assert_eq!(updated.score, 85);
        assert_eq!(updated.tier, Some(LeadTier::Hot));
        assert_eq!(
            updated.status,
            LeadStatus::Contacted,
            "a new lead talked to is contacted"
        );
        assert_eq!(updated.interaction_count, 1);
        assert_eq!(updated.summary, "Wants a quote for two e-bikes.");

        let (again, applied) = book
            .apply_analysis("analysis:conv_1", outcome.clone())
            .await
            .expect("repeat");
        assert!(!applied, "{backend:?}: a repeated key is not applied twice");
        assert_eq!(again.interaction_count, 1);
        assert_eq!(
            again, updated,
            "{backend:?}: the applying answer is what was stored"
        );

        // An older conversation analysed late does not move last contact backwards.
        let older = AnalysisOutcome {
            conversation_id: "conv_0".into(),
            occurred_at: ended - Duration::hours(2),
            score: 40,
            tier: LeadTier::Cold,
            ..outcome.clone()
        };
        let (late, _) = book
            .apply_analysis("analysis:conv_0", older)
            .await
            .expect("late");
        assert_eq!(late.interaction_count, 2);
        let last = late.last_contact_at.expect("last contact");
        assert!(
            (last - ended).num_milliseconds().abs() < 1,
            "{backend:?}: {last} vs {ended}"
        );

        // Re-analysing a call changes the score, not the count of conversations or contact.
        let revised = AnalysisOutcome {
            conversation_id: "conv_1".into(),
            occurred_at: ended + Duration::hours(1),
            score: 92,
            revision: true,
            heard_name: None,
            ..outcome.clone()
        };
        let (revised, applied) = book
            .apply_analysis("analysis_run:conv_1:1", revised)
            .await
            .expect("revision");
        assert!(applied);
        assert_eq!(revised.score, 92);
        assert_eq!(revised.interaction_count, 2, "{backend:?}");
        assert_eq!(revised.last_contact_at, late.last_contact_at);

        let missing = book
            .apply_analysis(
                "analysis:conv_x",
                AnalysisOutcome {
                    lead_id: "01900000-0000-7000-8000-000000000000".into(),
                    conversation_id: "conv_x".into(),
                    score: 1,
                    tier: LeadTier::Cold,
                    summary: String::new(),
                    status: None,
                    occurred_at: ended,
                    revision: false,
                    heard_name: None,
                },
            )
            .await;
        assert!(missing.is_err(), "unknown lead");
    }
}

#[tokio::test]
async fn organizations_own_numbers_exclusively_and_resolve_callers() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let (shop, created) = book
            .create_organization(Some("org-1"), organization("Bike Shop", &["+12125550199"]))
            .await
            .expect("create");
        assert!(created);
        let (same, created) = book
            .create_organization(Some("org-1"), organization("Bike Shop", &["+12125550199"]))
            .await
            .expect("repeat");
        assert!(
            !created,
            "{backend:?}: same idempotency key, same organization"
        );
        assert_eq!(same.id, shop.id);

        // A number owned by another organization cannot be claimed, and nothing is half-written.
        let clash = book
            .create_organization(
                None,
                organization("Rival", &["+13105550100", "+12125550199"]),
            )
            .await
            .expect_err("number already owned");
        assert!(clash.to_string().contains("already belongs"), "{clash}");
        let all = book
            .list_organizations(&Page::default())
            .await
            .expect("list");
        assert_eq!(all.len(), 2, "{backend:?}: the rival was rolled back");
        assert_eq!(
            book.resolve_organization(&phone("+13105550100"))
                .await
                .expect("resolve")
                .id,
            DEFAULT_ORGANIZATION_ID,
            "{backend:?}: the rival's other number was not kept either"
        );

        assert_eq!(
            book.resolve_organization(&phone("+12125550199"))
                .await
                .expect("resolve")
                .id,
            shop.id
        );
        let default = book
            .resolve_organization(&phone("+14155550000"))
            .await
            .expect("resolve");
        assert!(default.is_default);
        assert_eq!(default.name, "Acme Plumbing");

        let shop = book
            .add_phone_number(&shop.id, &phone("+12125550198"))
            .await
            .expect("add");
        assert_eq!(shop.phone_numbers.len(), 2);
        let shop = book
            .remove_phone_number(&shop.id, &phone("+12125550199"))
            .await
            .expect("remove");
        assert_eq!(shop.phone_numbers, vec![phone("+12125550198")]);
    }
}

#[tokio::test]
async fn contact_attempts_and_updates_change_only_what_they_name() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let (lead, _) = book
            .find_or_create_lead(contact(DEFAULT_ORGANIZATION_ID, "+14155550123"))
            .await
            .expect("lead");
        let now = Utc::now();
        let busy = book
            .record_contact_attempt(ContactAttempt {
                lead_id: lead.id.clone(),
                channel: Channel::Voice,
                outcome: ContactOutcome::Busy,
                attempted_at: now,
                detail: "busy".into(),
            })
            .await
            .expect("attempt");
        assert_eq!(busy.last_attempt_outcome, Some(ContactOutcome::Busy));
        assert_eq!(busy.last_contact_at, None, "a busy line is not contact");
        assert_eq!(busy.status, LeadStatus::New);

        // A late callback about an earlier attempt does not overwrite the latest one.
        let late = book
            .record_contact_attempt(ContactAttempt {
                lead_id: lead.id.clone(),
                channel: Channel::Voice,
                outcome: ContactOutcome::NoAnswer,
                attempted_at: now - Duration::minutes(5),
                detail: String::new(),
            })
            .await
            .expect("late attempt");
        assert_eq!(
            late.last_attempt_outcome,
            Some(ContactOutcome::Busy),
            "{backend:?}"
        );

        let updated = book
            .update_lead(
                &lead.id,
                LeadChanges {
                    name: Some("Ann".into()),
                    status: Some(LeadStatus::Qualified),
                    ..LeadChanges::default()
                },
            )
            .await
            .expect("update");
        assert_eq!(updated.name, "Ann");
        assert_eq!(updated.status, LeadStatus::Qualified);
        assert_eq!(updated.last_attempt_outcome, Some(ContactOutcome::Busy));
    }
}
