//! NATS JetStream conventions shared by every tousu service.
//!
//! How an event travels:
//!
//! 1. A service changes its state and, in the **same Postgres transaction**,
//!    writes the event to its outbox ([`Outbox::enqueue`]). The event gets a
//!    UUID v7 id and the next per-complaint sequence number of that service.
//! 2. The [`relay`] publishes outbox rows to the `TOUSU_EVENTS` stream with
//!    `Nats-Msg-Id` = event id (so a re-publish after a crash is dropped by
//!    the stream's dedup window), `Tousu-Event` and W3C `traceparent`, then
//!    deletes them.
//! 3. A consumer ([`consumer::run`]) pulls from a durable consumer, records
//!    the event id in its inbox table in the same transaction as its own
//!    state change, commits, then acks. A message that keeps failing goes to
//!    `TOUSU_DLQ` with the reason after `max_deliver` attempts.
//!
//! - [`subjects`]: stream names, subject layout and token validation.
//! - [`event`]: building, encoding and decoding the `Event` envelope.
//! - [`streams`]: idempotent provisioning of the streams.
//! - [`store`]: the outbox / inbox tables every service schema holds.
//! - [`trace`]: W3C trace context in NATS headers.
//! - [`dlq`]: reading and replaying the dead-letter stream.

pub mod consumer;
pub mod dlq;
pub mod event;
pub mod outbox;
pub mod relay;
pub mod store;
pub mod streams;
pub mod subjects;
pub mod trace;

pub use consumer::{ConsumerSpec, Delivery, HandleError, Handler};
pub use event::{
    EventExt, channel_from_pb, channel_to_pb, channel_token, decode_event, encode_event,
    from_timestamp, lifecycle_name, to_timestamp,
};
pub use outbox::{Outbox, Pending};
pub use tousu_proto::v1::{Event, event::Payload};

/// Header naming the event type (`complaint.assigned`, `sla.breached` …).
pub const HEADER_EVENT: &str = "Tousu-Event";
