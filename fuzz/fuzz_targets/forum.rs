//! Any bytes as a forum webhook body (Discourse events and the generic
//! JSON): parsing must never panic.
#![no_main]

use tousu_channels::forum;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for event in ["post_created", "post_edited", "topic_created", "ping"] {
        let _ = forum::parse_discourse(event, "https://forum.example.com", data);
    }
    let _ = forum::parse_generic(data);
});
