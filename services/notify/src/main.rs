#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = tousu_kit::Config::load_or_exit(tousu_notify::NAME);
    let _telemetry = tousu_kit::telemetry::init(tousu_notify::NAME);
    let running = tousu_notify::start(config).await?;
    tousu_kit::shutdown::signal().await;
    running.stop().await
}
