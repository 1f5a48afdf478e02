//! Any bytes as a WeChat push: envelope, decryption and message parsing
//! must never panic.
#![no_main]

use tousu_channels::wechat;

// The published Tencent sample EncodingAESKey and a sample AppID.
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP_ID: &str = "wx5823bf96d3bd56c7";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = wechat::parse_message(text) {
        let _ = msg.to_inbound();
    }
    if let Ok(encrypt) = wechat::encrypted_envelope(text) {
        let cipher = wechat::Cipher::new(KEY, APP_ID).expect("sample key");
        if let Ok(xml) = cipher.decrypt(&encrypt) {
            let _ = wechat::parse_message(&xml);
        }
    }
    let cipher = wechat::Cipher::new(KEY, APP_ID).expect("sample key");
    let _ = cipher.decrypt(text);
});
