//! Reads each component's configuration, binds its address and runs it.

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::grpc::bind;
use callmesh_runtime::{Component, ServeError, metrics};

/// Runs one component until `shutdown` is cancelled. Configuration is validated before the
/// port is bound, so a bad variable is reported as such; the metrics port is bound after the
/// main one.
pub async fn serve(component: Component, shutdown: CancellationToken) -> anyhow::Result<()> {
    let addr = component.listen_addr().map_err(ServeError::from)?;
    let var = component.addr_var();
    let metrics_addr = metrics::listen_addr(component).map_err(ServeError::from)?;
    let listen = || async {
        let listener = bind(addr, &var).await?;
        serve_metrics(component, metrics_addr, &shutdown).await?;
        Ok::<_, ServeError>(listener)
    };
    let outcome = match component {
        Component::Gateway => {
            let config = callmesh_gateway::GatewayConfig::from_env().map_err(ServeError::from)?;
            callmesh_gateway::serve(config, listen().await?, shutdown.clone()).await
        }
        Component::Lead => {
            let config = callmesh_lead::LeadConfig::from_env().map_err(ServeError::from)?;
            callmesh_lead::serve(config, listen().await?, shutdown.clone()).await
        }
        Component::Context => {
            let config = callmesh_context::ContextConfig::from_env().map_err(ServeError::from)?;
            callmesh_context::serve(config, listen().await?, shutdown.clone()).await
        }
        Component::Analysis => {
            let config = callmesh_analysis::AnalysisConfig::from_env().map_err(ServeError::from)?;
            callmesh_analysis::serve(config, listen().await?, shutdown.clone()).await
        }
        Component::Telephony => {
            let config =
                callmesh_telephony::TelephonyConfig::from_env().map_err(ServeError::from)?;
            callmesh_telephony::serve(config, listen().await?, shutdown.clone()).await
        }
        Component::Notification => {
            let config =
                callmesh_notification::NotificationConfig::from_env().map_err(ServeError::from)?;
            callmesh_notification::serve(config, listen().await?, shutdown.clone()).await
        }
    };
    outcome.with_context(|| format!("{} stopped", component.name()))
}

/// Installs this process's metrics recorder (the gateway renders it at `/metrics` on its own
/// port) and, for a service, serves it on `addr` until `shutdown`.
async fn serve_metrics(
    component: Component,
    addr: Option<std::net::SocketAddr>,
    shutdown: &CancellationToken,
) -> Result<(), ServeError> {
    metrics::install();
    if let Some(addr) = addr {
        let listener = bind(addr, &metrics::addr_var(component)).await?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(error) = metrics::serve(listener, stop).await {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    Ok(())
}

/// Applies every pending migration of `components`' databases.
pub async fn migrate(components: &[Component]) -> anyhow::Result<()> {
    for &component in components {
        let url = DatabaseUrl::from_env(component)?;
        let connection = db::connect(&url).await?;
        match component {
            Component::Gateway => {
                db::migrate::<callmesh_migration_gateway::Migrator>(&connection, component).await?
            }
            Component::Lead => {
                db::migrate::<callmesh_migration_lead::Migrator>(&connection, component).await?
            }
            Component::Context => {
                db::migrate::<callmesh_migration_context::Migrator>(&connection, component).await?
            }
            Component::Analysis => {
                db::migrate::<callmesh_migration_analysis::Migrator>(&connection, component).await?
            }
            Component::Telephony => {
                db::migrate::<callmesh_migration_telephony::Migrator>(&connection, component)
                    .await?
            }
            Component::Notification => {
                db::migrate::<callmesh_migration_notification::Migrator>(&connection, component)
                    .await?
            }
        }
        println!("{}: migrated ({})", component.name(), url.redacted());
    }
    Ok(())
}
