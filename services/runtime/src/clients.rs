//! Channels to the other services of the mesh. One lazily connected channel per service,
//! created once and cloned per request (a tonic `Channel` is a cheap handle onto a pool).

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::config::ConfigError;

/// A channel to `url` that connects on first use and reconnects by itself.
pub fn lazy_channel(url: &str, variable: &str) -> Result<Channel, ConfigError> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| ConfigError::invalid(variable, format!("invalid URL {url:?}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}
