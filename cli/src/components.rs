//! Reads each component's configuration, binds its address and runs it.

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::grpc::bind;
use callmesh_runtime::{Component, ServeError, metrics};

/// Runs one component until `shutdown` is cancelled. Configuration is validated before the
/// port is bound, so a bad variable is reported as such.
pub async fn serve(component: Component, shutdown: CancellationToken) -> anyhow::Result<()> {
    let addr = component.listen_addr().map_err(ServeError::from)?;
    let var = component.addr_var();
    // One recorder per process: the gateway renders it at /metrics on its own port, a service
    // on its metrics port.
    metrics::install();
    if let Some(metrics_addr) = metrics::listen_addr(component).map_err(ServeError::from)? {
        let listener = bind(metrics_addr, &metrics::addr_var(component)).await?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(error) = metrics::serve(listener, stop).await {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    let outcome = match component {
        Component::Gateway => {
            let config = callmesh_gateway::GatewayConfig::from_env().map_err(ServeError::from)?;
            callmesh_gateway::serve(config, bind(addr, &var).await?, shutdown).await
        }
        Component::Lead => {
            let config = callmesh_lead::LeadConfig::from_env().map_err(ServeError::from)?;
            callmesh_lead::serve(config, bind(addr, &var).await?, shutdown).await
        }
        Component::Context => {
            let config = callmesh_context::ContextConfig::from_env().map_err(ServeError::from)?;
            callmesh_context::serve(config, bind(addr, &var).await?, shutdown).await
        }
        Component::Analysis => {
            let config = callmesh_analysis::AnalysisConfig::from_env().map_err(ServeError::from)?;
            callmesh_analysis::serve(config, bind(addr, &var).await?, shutdown).await
        }
        Component::Telephony => {
            let config =
                callmesh_telephony::TelephonyConfig::from_env().map_err(ServeError::from)?;
            callmesh_telephony::serve(config, bind(addr, &var).await?, shutdown).await
        }
        Component::Notification => {
            let config =
                callmesh_notification::NotificationConfig::from_env().map_err(ServeError::from)?;
            callmesh_notification::serve(config, bind(addr, &var).await?, shutdown).await
        }
    };
    outcome.with_context(|| format!("{} stopped", component.name()))
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
