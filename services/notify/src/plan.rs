//! The planner: each event → who is told, on which channel, with which
//! rendered message (rows in `deliveries`).
//!
//! STUB: being written.
