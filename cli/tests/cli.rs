//! The `callmesh` binary as an operator runs it: real processes, real signals.

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use callmesh_runtime::Component;
use callmesh_testkit::wait_until;
use support::uuid_like;

fn callmesh() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callmesh"));
    // Nothing from the developer's environment may leak into these runs.
    for (key, _) in std::env::vars() {
        if key.ends_with("_DATABASE_URL")
            || key == "DATABASE_URL"
            || key.ends_with("_ADDR")
            || key.ends_with("_URL")
        {
            command.env_remove(key);
        }
    }
    command
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callmesh-cli-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_malformed_database_url_stops_start_up_naming_the_variable() {
    let output = callmesh()
        .args(["serve", "lead"])
        .env("DATABASE_URL", "mysql//oops")
        .env("LEAD_ADDR", "127.0.0.1:0")
        .env("LEAD_METRICS_ADDR", "127.0.0.1:0")
        .output()
        .expect("run callmesh");
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn a_metrics_port_in_use_stops_start_up_naming_its_variable() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = scratch_dir();
    let output = callmesh()
        .args(["serve", "lead"])
        .env("LEAD_ADDR", "127.0.0.1:0")
        .env("LEAD_METRICS_ADDR", addr.to_string())
        .env("CALLMESH_DATA_DIR", &dir)
        .output()
        .expect("run callmesh");
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("LEAD_METRICS_ADDR"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_port_in_use_stops_start_up_naming_the_port() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = scratch_dir();
    let output = callmesh()
        .args(["serve", "lead"])
        .env("LEAD_ADDR", addr.to_string())
        .env("LEAD_METRICS_ADDR", "127.0.0.1:0")
        .env("CALLMESH_DATA_DIR", &dir)
        .env("LOG_FORMAT", "json")
        .output()
        .expect("run callmesh");
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("LEAD_ADDR"), "{stderr}");
    // With LOG_FORMAT=json every log line is one JSON object.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let error_line = stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON log line"))
        .find(|line| line["level"] == "ERROR")
        .expect("the failure is logged");
    assert!(error_line.to_string().contains("LEAD_ADDR"), "{error_line}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A variable that cannot be used stops the process with one line naming it, once.
#[test]
fn an_unusable_variable_is_named_once_and_stops_the_start() {
    let dir = scratch_dir();
    let output = callmesh()
        .args(["serve", "gateway"])
        .env("CALLMESH_DATA_DIR", &dir)
        .env("INBOX_BATCH_WINDOW_MS", "soon")
        .output()
        .expect("run callmesh");
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(r#"INBOX_BATCH_WINDOW_MS: cannot parse "soon""#),
        "{stderr}"
    );
    assert_eq!(last.matches("INBOX_BATCH_WINDOW_MS").count(), 1, "{last}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn migrate_prepares_every_database() {
    let dir = scratch_dir();
    let output = callmesh()
        .arg("migrate")
        .env("CALLMESH_DATA_DIR", &dir)
        .output()
        .expect("run callmesh");
    assert!(output.status.success(), "{}", stderr_of(&output));
    for component in Component::ALL {
        assert!(
            dir.join(format!("{}.db", component.name())).exists(),
            "no database for {}",
            component.name()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `callmesh up` (what `make run` runs): six processes, healthy together, gone together.
#[tokio::test]
async fn up_starts_six_processes_and_stops_them_all_on_sigterm() {
    let dir = scratch_dir();
    let mut command = tokio::process::Command::from(callmesh());
    command
        .arg("up")
        .env("CALLMESH_DATA_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for component in Component::ALL {
        // Free ports for this run; released just before the mesh binds them.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        command.env(component.addr_var(), format!("127.0.0.1:{port}"));
        command.env(component.url_var(), format!("http://127.0.0.1:{port}"));
        // Not the default metrics ports, which another run may hold.
        command.env(
            callmesh_runtime::metrics::addr_var(component),
            "127.0.0.1:0",
        );
    }
    let gateway = command
        .as_std()
        .get_envs()
        .find(|(k, _)| *k == "GATEWAY_URL")
        .and_then(|(_, v)| v)
        .map(|v| v.to_string_lossy().into_owned())
        .expect("gateway url");
    command.kill_on_drop(true);
    let mut up = command.spawn().expect("start callmesh up");
    let parent = up.id().expect("pid");

    let healthy = wait_until(Duration::from_secs(60), || async {
        match reqwest::get(format!("{gateway}/api/health")).await {
            Ok(response) => response.status().as_u16() == 200,
            Err(_) => false,
        }
    })
    .await;
    let children = child_pids(parent);
    assert!(healthy, "the mesh never became healthy");
    assert_eq!(children.len(), 6, "six processes: {children:?}");

    let _ = Command::new("kill")
        .args(["-TERM", &parent.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(20), up.wait())
        .await
        .expect("stops in time")
        .expect("exit status");
    assert!(status.success(), "{status}");
    for pid in children {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|s| s.contains("State:\tZ")),
            "child {pid} outlived callmesh up"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn child_pids(parent: u32) -> Vec<u32> {
    let path = format!("/proc/{parent}/task/{parent}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
