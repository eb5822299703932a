//! The dashboard page in headless Chromium (Playwright, `tests/browser/dashboard.mjs`) against a
//! running mesh, on SQLite and PostgreSQL: a signed webhook shows up on the page live and the
//! takeover button takes the conversation over; a reload replays the recent feed; a call's
//! analysis panel shows its factors and evidence; a chart has a point per day of the period;
//! search finds a lead by the name the caller said; the interviews view lists a job's sessions;
//! and an organization token sees nothing of another organization in any panel.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_testkit::{backends, wait_until};

use support::{ADMIN_TOKEN, Mesh};

const SHOP_NUMBER: &str = "+12018774358";
const RIVAL_NUMBER: &str = "+13105550123";
const ANGELO: &str = "+12523960448";
const MARCUS: &str = "+12125550147";
const OLGA: &str = "+13105550188";

/// The fixture call with another caller, number dialled and transcript.
fn call(conversation_id: &str, dialled: &str, caller: &str, transcript: Option<Value>) -> String {
    let body = include_str!("fixtures/post_call_transcription.json")
        .replace("CONVERSATION_ID", conversation_id)
        .replace(SHOP_NUMBER, dialled)
        .replace(ANGELO, caller)
        .replace(
            "CA15884136fed840d807968d7c83b21ba4",
            &format!("CA{conversation_id}"),
        );
    let mut call: Value = serde_json::from_str(&body).expect("fixture");
    if let Some(turns) = transcript {
        call["data"]["transcript"] = turns;
        // No name collected: the name can only come from the caller's own words.
        call["data"]["analysis"]["data_collection_results"] = json!({});
        call["data"]["analysis"]["transcript_summary"] = Value::Null;
    }
    call.to_string()
}

fn turns(lines: &[(&str, &str)]) -> Value {
    Value::Array(
        lines
            .iter()
            .enumerate()
            .map(|(i, (role, message))| {
                json!({"role": role, "message": message, "time_in_call_secs": i * 5})
            })
            .collect(),
    )
}

async fn token(mesh: &Mesh, organization_id: &str) -> String {
    mesh.lead()
        .create_organization_token(lead_pb::CreateOrganizationTokenRequest {
            idempotency_key: String::new(),
            organization_id: organization_id.to_owned(),
            name: "dashboard".into(),
        })
        .await
        .expect("token")
        .into_inner()
        .secret
}

async fn lead_named(mesh: &Mesh, organization_id: &str, phone: &str) -> lead_pb::Lead {
    mesh.lead()
        .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
            organization_id: organization_id.to_owned(),
            phone_number: phone.into(),
            ..Default::default()
        })
        .await
        .expect("lead")
        .into_inner()
        .lead
        .expect("lead")
}

#[tokio::test]
async fn the_dashboard_answers_who_to_call_back_and_why() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;
        let rival = mesh
            .create_organization("Rival Garage", RIVAL_NUMBER, None)
            .await;
        let (shop_token, rival_token) = (token(&mesh, &shop).await, token(&mesh, &rival).await);

        // Yesterday's calls, as the manager finds them in the morning: Angelo (the agent
        // collected his name), Marcus (who said his), and Olga at the rival's.
        let marcus = turns(&[
            ("agent", "Thanks for calling Bike Shop, how can I help?"),
            (
                "user",
                "Hi, it's Marcus Bell. I want to buy the Metro e-bike, what's the price with the big battery?",
            ),
            (
                "agent",
                "It's 2,890 dollars. Would you like to come in for a test ride on Saturday?",
            ),
            (
                "user",
                "Yes, Saturday at ten works. I'm ready to buy if it fits.",
            ),
            ("agent", "Booked for Saturday at ten."),
        ]);
        let olga = turns(&[
            ("agent", "Rival Garage, how can I help?"),
            (
                "user",
                "Hi, it's Olga Petrova. I need new brakes, how much is that?",
            ),
            ("agent", "About 300 dollars."),
            ("user", "Okay, I'll think about it."),
        ]);
        for (body, label) in [
            (call("conv_angelo", SHOP_NUMBER, ANGELO, None), "angelo"),
            (
                call("conv_marcus", SHOP_NUMBER, MARCUS, Some(marcus)),
                "marcus",
            ),
            (call("conv_olga", RIVAL_NUMBER, OLGA, Some(olga)), "olga"),
        ] {
            let (status, answer) = mesh
                .post_signed("/api/webhooks/elevenlabs/post-call", &body)
                .await;
            assert_eq!(status, 200, "{label}: {answer}");
        }
        mesh.wait_processed(3).await;

        let named = wait_until(Duration::from_secs(20), || async {
            lead_named(&mesh, &shop, MARCUS).await.name == "Marcus Bell"
        })
        .await;
        assert!(named, "{backend:?}: Marcus's lead is named from his words");
        let marcus = lead_named(&mesh, &shop, MARCUS).await;
        assert_eq!(
            marcus.name_source,
            callmesh_proto::common::v1::NameSource::Caller as i32
        );
        assert!(
            marcus.name_evidence.contains("it's Marcus Bell"),
            "{}",
            marcus.name_evidence
        );
        let angelo = lead_named(&mesh, &shop, ANGELO).await;
        assert_eq!(
            angelo.name, "Angelo Rossi",
            "{backend:?}: from data collection"
        );
        assert_eq!(
            angelo.name_source,
            callmesh_proto::common::v1::NameSource::Agent as i32
        );
        let olga = lead_named(&mesh, &rival, OLGA).await;
        assert_eq!(olga.name, "Olga Petrova");

        // A hiring team's job, evaluated from Marcus's call (any transcript will do).
        let (status, created) = mesh
            .operator(
                "/api/interviews",
                json!({"candidate_name": "Jordan Lee", "job_role": "Bike mechanic",
                       "job_id": "job_mechanic", "conversation_id": "conv_marcus"}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let session = created["session"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (status, evaluated) = mesh
            .operator(
                &format!("/api/interviews/{session}/complete"),
                json!({}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{evaluated}");

        let config = json!({
            "base": mesh.gateway(),
            "shop": {"org": shop, "token": shop_token},
            "rival": {"org": rival, "token": rival_token},
            "admin_token": ADMIN_TOKEN,
            "marcus_lead": marcus.id,
            "olga_lead": olga.id,
            "job_id": "job_mechanic",
            // Relative to the repository, e.g. `docs` for the README's pictures.
            "screenshots": std::env::var("CALLMESH_SCREENSHOT_DIR").ok().map(|dir| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)
            }),
        });
        let node = std::env::var("CALLMESH_NODE").unwrap_or_else(|_| "node".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.mjs");
        let mut browser = tokio::process::Command::new(node)
            .arg(script)
            .arg(config.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run node (`make test-deps` installs playwright-core and Debian's chromium)");
        let mut lines = BufReader::new(browser.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
            .await
            .expect("the page connected in time")
            .expect("read")
            .unwrap_or_default();
        assert_eq!(ready, "READY", "{backend:?}");

        // A call while the page is open shows up live.
        let body = call("conv_dashboard", SHOP_NUMBER, "+12025550111", None)
            .replace("Angelo Rossi", "Sam Ortiz");
        assert_eq!(
            mesh.post_signed("/api/webhooks/elevenlabs/post-call", &body)
                .await
                .0,
            200
        );

        let mut report = None;
        while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(180), lines.next_line())
            .await
            .expect("the browser script finished in time")
        {
            if let Some(json) = line.strip_prefix("REPORT ") {
                report = Some(serde_json::from_str::<Value>(json).expect("report is JSON"));
            }
        }
        let status = browser.wait().await.expect("browser exits");
        assert!(status.success(), "{backend:?}: the browser script failed");
        let report = report.expect("the script reported");

        // Live, then replayed after a reload.
        assert!(
            report["live"]
                .as_str()
                .unwrap_or_default()
                .contains("call ended"),
            "{report}"
        );
        assert!(report["replayed"].as_u64().unwrap_or(0) >= 8, "{report}");
        assert!(
            report["replayed_call_ended"].as_u64().unwrap_or(0) >= 3,
            "{report}"
        );
        // The analysis panel explains the score.
        let factors = report["factors"].as_array().cloned().unwrap_or_default();
        assert!(factors.len() >= 2, "{report}");
        assert!(
            report["evidence"]
                .as_array()
                .is_some_and(|e| e.iter().any(|s| s
                    .as_str()
                    .is_some_and(|s| s.contains("Saturday at ten") || s.contains("buy")))),
            "{report}"
        );
        assert!(
            report["name_source"]
                .as_str()
                .unwrap_or_default()
                .contains("it's Marcus Bell"),
            "{report}"
        );
        // A week is seven points, and today's three calls are in them.
        assert_eq!(report["chart_points"], 7, "{report}");
        assert_eq!(report["chart_calls"], 3, "{report}");
        assert_eq!(report["tier_points"], 4, "{report}");
        assert_eq!(report["search"], json!(["Marcus Bell"]), "{report}");
        assert_eq!(
            report["interviews"][0]["candidate"], "Jordan Lee",
            "{report}"
        );
        assert_eq!(report["interviews"][0]["status"], "completed", "{report}");
        assert_eq!(report["interviews_as_organization"], 0, "{report}");
        // The rival's token sees the rival only.
        let rival_view = &report["rival"];
        assert_eq!(rival_view["leads"], json!(["Olga Petrova"]), "{report}");
        assert!(
            rival_view["feed"].as_array().is_some_and(|f| !f.is_empty()
                && f.iter()
                    .all(|t| !t.as_str().unwrap_or_default().contains("Marcus")
                        && !t.as_str().unwrap_or_default().contains("Angelo"))),
            "{report}"
        );
        assert_eq!(rival_view["chart_calls"], 1, "{report}");
        for (what, status) in rival_view["forbidden"]
            .as_object()
            .cloned()
            .unwrap_or_default()
        {
            assert_eq!(
                status, 403,
                "{backend:?}: the rival's token reached {what}: {report}"
            );
        }
        assert_eq!(
            rival_view["forbidden"].as_object().map(|o| o.len()),
            Some(7),
            "{report}"
        );
        assert_eq!(
            report["phone_overflow"], false,
            "{backend:?}: the page fits a phone: {report}"
        );

        // The page's button really took the conversation over.
        let sam = lead_named(&mesh, &shop, "+12025550111").await;
        let control = mesh
            .context()
            .get_human_control(context_pb::GetHumanControlRequest { lead_id: sam.id })
            .await
            .expect("control")
            .into_inner()
            .state
            .expect("state");
        assert!(control.enabled, "{backend:?}");
        mesh.shutdown().await;
    }
}

/// `GET /api/leads` as the page calls it, with the organization's token.
async fn leads_page(mesh: &Mesh, token: &str, query: &str) -> (u16, Value) {
    let response = mesh
        .http
        .get(format!("{}/api/leads?{query}", mesh.gateway()))
        .bearer_auth(token)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_leads_api_searches_filters_sorts_and_pages() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;
        let shop_token = token(&mesh, &shop).await;
        let mut lead_client = mesh.lead();
        for n in 0..12u32 {
            let lead = lead_client
                .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
                    organization_id: shop.clone(),
                    phone_number: format!("+1212555{:04}", 1000 + n),
                    name: format!("Caller {n}"),
                    ..Default::default()
                })
                .await
                .expect("lead")
                .into_inner()
                .lead
                .expect("lead");
            lead_client
                .apply_analysis(lead_pb::ApplyAnalysisRequest {
                    idempotency_key: format!("analysis:{n}"),
                    lead_id: lead.id,
                    conversation_id: format!("conv_{n}"),
                    score: i32::try_from((n * 37) % 101).unwrap_or(0),
                    ..Default::default()
                })
                .await
                .expect("apply");
        }

        // Best first, five at a time, every lead once.
        let mut token = String::new();
        let mut scores = Vec::new();
        let mut ids = std::collections::HashSet::new();
        loop {
            let (status, page) = leads_page(
                &mesh,
                &shop_token,
                &format!("sort=score&page_size=5&page_token={token}"),
            )
            .await;
            assert_eq!(status, 200, "{backend:?}: {page}");
            for lead in page["leads"].as_array().cloned().unwrap_or_default() {
                scores.push(lead["score"].as_i64().unwrap_or(-1));
                ids.insert(lead["id"].as_str().unwrap_or_default().to_owned());
            }
            token = page["next_page_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(ids.len(), 12, "{backend:?}");
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{backend:?}: {scores:?}"
        );

        let (_, hot) = leads_page(&mesh, &shop_token, "tier=hot").await;
        let hot = hot["leads"].as_array().cloned().unwrap_or_default();
        assert!(
            !hot.is_empty() && hot.iter().all(|l| l["tier"] == "hot"),
            "{hot:?}"
        );
        let (_, found) = leads_page(&mesh, &shop_token, "q=555-1007").await;
        assert_eq!(found["leads"][0]["name"], "Caller 7", "{found}");
        assert_eq!(found["leads"].as_array().map(Vec::len), Some(1), "{found}");
        assert_eq!(found["leads"][0]["name_source"], "person", "{found}");

        for (query, field) in [
            ("tier=lukewarm", "tier"),
            ("status=maybe", "status"),
            ("sort=name", "sort"),
            ("sort=score&page_token=not-a-token", "page.page_token"),
        ] {
            let (status, answer) = leads_page(&mesh, &shop_token, query).await;
            assert_eq!(status, 400, "{query}: {answer}");
            assert!(
                answer.to_string().contains(field),
                "{query}: names {field}: {answer}"
            );
        }
        mesh.shutdown().await;
    }
}
