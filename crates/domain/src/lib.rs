//! The tousu complaint domain, with no I/O.
//!
//! Values enter the system at the edge (HTTP, gRPC, NATS) and are parsed
//! into the newtypes here; once parsed they are valid, so the inside never
//! re-validates:
//!
//! - [`ComplaintId`], [`TrackingNo`]: identity of a complaint.
//! - [`Channel`], [`Grade`], [`Urgency`], [`DeptCode`]: classification and routing.
//! - [`PhoneNumber`], [`Email`]: complainant contact keys.
//! - [`calendar`]: working-day calendars (调休 included) and SLA deadline arithmetic.

pub mod calendar;
mod channel;
pub mod clock;
mod contact;
mod dept;
mod error;
mod grade;
mod ids;
pub mod lifecycle;

pub use channel::Channel;
pub use contact::{Email, PhoneNumber};
pub use dept::DeptCode;
pub use error::InvalidValue;
pub use grade::{Grade, Urgency};
pub use ids::{ComplaintId, TrackingNo};
