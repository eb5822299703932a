//! `callmesh inbox list|replay|stats`: the gateway's durable inbox through its admin API
//! (`GET /api/inbox`, `POST /api/inbox/{id}/replay`, `GET /api/inbox/backlog`), read into the
//! gateway's own response types.

use clap::Subcommand;

use callmesh_gateway::routes::admin::{InboxBacklog, InboxItem, InboxList};

use crate::gateway::{Gateway, GatewayArgs};

#[derive(Subcommand)]
pub enum InboxCommand {
    /// Webhooks in the inbox, newest first.
    List {
        /// pending, processing, done, ignored, dead (all when absent).
        #[arg(long)]
        state: Option<String>,
        /// How many at the most (1-1000).
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// Run an item's flow again (a dead letter, or any other).
    Replay {
        id: i64,
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// Items per state and how long the oldest unfinished one has waited.
    Stats {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        gateway: GatewayArgs,
    },
}

pub async fn run(command: InboxCommand) -> anyhow::Result<()> {
    match command {
        InboxCommand::List {
            state,
            limit,
            json,
            gateway,
        } => {
            let gateway = Gateway::new(&gateway)?;
            let mut query = vec![("limit", limit.to_string())];
            if let Some(state) = state {
                query.push(("state", state));
            }
            let list: InboxList = gateway
                .json(gateway.admin(gateway.get("/api/inbox").query(&query))?)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_items(&list.items);
            }
        }
        InboxCommand::Replay { id, gateway } => {
            let gateway = Gateway::new(&gateway)?;
            let item: InboxItem = gateway
                .json(gateway.admin(gateway.post(&format!("/api/inbox/{id}/replay")))?)
                .await?;
            println!(
                "inbox item {} ({} {}) is {} again",
                item.id, item.provider, item.event_type, item.state
            );
        }
        InboxCommand::Stats { json, gateway } => {
            let gateway = Gateway::new(&gateway)?;
            let backlog: InboxBacklog = gateway
                .json(gateway.admin(gateway.get("/api/inbox/backlog"))?)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&backlog)?);
            } else {
                for (state, count) in &backlog.items {
                    println!("{state:<11} {count}");
                }
                match backlog.oldest_waiting_secs {
                    Some(secs) => println!("oldest waiting: {secs:.1} s"),
                    None => println!("oldest waiting: none"),
                }
            }
        }
    }
    Ok(())
}

fn print_items(items: &[InboxItem]) {
    if items.is_empty() {
        println!("no items");
        return;
    }
    println!(
        "{:>8}  {:<10}  {:<24}  {:<10}  {:>8}  {:<19}  last error",
        "id", "provider", "event", "state", "attempts", "received (UTC)"
    );
    for item in items {
        println!(
            "{:>8}  {:<10}  {:<24}  {:<10}  {:>8}  {:<19}  {}",
            item.id,
            item.provider,
            item.event_type,
            item.state,
            item.attempts,
            // RFC 3339 to the second.
            item.received_at.get(..19).unwrap_or(&item.received_at),
            item.last_error.lines().next().unwrap_or_default()
        );
    }
}
