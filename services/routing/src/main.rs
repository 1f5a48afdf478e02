#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tousu_kit::run(tousu_routing::NAME, tousu_routing::start).await
}
