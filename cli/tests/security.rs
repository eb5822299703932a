//! What the hardening review asked for, through the whole mesh: idempotency keys that belong to
//! one organization, and requests that send once however they race.

mod support;

use serde_json::{Value, json};

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_testkit::backends;

use support::{Mesh, TWILIO_NUMBER};

const CAFE_NUMBER: &str = "+12125550177";

fn settings() -> lead_pb::OrganizationSettings {
    lead_pb::OrganizationSettings {
        agent_id: "agent_test".into(),
        agent_phone_number_id: "phnum_test".into(),
        ..Default::default()
    }
}

async fn token_for(mesh: &Mesh, organization_id: &str) -> String {
    mesh.lead()
        .create_organization_token(lead_pb::CreateOrganizationTokenRequest {
            idempotency_key: String::new(),
            organization_id: organization_id.into(),
            name: "operator".into(),
        })
        .await
        .expect("token")
        .into_inner()
        .secret
}

/// `POST path` as an organization's operator, with an `Idempotency-Key`.
async fn post_as(mesh: &Mesh, token: &str, path: &str, body: Value, key: &str) -> (u16, Value) {
    let response = mesh
        .http
        .post(format!("{}{path}", mesh.gateway()))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn recipients(mesh: &Mesh) -> Vec<String> {
    mesh.fake_api
        .messages
        .lock()
        .expect("lock")
        .iter()
        .map(|m| m.get("To").cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn one_key_in_two_organizations_sends_two_messages() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
            .await;
        let cafe = mesh
            .create_organization("Cafe", CAFE_NUMBER, Some(settings()))
            .await;
        let shop_token = token_for(&mesh, &shop).await;
        let cafe_token = token_for(&mesh, &cafe).await;

        let sms = "/api/twilio/send-sms";
        let to_ann = json!({"to": "+14155550123", "body": "Your bike is ready"});
        let to_bob = json!({"to": "+14155550124", "body": "Your order is ready"});
        let (status, first) = post_as(&mesh, &shop_token, sms, to_ann, "order-42-ready").await;
        assert_eq!(status, 200, "{backend:?}: {first}");
        let (status, second) = post_as(&mesh, &cafe_token, sms, to_bob, "order-42-ready").await;
        assert_eq!(status, 200, "{backend:?}: {second}");

        assert_eq!(second["sms"]["to"], "+14155550124", "{backend:?}: {second}");
        assert_ne!(first["sms"]["id"], second["sms"]["id"], "{backend:?}");
        let mut sent = recipients(&mesh);
        sent.sort();
        assert_eq!(sent, ["+14155550123", "+14155550124"], "{backend:?}");
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn racing_requests_with_one_key_send_once() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
            .await;
        let token = token_for(&mesh, &shop).await;
        let body = json!({"to": "+14155550123", "body": "Your bike is ready"});
        let answers = futures_util::future::join_all((0..8).map(|_| {
            post_as(
                &mesh,
                &token,
                "/api/twilio/send-sms",
                body.clone(),
                "race-1",
            )
        }))
        .await;
        for (status, answer) in &answers {
            assert_eq!(*status, 200, "{backend:?}: {answer}");
            assert_eq!(
                answer["sms"]["id"], answers[0].1["sms"]["id"],
                "{backend:?}"
            );
        }
        assert_eq!(
            recipients(&mesh).len(),
            1,
            "{backend:?}: eight racing requests with one key"
        );
        mesh.shutdown().await;
    }
}
