#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tousu_kit::run(tousu_notify::NAME, tousu_notify::start).await
}
