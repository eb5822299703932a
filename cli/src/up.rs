//! `callmesh up`: the whole mesh on one machine, each component its own OS process running
//! `callmesh serve <component>` with the same environment.

use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use callmesh_runtime::Component;
use callmesh_runtime::auth::{INTERNAL_TOKEN_VAR, generate_token};
use callmesh_runtime::config::env_var;

const STOP_GRACE: Duration = Duration::from_secs(10);

pub async fn run() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the callmesh executable")?;
    // One mesh token for every child, made here when the environment has none.
    let token = env_var(INTERNAL_TOKEN_VAR).unwrap_or_else(generate_token);
    // Validate addresses before starting anything, so a bad variable stops everything at once.
    let mut addrs = Vec::new();
    for component in Component::ALL {
        let env = child_env(component, &token, env_var);
        let addr = match env.iter().find(|(name, _)| *name == component.addr_var()) {
            Some((_, addr)) => addr.parse()?,
            None => component.listen_addr()?,
        };
        addrs.push((component, addr, env));
    }

    let mut children = Vec::new();
    for (component, _, env) in &addrs {
        let child = Command::new(&exe)
            .arg("serve")
            .arg(component.name())
            .envs(env.iter().map(|(name, value)| (name, value)))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", component.name()))?;
        children.push((*component, child));
    }

    println!("callmesh is starting:");
    let mut gateway_port = Component::Gateway.default_port();
    for (component, addr, env) in &addrs {
        if *component == Component::Gateway {
            gateway_port = addr.port();
            println!(
                "  {:<13} http {addr} (metrics at /metrics)",
                component.name()
            );
            continue;
        }
        let metrics_var = callmesh_runtime::metrics::addr_var(*component);
        let metrics = env
            .iter()
            .find(|(name, _)| *name == metrics_var)
            .map(|(_, addr)| addr.clone())
            .or_else(|| env_var(&metrics_var))
            .unwrap_or_default();
        println!("  {:<13} grpc {addr}  metrics {metrics}", component.name());
    }
    println!("  check: curl localhost:{gateway_port}/api/health");
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

/// What `component`'s process gets on top of this environment (`lookup`): the mesh token, and
/// for a gRPC service whose `<NAME>_ADDR` is unset, loopback on its default port, since only the
/// gateway faces the network.
fn child_env(
    component: Component,
    token: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut env = vec![(INTERNAL_TOKEN_VAR.to_owned(), token.to_owned())];
    let addr_var = component.addr_var();
    if component != Component::Gateway && lookup(&addr_var).is_none() {
        env.push((addr_var, format!("127.0.0.1:{}", component.default_port())));
    }
    let metrics_var = callmesh_runtime::metrics::addr_var(component);
    if let Some(port) = callmesh_runtime::metrics::default_port(component)
        && lookup(&metrics_var).is_none()
    {
        env.push((metrics_var, format!("127.0.0.1:{port}")));
    }
    env
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_share_one_token_and_services_listen_on_loopback() {
        let unset = |_: &str| None;
        for service in Component::SERVICES {
            let env = child_env(service, "mesh-token", unset);
            assert!(env.contains(&(INTERNAL_TOKEN_VAR.into(), "mesh-token".into())));
            let addr = format!("127.0.0.1:{}", service.default_port());
            assert!(env.contains(&(service.addr_var(), addr)), "{env:?}");
            let metrics_var = callmesh_runtime::metrics::addr_var(service);
            assert!(
                env.iter()
                    .any(|(name, addr)| *name == metrics_var && addr.starts_with("127.0.0.1:909")),
                "{env:?}"
            );
        }
        // The gateway keeps its own default; an explicit address is left alone.
        let gateway = child_env(Component::Gateway, "mesh-token", unset);
        assert_eq!(gateway, [(INTERNAL_TOKEN_VAR.into(), "mesh-token".into())]);
        let set = |_: &str| Some("0.0.0.0:50051".to_owned());
        let lead = child_env(Component::Lead, "mesh-token", set);
        assert!(
            lead.iter()
                .all(|(name, _)| *name != "LEAD_ADDR" && *name != "LEAD_METRICS_ADDR"),
            "{lead:?}"
        );
    }
}
