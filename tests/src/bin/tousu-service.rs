//! Runs one service as its own process, for tests that kill a service
//! with SIGKILL: `tousu-service <intake|routing|sla|notify|desk>`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(start) = tousu_tests::service_by_name(&name) else {
        eprintln!("usage: tousu-service <intake|routing|sla|notify|desk>");
        std::process::exit(64);
    };
    tousu_kit::run(&name, start).await
}
