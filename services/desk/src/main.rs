#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = tousu_kit::Config::load_or_exit(tousu_desk::NAME);
    let _telemetry = tousu_kit::telemetry::init(tousu_desk::NAME);
    let running = tousu_desk::start(config).await?;
    tousu_kit::shutdown::signal().await;
    running.stop().await
}
