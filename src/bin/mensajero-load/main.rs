//! `mensajero-load`: a load generator for any Socket.IO support desk that speaks the seed's
//! events (mensajero, or the Node original), over WebSocket with a cookie JWT.
//!
//! Scenarios:
//! - `support`: U users and A admins; users write to the desk at a fixed total rate, or as
//!   fast as a bounded number of in-flight messages per user allows. A message is complete
//!   when every admin has it. Reports messages/s, deliveries/s, acks/s, end-to-end latency
//!   percentiles and lost messages; with `--server-pid`/`--db-pid`, CPU and context
//!   switches per message of each, and the machine's idle cores over the window.
//! - `idle`: N connections held for S seconds; reports the handshake rate and the server's
//!   resident memory per connection (read from /proc when `--server-pid` is given).
//!
//! Every run is bounded in count and time and ends with one line of JSON on stdout.

mod client;
mod idle;
mod procstat;
mod support;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "mensajero-load",
    about = "Load generator for Socket.IO support desks"
)]
pub struct Args {
    /// Base URL of the desk, e.g. http://127.0.0.1:3000
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// HS256 secret to sign the connection tokens (default: $JWT_SECRET).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Name of the `token` cookie.
    #[arg(long, default_value = "token")]
    pub cookie: String,
    /// Server process to read CPU and memory of (/proc/<pid>).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Database server process to read CPU of.
    #[arg(long)]
    pub db_pid: Option<u32>,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Extra label copied into the JSON summary.
    #[arg(long, default_value = "")]
    pub label: String,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    Support(support::SupportArgs),
    Idle(idle::IdleArgs),
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let summary = runtime.block_on(async {
        match &args.scenario {
            Scenario::Support(s) => support::run(&args, s).await,
            Scenario::Idle(s) => idle::run(&args, s).await,
        }
    });
    match summary {
        Ok(mut json) => {
            json["label"] = args.label.clone().into();
            println!("{json}");
        }
        Err(e) => {
            eprintln!("mensajero-load: {e}");
            std::process::exit(1);
        }
    }
}
