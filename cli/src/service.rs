//! `tousu service <name>`: one service in this process.

use clap::ValueEnum;

/// The five services, in start order of the data flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    Intake,
    Routing,
    Sla,
    Notify,
    Desk,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Intake,
        Service::Routing,
        Service::Sla,
        Service::Notify,
        Service::Desk,
    ];

    /// The service's name: its schema, config prefix and CLI argument.
    pub fn name(self) -> &'static str {
        match self {
            Service::Intake => tousu_intake::NAME,
            Service::Routing => tousu_routing::NAME,
            Service::Sla => tousu_sla::NAME,
            Service::Notify => tousu_notify::NAME,
            Service::Desk => tousu_desk::NAME,
        }
    }

    async fn start(self, config: tousu_kit::Config) -> anyhow::Result<tousu_kit::Running> {
        match self {
            Service::Intake => tousu_intake::start(config).await,
            Service::Routing => tousu_routing::start(config).await,
            Service::Sla => tousu_sla::start(config).await,
            Service::Notify => tousu_notify::start(config).await,
            Service::Desk => tousu_desk::start(config).await,
        }
    }
}

/// Runs the service until SIGTERM/SIGINT (see [`tousu_kit::run`]).
pub async fn run(service: Service) -> anyhow::Result<()> {
    tousu_kit::run(service.name(), |config| service.start(config)).await
}
