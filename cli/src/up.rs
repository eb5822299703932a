//! `callmesh up`: the whole mesh on one machine, each component its own OS process running
//! `callmesh serve <component>` with the same environment.

use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use callmesh_runtime::Component;

const STOP_GRACE: Duration = Duration::from_secs(10);

pub async fn run() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the callmesh executable")?;
    // Validate addresses before starting anything, so a bad variable stops everything at once.
    let mut addrs = Vec::new();
    for component in Component::ALL {
        addrs.push((component, component.listen_addr()?));
    }

    let mut children = Vec::new();
    for (component, _) in &addrs {
        let child = Command::new(&exe)
            .arg("serve")
            .arg(component.name())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", component.name()))?;
        children.push((*component, child));
    }

    println!("callmesh is starting:");
    for (component, addr) in &addrs {
        let kind = if *component == Component::Gateway {
            "http"
        } else {
            "grpc"
        };
        println!("  {:<13} {kind} {addr}", component.name());
    }
    println!(
        "  check: curl localhost:{}/api/health",
        Component::Gateway.default_port()
    );
    println!("Ctrl-C stops them all.");

    let outcome = tokio::select! {
        _ = crate::wait_for_signal() => Ok(()),
        (component, status) = first_exit(&mut children) => Err(anyhow::anyhow!(
            "{} exited ({status}); stopping the others",
            component.name()
        )),
    };
    stop_all(&mut children).await;
    outcome
}

/// Resolves when any child exits, naming it.
async fn first_exit(children: &mut [(Component, Child)]) -> (Component, String) {
    let waits = children.iter_mut().map(|(component, child)| {
        Box::pin(async move {
            let status = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(error) => error.to_string(),
            };
            (*component, status)
        })
    });
    futures_util::future::select_all(waits).await.0
}

/// SIGTERM to every child still running, then SIGKILL for any that outlive the grace period.
async fn stop_all(children: &mut [(Component, Child)]) {
    for (_, child) in children.iter() {
        if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    for (component, child) in children.iter_mut() {
        match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("{} did not stop in time; killing it", component.name());
                let _ = child.kill().await;
            }
        }
    }
}
