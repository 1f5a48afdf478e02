//! End-to-end tests across the services against a real nats-server and
//! PostgreSQL (one binary, modules per capability).

mod bad_input;
mod bus_batch;
mod channels;
mod config;
mod desk_actions;
mod dlq;
mod explain;
mod first_path;
mod idempotency;
mod notify_channels;
mod notify_plan;
mod notify_send;
mod reassign;
mod reload;
mod restart;
mod sla;
