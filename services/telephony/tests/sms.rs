//! A text's delivery callbacks, applied in whatever order they are processed: of two endings,
//! the one Twilio sent first wins, and a read after an ending that lost no longer holds.

use chrono::{Duration, Utc};

use callmesh_runtime::Component;
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_telephony::model::Direction;
use callmesh_telephony::providers::twilio::TwilioApi;
use callmesh_telephony::sms::{NewSms, SendPolicy, SmsBook, SmsStatusUpdate};
use callmesh_telephony::sms_status::SmsStatus;
use callmesh_testkit::{TestDatabase, backends};

async fn book(database: &TestDatabase) -> SmsBook {
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
    let connection = db::connect(&url).await.expect("connect");
    db::migrate::<callmesh_migration_telephony::Migrator>(&connection, Component::Telephony)
        .await
        .expect("migrate");
    // Nothing here reaches Twilio: the API points at a closed port.
    SmsBook::new(
        connection,
        TwilioApi::new("http://127.0.0.1:9", None, None),
        SendPolicy {
            default_from: None,
            status_callback: None,
            per_lead_limit: 10,
            window: Duration::minutes(1),
        },
    )
}

fn update(sid: &str, status: &str, code: &str, received: chrono::DateTime<Utc>) -> SmsStatusUpdate {
    SmsStatusUpdate {
        message_sid: sid.into(),
        status: status.into(),
        error_code: code.into(),
        error_message: String::new(),
        raw_payload_json: "{}".into(),
        occurred_at: received,
    }
}

#[tokio::test]
async fn the_first_ending_twilio_sent_wins_whatever_order_it_is_processed_in() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let book = book(&database).await;
        let sent_at = Utc::now();
        let sms = |sid: &str| NewSms {
            organization_id: "org_a".into(),
            lead_id: "lead_a".into(),
            message_sid: Some(sid.into()),
            direction: Direction::Outbound,
            status: SmsStatus::Queued,
            from_number: "+12125550100".into(),
            to_number: "+14155550123".into(),
            body: "See you Saturday".into(),
        };
        let at = |ms: i64| sent_at + Duration::milliseconds(ms);

        // Received: undelivered (30003), then delivered, then read. Processed: the other way.
        book.record("sms:a", sms("SMa")).await.expect("recorded");
        for (key, status, code, received) in [
            ("a:read", "read", "", at(30)),
            ("a:delivered", "delivered", "", at(20)),
            ("a:undelivered", "undelivered", "30003", at(10)),
        ] {
            book.update_status(key, update("SMa", status, code, received))
                .await
                .expect("applied");
        }
        let (final_a, changed) = book
            .update_status("a:sent", update("SMa", "sent", "", at(5)))
            .await
            .expect("applied");
        assert!(!changed, "{backend:?}: a late 'sent' changes nothing");
        assert_eq!(final_a.status, Some(SmsStatus::Undelivered), "{backend:?}");
        assert_eq!(final_a.error_code, "30003", "{backend:?}");

        // Received: delivered, then read, then a stray failure. Processed: read, failure,
        // delivered. A read after the ending that won holds.
        book.record("sms:b", sms("SMb")).await.expect("recorded");
        for (key, status, code, received) in [
            ("b:read", "read", "", at(30)),
            ("b:failed", "failed", "30008", at(40)),
            ("b:delivered", "delivered", "", at(20)),
        ] {
            book.update_status(key, update("SMb", status, code, received))
                .await
                .expect("applied");
        }
        let (final_b, _) = book
            .update_status("b:read", update("SMb", "read", "", at(30)))
            .await
            .expect("a redelivery");
        assert_eq!(final_b.status, Some(SmsStatus::Read), "{backend:?}");
        assert_eq!(final_b.error_code, "", "{backend:?}");
    }
}
