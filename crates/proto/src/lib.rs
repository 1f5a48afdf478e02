//! Generated code for the tousu contracts (`proto/tousu/v1`).
//!
//! - [`v1`]: the complaint record and the `Event` envelope carried on NATS (`tousu.v1`).
//! - [`intake`]: `tousu.intake.v1.IntakeService` (submission over gRPC / NATS).
//! - [`desk`]: `tousu.desk.v1.DeskService` (the case record).
//! - [`routing`]: `tousu.routing.v1.RoutingService` (explain a decision).
//! - [`sla`]: `tousu.sla.v1.SlaService` (clocks, deadline calculator, escalation acks).
//!
//! The modules nest like the protobuf packages because the generated code
//! refers across packages with `super::` paths.

// Generated code: lints about its shape are prost's business, not ours.
#[allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]
pub mod tousu {
    pub mod v1 {
        tonic::include_proto!("tousu.v1");
    }
    pub mod intake {
        pub mod v1 {
            tonic::include_proto!("tousu.intake.v1");
        }
    }
    pub mod desk {
        pub mod v1 {
            tonic::include_proto!("tousu.desk.v1");
        }
    }
    pub mod routing {
        pub mod v1 {
            tonic::include_proto!("tousu.routing.v1");
        }
    }
    pub mod sla {
        pub mod v1 {
            tonic::include_proto!("tousu.sla.v1");
        }
    }
}

pub use tousu::desk::v1 as desk;
pub use tousu::intake::v1 as intake;
pub use tousu::routing::v1 as routing;
pub use tousu::sla::v1 as sla;
pub use tousu::v1;

pub use prost::Message;
pub use prost_types::Timestamp;
