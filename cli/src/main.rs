//! `callmesh`: one binary for every process of the mesh.
//!
//! - `callmesh serve <component>` runs one process (what k8s runs, one image for all).
//! - `callmesh up` runs all six as child processes and stops them together.
//! - `callmesh migrate [component]` applies database migrations and exits.
//! - `callmesh token create|list|revoke` manages organization API tokens.
//! - `callmesh webhook send <elevenlabs|twilio> <event>` posts a signed sample webhook.
//! - `callmesh inbox list|replay|stats` reads and replays the gateway's inbox.

mod components;
mod gateway;
mod inbox;
mod tokens;
mod up;
mod webhook;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use callmesh_runtime::{Component, telemetry};

/// Many threads allocate at once (request handling, database workers); the system allocator's
/// locks showed up in profiles under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "callmesh",
    version,
    about = "Backend for AI voice agents on ElevenLabs and Twilio"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one process of the mesh until SIGINT or SIGTERM.
    Serve { component: ComponentArg },
    /// Run the gateway and all five services, each its own process; Ctrl-C stops them all.
    Up,
    /// Apply pending database migrations (all components when none is named) and exit.
    Migrate { component: Option<ComponentArg> },
    /// Organization API tokens, through the lead service at LEAD_URL.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Provider webhooks, signed with the gateway's configured secrets.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// The gateway's durable inbox, through its admin API (CALLMESH_ADMIN_TOKEN).
    #[command(subcommand)]
    Inbox(inbox::InboxCommand),
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Sign a sample (or --file) payload as the provider would and post it to the gateway.
    Send(webhook::SendArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ComponentArg {
    Gateway,
    Lead,
    Context,
    Analysis,
    Telephony,
    Notification,
}

impl From<ComponentArg> for Component {
    fn from(arg: ComponentArg) -> Component {
        match arg {
            ComponentArg::Gateway => Component::Gateway,
            ComponentArg::Lead => Component::Lead,
            ComponentArg::Context => Component::Context,
            ComponentArg::Analysis => Component::Analysis,
            ComponentArg::Telephony => Component::Telephony,
            ComponentArg::Notification => Component::Notification,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The operator commands print what they did; they read the gateway's configuration, whose
    // notes on disabled features are for the gateway's log, not for them.
    if !matches!(cli.command, Command::Webhook(_) | Command::Inbox(_)) {
        telemetry::init(match &cli.command {
            Command::Serve { component } => Component::from(*component).name(),
            _ => "cli",
        });
    }
    let outcome = match cli.command {
        Command::Serve { component } => {
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            let component = Component::from(component);
            // Every line a process logs names it, so `callmesh up`'s interleaved output reads.
            let span = tracing::info_span!("callmesh", component = component.name());
            components::serve(component, shutdown)
                .instrument(span)
                .await
        }
        Command::Up => up::run().await,
        Command::Migrate { component } => {
            let targets = match component {
                Some(one) => vec![one.into()],
                None => Component::ALL.to_vec(),
            };
            components::migrate(&targets).await
        }
        Command::Token(command) => tokens::run(command).await,
        Command::Webhook(WebhookCommand::Send(args)) => webhook::send(args).await,
        Command::Inbox(command) => inbox::run(command).await,
    };
    telemetry::shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("callmesh: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM. Signals are handled here only.
async fn cancel_on_signal(shutdown: CancellationToken) {
    wait_for_signal().await;
    tracing::info!("signal received, shutting down");
    shutdown.cancel();
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
