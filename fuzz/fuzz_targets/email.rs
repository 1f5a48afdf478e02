//! Any bytes as a raw email: parsing must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tousu_channels::email::parse(data);
});
