//! The dashboard page in headless Chromium (Playwright): a signed webhook posted to the gateway
//! shows up on the page, live, and the page's takeover button takes the conversation over.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_testkit::Backend;

use support::Mesh;

#[tokio::test]
async fn a_finished_call_appears_on_the_dashboard_live() {
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", "+12018774358", None)
        .await;
    let token = mesh
        .lead()
        .create_organization_token(lead_pb::CreateOrganizationTokenRequest {
            idempotency_key: String::new(),
            organization_id: shop.clone(),
            name: "dashboard".into(),
        })
        .await
        .expect("token")
        .into_inner()
        .secret;

    let node = std::env::var("CALLMESH_NODE").unwrap_or_else(|_| "node".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.mjs");
    // CALLMESH_SCREENSHOT keeps the picture for a human to look at.
    let keep = std::env::var("CALLMESH_SCREENSHOT").ok();
    let screenshot = keep
        .clone()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("callmesh-dashboard-{}.png", support::uuid_like()))
        });
    let url = format!("{}/dashboard?org={shop}&token={token}", mesh.gateway());
    let mut browser = tokio::process::Command::new(node)
        .arg(script)
        .arg(&url)
        .arg(&screenshot)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node (needs `make test-deps` for playwright-core and Debian's chromium)");
    let mut lines = BufReader::new(browser.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the page connected in time")
        .expect("read")
        .unwrap_or_default();
    assert_eq!(ready, "READY");

    let body = include_str!("fixtures/post_call_transcription.json")
        .replace("CONVERSATION_ID", "conv_dashboard");
    assert_eq!(
        mesh.post_signed("/api/webhooks/elevenlabs/post-call", &body)
            .await
            .0,
        200
    );

    let seen = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
        .await
        .expect("the page saw the call in time")
        .expect("read")
        .unwrap_or_default();
    assert!(seen.starts_with("SEEN "), "{seen}");
    assert!(seen.contains("completed"), "{seen}");
    let status = browser.wait().await.expect("browser exits");
    assert!(status.success(), "the browser script failed");
    assert!(screenshot.exists(), "a screenshot was taken");

    // The page's button really took the conversation over.
    let lead = mesh
        .lead()
        .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
            organization_id: shop,
            phone_number: "+12523960448".into(),
            ..Default::default()
        })
        .await
        .expect("lead")
        .into_inner()
        .lead
        .expect("lead");
    let control = mesh
        .context()
        .get_human_control(context_pb::GetHumanControlRequest { lead_id: lead.id })
        .await
        .expect("control")
        .into_inner()
        .state
        .expect("state");
    assert!(control.enabled);
    if keep.is_none() {
        let _ = std::fs::remove_file(screenshot);
    }
    mesh.shutdown().await;
}
