#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tousu_kit::run(tousu_intake::NAME, tousu_intake::start).await
}
