//! Acknowledgements: `GET/POST /v1/acks/{token}` and the ack ladder.
//!
//! STUB: being written.
