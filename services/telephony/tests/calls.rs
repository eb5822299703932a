//! A call's outcome, recorded the way the post-call flow records it: the first outcome creates
//! the record with everything it says; a later one completes it without erasing anything or
//! moving the status back; racing first sightings agree on one record; a CallSid that is
//! another call's is refused.

use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::{Component, ServiceError};
use callmesh_telephony::calls::CallBook;
use callmesh_telephony::model::{CallOutcome, CallRef, CallStatus, Direction};
use callmesh_telephony::providers::elevenlabs::ElevenLabsApi;
use callmesh_telephony::providers::twilio::TwilioApi;
use callmesh_testkit::{TestDatabase, backends};

async fn book(database: &TestDatabase) -> CallBook {
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
    let connection = db::connect(&url).await.expect("connect");
    db::migrate::<callmesh_migration_telephony::Migrator>(&connection, Component::Telephony)
        .await
        .expect("migrate");
    // Nothing here reaches a provider: the APIs point at a closed port.
    CallBook::new(
        connection,
        std::env::temp_dir(),
        TwilioApi::new("http://127.0.0.1:9", None, None),
        ElevenLabsApi::new("http://127.0.0.1:9", None, None, String::new()),
    )
}

fn outcome(conversation: &str) -> CallOutcome {
    CallOutcome {
        organization_id: "org_a".into(),
        lead_id: "lead_a".into(),
        conversation_id: Some(conversation.into()),
        call_sid: None,
        agent_id: "agent_a".into(),
        direction: Direction::Inbound,
        status: CallStatus::Completed,
        from_number: "+12523960448".into(),
        to_number: "+12018774358".into(),
        duration_secs: 88,
        cost: 0.25,
        termination_reason: "client disconnected".into(),
        started_at: Some(chrono::Utc::now()),
        ended_at: None,
    }
}

#[tokio::test]
async fn an_outcome_creates_then_completes_a_call_and_never_erases_it() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let calls = book(&database).await;

        let first = calls
            .record_outcome("key_1", outcome("conv_1"))
            .await
            .expect("recorded");
        assert_eq!(first.status, CallStatus::Completed, "{backend:?}");
        assert_eq!(first.duration_secs, 88);
        assert_eq!(first.lead_id, "lead_a");
        assert_eq!(first.from_number, "+12523960448");
        assert_eq!(first.call_sid, None);
        let stored = calls
            .call(&CallRef::Conversation("conv_1".into()))
            .await
            .expect("stored");
        assert_eq!(stored.id, first.id);
        assert_eq!(stored.direction, Direction::Inbound);
        assert_eq!(stored.termination_reason, "client disconnected");

        // A later, sparser outcome with an earlier status: the CallSid is added, nothing known
        // is erased, the status stays.
        let later = CallOutcome {
            call_sid: Some("CA_1".into()),
            status: CallStatus::Ringing,
            lead_id: String::new(),
            from_number: String::new(),
            duration_secs: 0,
            termination_reason: String::new(),
            ..outcome("conv_1")
        };
        let second = calls
            .record_outcome("key_2", later)
            .await
            .expect("recorded");
        assert_eq!(second.id, first.id, "{backend:?}");
        assert_eq!(second.call_sid.as_deref(), Some("CA_1"));
        assert_eq!(second.status, CallStatus::Completed);
        assert_eq!(second.lead_id, "lead_a");
        assert_eq!(second.from_number, "+12523960448");
        assert_eq!(second.duration_secs, 88);
        let by_sid = calls
            .call(&CallRef::Sid("CA_1".into()))
            .await
            .expect("found by its CallSid");
        assert_eq!(
            by_sid, second,
            "{backend:?}: what was answered is what is stored"
        );
    }
}

#[tokio::test]
async fn racing_first_sightings_make_one_call_and_a_taken_call_sid_is_refused() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let calls = book(&database).await;

        let racers: Vec<_> = (0..8)
            .map(|n| {
                let calls = calls.clone();
                tokio::spawn(async move {
                    calls
                        .record_outcome(&format!("race_{n}"), outcome("conv_race"))
                        .await
                })
            })
            .collect();
        let mut ids = Vec::new();
        for racer in racers {
            ids.push(racer.await.expect("joined").expect("recorded").id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{backend:?}: {ids:?}");

        calls
            .record_outcome(
                "owner",
                CallOutcome {
                    call_sid: Some("CA_taken".into()),
                    ..outcome("conv_owner")
                },
            )
            .await
            .expect("recorded");
        for conversation in ["conv_race", "conv_new"] {
            let refused = calls
                .record_outcome(
                    "thief",
                    CallOutcome {
                        call_sid: Some("CA_taken".into()),
                        ..outcome(conversation)
                    },
                )
                .await;
            assert!(
                matches!(refused, Err(ServiceError::Conflict(_))),
                "{backend:?} {conversation}: {refused:?}"
            );
        }
        assert!(
            calls
                .call(&CallRef::Conversation("conv_new".into()))
                .await
                .is_err(),
            "{backend:?}: a refused outcome left a call behind"
        );
    }
}

#[tokio::test]
async fn a_batch_of_outcomes_is_recorded_as_each_alone_would_be() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let calls = book(&database).await;
        let known = calls
            .record_outcome("key_k", outcome("conv_known"))
            .await
            .expect("recorded");
        let with_sid = |conversation: &str, sid: &str| CallOutcome {
            call_sid: Some(sid.into()),
            ..outcome(conversation)
        };
        let batch = vec![
            ("key_a".to_owned(), outcome("conv_a")),
            ("key_b".to_owned(), with_sid("conv_b", "CA_b")),
            // conv_a again, later and sparser: completes the call made above, moves nothing back.
            (
                "key_a2".to_owned(),
                CallOutcome {
                    status: CallStatus::Ringing,
                    duration_secs: 0,
                    ..with_sid("conv_a", "CA_a")
                },
            ),
            ("key_k2".to_owned(), with_sid("conv_known", "CA_k")),
        ];
        let recorded: Vec<_> = calls
            .record_outcomes(&batch)
            .await
            .into_iter()
            .map(|call| call.expect("recorded"))
            .collect();
        assert_eq!(recorded[0].call_sid, None, "{backend:?}");
        assert_eq!(
            recorded[2].id, recorded[0].id,
            "{backend:?}: one call for conv_a"
        );
        assert_eq!(recorded[2].call_sid.as_deref(), Some("CA_a"));
        assert_eq!(recorded[2].status, CallStatus::Completed);
        assert_eq!(recorded[2].duration_secs, 88);
        assert_eq!(recorded[3].id, known.id, "{backend:?}");
        assert_eq!(recorded[3].call_sid.as_deref(), Some("CA_k"));
        let stored = calls
            .call(&CallRef::Conversation("conv_a".into()))
            .await
            .expect("stored");
        assert_eq!(stored.call_sid.as_deref(), Some("CA_a"), "{backend:?}");
        assert_eq!(stored.status, CallStatus::Completed);

        // A CallSid that is another call's fails its item alone; the rest are kept.
        let batch = vec![
            ("key_c".to_owned(), outcome("conv_c")),
            ("key_d".to_owned(), with_sid("conv_d", "CA_b")),
        ];
        let recorded = calls.record_outcomes(&batch).await;
        assert!(recorded[0].is_ok(), "{backend:?}: {recorded:?}");
        assert!(
            matches!(recorded[1], Err(ServiceError::Conflict(_))),
            "{backend:?}: {recorded:?}"
        );
        assert!(
            calls
                .call(&CallRef::Conversation("conv_c".into()))
                .await
                .is_ok()
        );
        assert!(
            calls
                .call(&CallRef::Conversation("conv_d".into()))
                .await
                .is_err(),
            "{backend:?}"
        );
    }
}
