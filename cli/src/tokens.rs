//! `callmesh token …`: organization API tokens, managed through the lead service.

use anyhow::Context as _;
use clap::Subcommand;

use callmesh_proto::lead::v1 as pb;
use callmesh_proto::lead::v1::lead_service_client::LeadServiceClient;
use callmesh_runtime::Component;
use callmesh_runtime::auth::authenticated;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token for one organization; the secret is printed this once.
    Create {
        #[arg(long)]
        organization: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List an organization's tokens (never their secrets).
    List {
        #[arg(long)]
        organization: String,
    },
    /// Revoke a token; it authenticates nothing from then on.
    Revoke { token_id: String },
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    let url = Component::Lead.service_url();
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())?;
    if let Some(tls) = callmesh_runtime::tls::client_config()?
        && url.starts_with("https://")
    {
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the lead service at {url} (LEAD_URL)"))?;
    // Authenticated with CALLMESH_INTERNAL_TOKEN, else CALLMESH_ADMIN_TOKEN.
    let mut leads = LeadServiceClient::new(authenticated(channel));
    match command {
        TokenCommand::Create { organization, name } => {
            let answer = leads
                .create_organization_token(pb::CreateOrganizationTokenRequest {
                    idempotency_key: String::new(),
                    organization_id: organization,
                    name,
                })
                .await?
                .into_inner();
            let token = answer.token.unwrap_or_default();
            println!("token id:  {}", token.id);
            println!("secret:    {}", answer.secret);
            println!("Keep the secret now: callmesh stores only its hash.");
        }
        TokenCommand::List { organization } => {
            let tokens = leads
                .list_organization_tokens(pb::ListOrganizationTokensRequest {
                    organization_id: organization,
                })
                .await?
                .into_inner()
                .tokens;
            for token in tokens {
                let state = if token.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}  {state:<7}  {}", token.id, token.name);
            }
        }
        TokenCommand::Revoke { token_id } => {
            leads
                .revoke_organization_token(pb::RevokeOrganizationTokenRequest {
                    idempotency_key: String::new(),
                    token_id: token_id.clone(),
                })
                .await?;
            println!("revoked {token_id}");
        }
    }
    Ok(())
}
