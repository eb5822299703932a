//! The operator commands, the real binary against a whole mesh: `callmesh webhook send` signs
//! samples and given payloads with the gateway's configured secrets and they flow through the
//! mesh; `callmesh inbox list|stats|replay` read and replay the inbox over the admin API.

mod support;

use std::process::Output;

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_runtime::config::DEFAULT_ORGANIZATION_ID;
use callmesh_testkit::backends;
use support::{ADMIN_TOKEN, INITIATION_SECRET, Mesh, TWILIO_NUMBER, TWILIO_TOKEN, WEBHOOK_SECRET};

/// Runs `callmesh` with the gateway's configuration of this mesh, and `extra` on top.
async fn callmesh(mesh: &Mesh, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let gateway = mesh.gateway();
    let data = mesh.storage_dir.join("cli-data");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_callmesh"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CALLMESH_GATEWAY_URL", &gateway)
        .env("CALLMESH_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CALLMESH_DATA_DIR", &data)
        .env("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env(
            "ELEVENLABS_CONVERSATION_INITIATION_WEBHOOK_SECRET",
            INITIATION_SECRET,
        )
        .env("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
        .env("TWILIO_PHONE_NUMBER", TWILIO_NUMBER)
        .env("PUBLIC_BASE_URL", &gateway)
        .env("RUST_LOG", "warn");
    for (name, value) in extra {
        command.env(name, value);
    }
    command.output().await.expect("run callmesh")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn explain(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn samples_and_files_flow_through_and_the_inbox_lists_and_replays_them() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;

        // A call, signed as ElevenLabs signs it, becomes a lead with an analysed conversation.
        let sent = callmesh(
            &mesh,
            &[
                "webhook",
                "send",
                "elevenlabs",
                "post-call",
                "--from",
                "+14155550177",
            ],
            &[],
        )
        .await;
        assert!(sent.status.success(), "{}", explain(&sent));
        assert!(stdout(&sent).contains("\"accepted\""), "{}", explain(&sent));
        mesh.wait_processed(1).await;
        let lead = mesh
            .lead()
            .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
                organization_id: DEFAULT_ORGANIZATION_ID.into(),
                phone_number: "+14155550177".into(),
                ..Default::default()
            })
            .await
            .expect("lead")
            .into_inner();
        assert!(!lead.created, "{backend:?}: the call made the lead");

        // A text, signed over PUBLIC_BASE_URL as Twilio signs it.
        let sent = callmesh(&mesh, &["webhook", "send", "twilio", "sms"], &[]).await;
        assert!(sent.status.success(), "{}", explain(&sent));
        assert!(stdout(&sent).contains("<Response/>"), "{}", explain(&sent));

        // The synchronous initiation answers with the caller's dynamic variables.
        let sent = callmesh(
            &mesh,
            &[
                "webhook",
                "send",
                "elevenlabs",
                "conversation-initiation",
                "--from",
                "+14155550177",
            ],
            &[],
        )
        .await;
        assert!(sent.status.success(), "{}", explain(&sent));
        assert!(
            stdout(&sent).contains("conversation_initiation_client_data"),
            "{}",
            explain(&sent)
        );

        // A payload of one's own, from a file.
        let file = mesh.storage_dir.join("event.json");
        std::fs::create_dir_all(&mesh.storage_dir).expect("storage dir");
        std::fs::write(
            &file,
            r#"{"type": "user_transcript", "conversation_id": "conv_from_file", "data": {"user_transcript": "hello"}}"#,
        )
        .expect("write the payload");
        let sent = callmesh(
            &mesh,
            &[
                "webhook",
                "send",
                "elevenlabs",
                "conversation-event",
                "--file",
                &file.to_string_lossy(),
            ],
            &[],
        )
        .await;
        assert!(sent.status.success(), "{}", explain(&sent));
        mesh.wait_processed(3).await;

        // The inbox, as a table and as JSON.
        let listed = callmesh(&mesh, &["inbox", "list"], &[]).await;
        assert!(listed.status.success(), "{}", explain(&listed));
        let table = stdout(&listed);
        for event in [
            "post_call_transcription",
            "sms_incoming",
            "conversation_event",
        ] {
            assert!(table.contains(event), "{event} not listed:\n{table}");
        }
        let listed = callmesh(&mesh, &["inbox", "list", "--state", "done", "--json"], &[]).await;
        assert!(listed.status.success(), "{}", explain(&listed));
        let done: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
        let items = done["items"].as_array().expect("items");
        assert!(items.len() >= 3, "{done}");
        let post_call = items
            .iter()
            .find(|i| i["event_type"] == "post_call_transcription")
            .expect("the call is done");

        let stats = callmesh(&mesh, &["inbox", "stats"], &[]).await;
        assert!(stats.status.success(), "{}", explain(&stats));
        let text = stdout(&stats);
        assert!(text.contains("done"), "{text}");
        assert!(text.contains("oldest waiting: none"), "{text}");

        // A replay puts the item back to work, and it is done again.
        let id = post_call["id"].as_i64().expect("id").to_string();
        let replayed = callmesh(&mesh, &["inbox", "replay", &id], &[]).await;
        assert!(replayed.status.success(), "{}", explain(&replayed));
        // Pending as the replay left it; a dispatcher's periodic poll may rarely have claimed
        // it again already.
        let said = stdout(&replayed);
        assert!(
            said.contains(&format!("inbox item {id} "))
                && (said.contains("is pending again") || said.contains("is processing again")),
            "{}",
            explain(&replayed)
        );
        mesh.wait_processed(3).await;

        // Refusals are errors that say why.
        let wrong = callmesh(
            &mesh,
            &["webhook", "send", "elevenlabs", "post-call"],
            &[("ELEVENLABS_WEBHOOK_SECRET", "not-the-secret")],
        )
        .await;
        assert!(!wrong.status.success(), "{}", explain(&wrong));
        assert!(explain(&wrong).contains("401"), "{}", explain(&wrong));
        let missing = callmesh(&mesh, &["inbox", "replay", "999999"], &[]).await;
        assert!(!missing.status.success(), "{}", explain(&missing));
        assert!(
            explain(&missing).contains("inbox item 999999 not found"),
            "{}",
            explain(&missing)
        );
        let unknown = callmesh(&mesh, &["webhook", "send", "twilio", "fax"], &[]).await;
        assert!(!unknown.status.success());
        assert!(
            explain(&unknown).contains("sms, sms-status"),
            "{}",
            explain(&unknown)
        );

        mesh.shutdown().await;
    }
}
