#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tousu_kit::run(tousu_sla::NAME, tousu_sla::start).await
}
