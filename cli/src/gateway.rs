//! The gateway as the operator commands reach it: its URL (`--gateway`, `CALLMESH_GATEWAY_URL`,
//! else this machine's `GATEWAY_ADDR`) and the admin token (`CALLMESH_ADMIN_TOKEN`).

use anyhow::Context as _;
use clap::Args;

use callmesh_runtime::Component;

#[derive(Args, Clone)]
pub struct GatewayArgs {
    /// The gateway's base URL (default: this machine's gateway, from GATEWAY_ADDR or :8080).
    #[arg(long, env = "CALLMESH_GATEWAY_URL")]
    pub gateway: Option<String>,
}

pub struct Gateway {
    pub url: String,
    http: reqwest::Client,
}

impl Gateway {
    pub fn new(args: &GatewayArgs) -> anyhow::Result<Gateway> {
        let url = match &args.gateway {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let mut addr = Component::Gateway.listen_addr()?;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Gateway { url, http })
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url))
    }

    /// A request to the admin API, with the admin token.
    pub fn admin(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let token = std::env::var("CALLMESH_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .context("CALLMESH_ADMIN_TOKEN is not set: the inbox API takes the admin token")?;
        Ok(request.bearer_auth(token.trim()))
    }

    /// Sends `request` and reads its JSON answer as `T`; a refusal is an error quoting the
    /// gateway's own message.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the gateway at {}", self.url))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_str::<callmesh_gateway::error::ErrorBody>(&text)
                .map(|e| e.error.message)
                .unwrap_or(text);
            anyhow::bail!("the gateway answered {status}: {message}");
        }
        serde_json::from_str(&text).with_context(|| format!("unexpected answer: {text}"))
    }
}
