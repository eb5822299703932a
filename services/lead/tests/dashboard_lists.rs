//! What the dashboard asks of the lead book, on SQLite and PostgreSQL: names heard in calls
//! (never over a person's), and lead lists filtered, searched and ordered with keyset paging.

use std::collections::HashSet;

use callmesh_lead::book::LeadPage;
use callmesh_lead::model::{
    AnalysisOutcome, HeardName, Lead, LeadChanges, LeadContact, LeadCursor, LeadFilter, LeadOrder,
    LeadTier, NameSource,
};
use callmesh_lead::phone::{DefaultRegion, PhoneNumber};
use callmesh_lead::{DEFAULT_ORGANIZATION_ID, LeadBook};
use callmesh_migration_lead::Migrator;
use callmesh_runtime::Component;
use callmesh_runtime::db::{self, DatabaseUrl};
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

async fn lead(book: &LeadBook, number: &str, name: &str) -> Lead {
    book.find_or_create_lead(LeadContact {
        organization_id: DEFAULT_ORGANIZATION_ID.to_owned(),
        phone_number: PhoneNumber::parse(number, DefaultRegion::default()).expect("number"),
        name: name.to_owned(),
        email: String::new(),
        source: "test".to_owned(),
    })
    .await
    .expect("lead")
    .0
}

fn outcome(
    lead: &Lead,
    conversation: &str,
    score: u8,
    heard: Option<HeardName>,
) -> AnalysisOutcome {
    AnalysisOutcome {
        lead_id: lead.id.clone(),
        conversation_id: conversation.to_owned(),
        score,
        tier: LeadTier::for_score(score),
        summary: String::new(),
        status: None,
        occurred_at: Utc::now(),
        revision: false,
        heard_name: heard,
    }
}

fn heard(name: &str, source: NameSource, evidence: &str) -> Option<HeardName> {
    Some(HeardName {
        name: name.to_owned(),
        source,
        evidence: evidence.to_owned(),
    })
}

#[tokio::test]
async fn names_heard_in_calls_fill_gaps_and_never_replace_a_persons() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let caller = lead(&book, "+14155550101", "").await;
        assert_eq!(caller.name_source, None);

        let said = heard("Marcus Bell", NameSource::Caller, "Hi, it's Marcus Bell.");
        let (named, _) = book
            .apply_analysis("a:1", outcome(&caller, "conv_1", 60, said))
            .await
            .expect("apply");
        assert_eq!(named.name, "Marcus Bell", "{backend:?}");
        assert_eq!(named.name_source, Some(NameSource::Caller));
        assert_eq!(named.name_evidence, "Hi, it's Marcus Bell.");

        // Another caller sentence does not rename; the agent's collected name does.
        let (same, _) = book
            .apply_analysis(
                "a:2",
                outcome(
                    &caller,
                    "conv_2",
                    60,
                    heard("Mark", NameSource::Caller, "Mark here."),
                ),
            )
            .await
            .expect("apply");
        assert_eq!(same.name, "Marcus Bell");
        let collected = heard(
            "Marcus J. Bell",
            NameSource::Agent,
            "data collection full_name: the caller spelled it",
        );
        let (agent, _) = book
            .apply_analysis("a:3", outcome(&caller, "conv_3", 60, collected))
            .await
            .expect("apply");
        assert_eq!(agent.name, "Marcus J. Bell");
        assert_eq!(agent.name_source, Some(NameSource::Agent));

        // A person's name stays whatever a call says.
        let changed = book
            .update_lead(
                &caller.id,
                LeadChanges {
                    name: Some("Marc Bell (CFO)".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("update");
        assert_eq!(changed.name_source, Some(NameSource::Person));
        assert_eq!(changed.name_evidence, "");
        let (kept, _) = book
            .apply_analysis(
                "a:4",
                outcome(
                    &caller,
                    "conv_4",
                    60,
                    heard("Someone Else", NameSource::Agent, "…"),
                ),
            )
            .await
            .expect("apply");
        assert_eq!(kept.name, "Marc Bell (CFO)");

        // A lead created with a name is a person's too.
        let imported = lead(&book, "+14155550102", "Dana Import").await;
        assert_eq!(imported.name_source, Some(NameSource::Person));
        let (still, _) = book
            .apply_analysis(
                "a:5",
                outcome(
                    &imported,
                    "conv_5",
                    60,
                    heard("Dan", NameSource::Caller, "it's Dan"),
                ),
            )
            .await
            .expect("apply");
        assert_eq!(still.name, "Dana Import");
    }
}

async fn all_pages(book: &LeadBook, filter: &LeadFilter, order: LeadOrder, size: u64) -> Vec<Lead> {
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = book
            .list_leads_by(
                DEFAULT_ORGANIZATION_ID,
                filter,
                order,
                &LeadPage {
                    size,
                    after: after.clone(),
                },
            )
            .await
            .expect("page");
        let full = page.len() as u64 == size;
        // Every page goes through its token, as the API hands it out.
        after = page.last().map(|last| {
            LeadCursor::parse(order, &LeadCursor::after(order, last).to_token()).expect("token")
        });
        seen.extend(page);
        if !full {
            return seen;
        }
    }
}

#[tokio::test]
async fn lead_lists_filter_search_and_order_with_keyset_paging() {
    for backend in backends().await {
        let (book, _db) = open(backend).await;
        let now = Utc::now();
        // Eleven leads: scores with ties, some never contacted, contacts with ties.
        let mut leads = Vec::new();
        for i in 0..11u8 {
            let name = if i == 4 {
                "Marcus Bell".to_owned()
            } else {
                format!("Caller {i}")
            };
            let created = lead(&book, &format!("+1415555{:04}", 200 + u32::from(i)), &name).await;
            let score = [90, 40, 65, 90, 85, 10, 65, 90, 30, 55, 65][usize::from(i)];
            let mut applied = outcome(&created, &format!("conv_{i}"), score, None);
            applied.occurred_at = now - Duration::minutes(i64::from(i % 4));
            if i % 3 != 2 {
                book.apply_analysis(&format!("k:{i}"), applied)
                    .await
                    .expect("apply");
            }
            leads.push(book.lead(&created.id).await.expect("lead"));
        }

        let everything = LeadFilter::default();
        for size in [1, 3, 4, 50] {
            let by_score = all_pages(&book, &everything, LeadOrder::Score, size).await;
            assert_eq!(by_score.len(), 11, "{backend:?} size {size}");
            assert!(
                by_score
                    .windows(2)
                    .all(|w| w[0].score > w[1].score
                        || (w[0].score == w[1].score && w[0].id < w[1].id)),
                "{backend:?}"
            );
            let by_contact = all_pages(&book, &everything, LeadOrder::LastContact, size).await;
            let ids: HashSet<_> = by_contact.iter().map(|l| l.id.clone()).collect();
            assert_eq!(
                ids.len(),
                11,
                "{backend:?} size {size}: no lead twice, none skipped"
            );
            assert!(
                by_contact
                    .windows(2)
                    .all(|w| match (w[0].last_contact_at, w[1].last_contact_at) {
                        (Some(a), Some(b)) => a > b || (a == b && w[0].id < w[1].id),
                        (Some(_), None) => true,
                        (None, Some(_)) => false,
                        (None, None) => w[0].id < w[1].id,
                    }),
                "{backend:?}"
            );
            assert!(
                by_contact
                    .last()
                    .is_some_and(|l| l.last_contact_at.is_none())
            );
            let oldest = all_pages(&book, &everything, LeadOrder::Oldest, size).await;
            assert_eq!(
                oldest.iter().map(|l| &l.id).collect::<Vec<_>>(),
                leads.iter().map(|l| &l.id).collect::<Vec<_>>()
            );
        }

        let hot = LeadFilter {
            tier: Some(LeadTier::Hot),
            ..Default::default()
        };
        let hot_leads = all_pages(&book, &hot, LeadOrder::Score, 2).await;
        assert!(!hot_leads.is_empty());
        assert!(
            hot_leads
                .iter()
                .all(|l| l.tier == Some(LeadTier::Hot) && l.score >= 80)
        );
        let expected_hot = leads
            .iter()
            .filter(|l| l.tier == Some(LeadTier::Hot))
            .count();
        assert_eq!(hot_leads.len(), expected_hot);

        let by_name = LeadFilter {
            query: Some("marcus".into()),
            ..Default::default()
        };
        let found = all_pages(&book, &by_name, LeadOrder::Score, 10).await;
        assert_eq!(
            found.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["Marcus Bell"]
        );
        let by_number = LeadFilter {
            query: Some("555-0204".into()),
            ..Default::default()
        };
        let found = all_pages(&book, &by_number, LeadOrder::LastContact, 10).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "Marcus Bell");
    }
}
