//! `wpp-sim` binary: runs the simulated wppconnect-server until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use wpp_sim::{SimConfig, SimServer};

/// A simulated wppconnect-server (v2.10.4 REST + socket.io contract) with a /__sim/ control surface.
#[derive(Parser, Debug)]
#[command(name = "wpp-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (upstream default 21465; 0 picks a free port).
    #[arg(long, default_value_t = 21465)]
    port: u16,
    /// The SECRET_KEY used by generate-token and show-all-sessions.
    #[arg(long, default_value = "THISISMYSECURETOKEN")]
    secret: String,
    /// bcrypt cost of generated tokens (upstream uses 10; 4 is much faster).
    #[arg(long, default_value_t = 10)]
    bcrypt_cost: u32,
    /// Milliseconds a started session stays INITIALIZING before its QR code (or pairing code,
    /// or CONNECTED for a kept login) appears.
    #[arg(long, default_value_t = 3000)]
    init_delay_ms: u64,
    /// Milliseconds between QR code rotations while waiting for a scan.
    #[arg(long, default_value_t = 20000)]
    qr_rotate_ms: u64,
    /// Milliseconds a QRCODE/PHONECODE session waits for a scan before it goes CLOSED.
    #[arg(long, default_value_t = 60000)]
    auto_close_ms: u64,
    /// Let a session closed while starting start again normally. By default, as upstream, a
    /// close-session that leaks the session's browser locks its profile: every later start of
    /// that name stays INITIALIZING until the server restarts.
    #[arg(long)]
    no_profile_lock: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let cost = args.bcrypt_cost;
    if !(4..=31).contains(&cost) {
        eprintln!("--bcrypt-cost must be between 4 and 31");
        std::process::exit(2);
    }
    let config = SimConfig {
        secret: args.secret,
        bcrypt_cost: cost,
        init_delay: Duration::from_millis(args.init_delay_ms),
        qr_rotate: Duration::from_millis(args.qr_rotate_ms.max(1)),
        auto_close: Duration::from_millis(args.auto_close_ms),
        profile_lock: !args.no_profile_lock,
    };
    wpp_sim::set_request_logging(true);
    let server = SimServer::start(config, SocketAddr::new(args.host, args.port)).await?;
    eprintln!("wpp-sim listening on {}", server.base_url());
    tokio::signal::ctrl_c().await?;
    eprintln!("wpp-sim shutting down");
    server.shutdown().await;
    Ok(())
}
