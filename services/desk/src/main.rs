#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tousu_kit::run(tousu_desk::NAME, tousu_desk::start).await
}
