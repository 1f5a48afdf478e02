//! WeChat official account (公众号) server push.
//!
//! Tencent pushes every message a follower sends to the account's server
//! URL as a small XML document, either in the clear or, in safe mode
//! (`encrypt_type=aes`), AES-encrypted inside an envelope. This module holds
//! the pure half of that protocol: the SHA-1 signatures that prove a request
//! comes from Tencent, the AES-256-CBC cipher of the EncodingAESKey, a
//! hardened XML reader (no DTDs, no entities beyond the five predefined
//! ones, bounded depth and size) and the passive replies. The intake
//! service does the HTTP, the timestamp window and the dedup store.
//!
//! A follower's messages are threaded by openid: every message carries the
//! key [`thread_key`]`(openid)` both as a thread key and as a reply key, so
//! intake can merge several messages sent within its window into one
//! complaint.

use aes::Aes256;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::generic_array::GenericArray;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use quick_xml::Reader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;
use sha1::{Digest, Sha1};

use crate::{Fields, Inbound, Invalid, constant_time_eq, tracking_numbers};

/// Prefix of the thread key of a follower (`wechat:openid:<openid>`).
pub const THREAD_KEY_PREFIX: &str = "wechat:openid:";

/// The largest XML document accepted (the HTTP layer already limits bodies
/// to 1 MiB; a decrypted message is smaller than its envelope).
pub const MAX_XML_BYTES: usize = 1 << 20;

/// Deepest element nesting accepted, the `<xml>` root counting as 1. Real
/// pushes nest at most 5 deep (`SendPicsInfo/PicList/item/PicMd5Sum`).
const MAX_DEPTH: usize = 6;

/// Most elements accepted in one document; real pushes have a few dozen.
const MAX_ELEMENTS: usize = 10_000;

/// AES-CBC block size.
const AES_BLOCK: usize = 16;

/// Tencent pads to 32-byte blocks (PKCS#7 with a 32-byte block size).
const PAD_BLOCK: usize = 32;

/// The thread key under which all messages of the follower `openid` meet.
pub fn thread_key(openid: &str) -> String {
    format!("{THREAD_KEY_PREFIX}{openid}")
}

/// A decoded message pushed by Tencent. Every element is kept as the text
/// Tencent sent (trimmed, except `Content` and `Recognition` which are kept
/// verbatim); elements a message type does not have stay empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// `ToUserName`: the official account's original id (`gh_…`).
    pub to_user: String,
    /// `FromUserName`: the follower's openid.
    pub from_user: String,
    /// `CreateTime`, Unix seconds.
    pub create_time: i64,
    /// `MsgType`: text, image, voice, video, shortvideo, location, link, event…
    pub msg_type: String,
    /// `MsgId` (also accepted as `MsgID`); empty for events.
    pub msg_id: String,
    /// `Content` of a text message.
    pub content: String,
    /// `Recognition`: Tencent's speech recognition of a voice message.
    pub recognition: String,
    /// `PicUrl` of an image message.
    pub pic_url: String,
    /// `MediaId` of an image, voice, video or short video.
    pub media_id: String,
    /// `Format` of a voice message (amr, speex).
    pub format: String,
    /// `ThumbMediaId` of a video or short video.
    pub thumb_media_id: String,
    /// `Location_X` (latitude) of a location message, as sent.
    pub location_x: String,
    /// `Location_Y` (longitude) of a location message, as sent.
    pub location_y: String,
    /// `Scale` (map zoom) of a location message.
    pub scale: String,
    /// `Label`: the place name of a location message.
    pub label: String,
    /// `Title` of a link message.
    pub title: String,
    /// `Description` of a link message.
    pub description: String,
    /// `Url` of a link message.
    pub url: String,
    /// `Event` of an event push (subscribe, unsubscribe, CLICK, VIEW…).
    pub event: String,
    /// `EventKey` of an event push (menu key, QR scene).
    pub event_key: String,
    /// `MsgDataId` of a message sent from an article (图文消息).
    pub msg_data_id: String,
    /// `Idx` of the article within a multi-article message.
    pub idx: String,
}

impl Message {
    /// The dedup id: `MsgId`, or `FromUserName:CreateTime` for events.
    /// Tencent retries a push three times when we are slow; the retries
    /// carry the same id.
    pub fn dedup_id(&self) -> String {
        if self.msg_id.is_empty() {
            format!("{}:{}", self.from_user, self.create_time)
        } else {
            self.msg_id.clone()
        }
    }

    /// Events (`subscribe`, menu clicks…) are not complaints.
    pub fn is_event(&self) -> bool {
        self.msg_type == "event"
    }

    /// The complaint this message makes; `None` for events.
    ///
    /// Media are not downloaded here (that needs the access token): their
    /// `MediaId` / `PicUrl` go to `extra` and the description says what was
    /// sent, so a complaint made of a photo alone still has a description.
    pub fn to_inbound(&self) -> Option<Inbound> {
        if self.is_event() {
            return None;
        }
        let mut fields = Fields {
            channel_message_id: Some(self.dedup_id()),
            wechat_openid: Some(self.from_user.clone()),
            ..Fields::default()
        };
        let mut extra: Vec<(String, String)> = Vec::new();
        let mut push = |key: &str, value: &str| {
            if !value.is_empty() {
                extra.push((key.to_owned(), value.to_owned()));
            }
        };
        push("wechat_account", &self.to_user);
        push("wechat_msg_type", &self.msg_type);
        push("wechat_create_time", &self.create_time.to_string());
        push("wechat_media_id", &self.media_id);
        push("wechat_thumb_media_id", &self.thumb_media_id);
        push("wechat_format", &self.format);
        push("wechat_pic_url", &self.pic_url);
        push("wechat_url", &self.url);
        if !self.location_x.is_empty() || !self.location_y.is_empty() {
            push(
                "wechat_location",
                &format!("{},{}", self.location_x, self.location_y),
            );
        }
        push("wechat_scale", &self.scale);
        push("wechat_msg_data_id", &self.msg_data_id);
        push("wechat_idx", &self.idx);

        let description = match self.msg_type.as_str() {
            "text" => self.content.trim().to_owned(),
            "voice" => {
                let heard = self.recognition.trim();
                if heard.is_empty() {
                    format!("[语音] (no recognition) MediaId={}", self.media_id)
                } else {
                    heard.to_owned()
                }
            }
            "image" => join("[图片]", &[&self.pic_url]),
            "video" | "shortvideo" => format!("[视频] MediaId={}", self.media_id),
            "location" => {
                let place = format!("({}, {})", self.location_x, self.location_y);
                fields.location = Some(if self.label.is_empty() {
                    format!("{}, {}", self.location_x, self.location_y)
                } else {
                    self.label.clone()
                });
                join("[位置]", &[&self.label, &place])
            }
            "link" => {
                if !self.title.is_empty() {
                    fields.title = Some(self.title.clone());
                }
                join("[链接]", &[&self.title, &self.description, &self.url])
            }
            other => {
                let media = if self.media_id.is_empty() {
                    String::new()
                } else {
                    format!("MediaId={}", self.media_id)
                };
                join(
                    &format!("[{other}]"),
                    &[
                        &self.title,
                        &self.description,
                        self.content.trim(),
                        &self.url,
                        &self.pic_url,
                        &media,
                    ],
                )
            }
        };
        let tracking_refs = tracking_numbers(&description);
        fields.description = Some(description);
        let key = thread_key(&self.from_user);
        Some(Inbound {
            fields,
            attachments: Vec::new(),
            thread_keys: vec![key.clone()],
            reply_to: vec![key],
            tracking_refs,
            original: String::new(),
            extra,
        })
    }
}

/// `head` followed by the non-empty `parts`, space-separated.
fn join(head: &str, parts: &[&str]) -> String {
    let mut out = head.to_owned();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        out.push(' ');
        out.push_str(part);
    }
    out
}

/// `sha1(sort(parts).concat())` in lower-case hex: the URL signature over
/// `[token, timestamp, nonce]` and the safe-mode `msg_signature` over
/// `[token, timestamp, nonce, Encrypt]`. The parts are sorted bytewise, as
/// Tencent does.
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// URL and plaintext-message signature check (constant time, hex case
/// ignored). Note that in plaintext mode the signature does not cover the
/// body: only safe mode authenticates the message itself.
pub fn verify_signature(token: &str, timestamp: &str, nonce: &str, signature: &str) -> bool {
    let expected = self::signature(&[token, timestamp, nonce]);
    constant_time_eq(
        expected.as_bytes(),
        signature.to_ascii_lowercase().as_bytes(),
    )
}

/// Safe-mode `msg_signature` check over the `Encrypt` value (constant time,
/// hex case ignored). Check it before decrypting.
pub fn verify_msg_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    msg_signature: &str,
) -> bool {
    let expected = signature(&[token, timestamp, nonce, encrypt]);
    constant_time_eq(
        expected.as_bytes(),
        msg_signature.to_ascii_lowercase().as_bytes(),
    )
}

/// True when `timestamp` (Unix seconds, digits only) is within
/// `window_secs` of `now_unix`, either way: a replayed push with a valid
/// signature is refused once it is older than the window.
pub fn timestamp_fresh(timestamp: &str, now_unix: i64, window_secs: i64) -> bool {
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (Ok(t), Ok(window)) = (timestamp.parse::<i64>(), u64::try_from(window_secs)) else {
        return false;
    };
    t.abs_diff(now_unix) <= window
}

/// Base64 as Tencent uses it for the EncodingAESKey: 43 characters, whose
/// last one may carry non-zero trailing bits, with or without the `=`.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// AES-256-CBC cipher of one official account (EncodingAESKey + AppID).
#[derive(Clone)]
pub struct Cipher {
    key: [u8; 32],
    app_id: String,
}

impl std::fmt::Debug for Cipher {
    /// The key is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl Cipher {
    /// The cipher of the account `app_id` with its 43-character
    /// EncodingAESKey (the AES key is `base64(EncodingAESKey + "=")`).
    /// A wrong key is a configuration error, reported on `wechat_aes_key`.
    pub fn new(encoding_aes_key: &str, app_id: &str) -> Result<Self, Invalid> {
        const FIELD: &str = "wechat_aes_key";
        if encoding_aes_key.len() != 43 || !encoding_aes_key.is_ascii() {
            return Err(Invalid::new(
                FIELD,
                format!(
                    "EncodingAESKey must be 43 characters, got {}",
                    encoding_aes_key.chars().count()
                ),
            ));
        }
        let decoded = LENIENT_B64
            .decode(format!("{encoding_aes_key}="))
            .map_err(|e| Invalid::new(FIELD, format!("EncodingAESKey is not base64: {e}")))?;
        let key: [u8; 32] = decoded.try_into().map_err(|d: Vec<u8>| {
            Invalid::new(
                FIELD,
                format!("EncodingAESKey decodes to {} bytes, not 32", d.len()),
            )
        })?;
        if app_id.trim().is_empty() {
            return Err(Invalid::new("wechat_app_id", "AppID is empty"));
        }
        Ok(Cipher {
            key,
            app_id: app_id.to_owned(),
        })
    }

    /// The AppID whose messages this cipher accepts.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    /// The message XML inside an `Encrypt` value; checks the padding, the
    /// length field and the AppID (a message for another account, or
    /// encrypted with another key, is refused). Every failure is an
    /// [`Invalid`] on `Encrypt`.
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String, Invalid> {
        let bad = |msg: String| Invalid::new("Encrypt", msg);
        let mut data = STANDARD
            .decode(encrypt_b64.trim())
            .map_err(|e| bad(format!("not valid base64: {e}")))?;
        if data.is_empty() || data.len() % AES_BLOCK != 0 {
            return Err(bad(format!(
                "ciphertext is {} bytes, not a non-zero multiple of {AES_BLOCK}",
                data.len()
            )));
        }
        let mut dec = cbc::Decryptor::<Aes256>::new(&self.key.into(), &self.iv().into());
        for block in data.chunks_exact_mut(AES_BLOCK) {
            dec.decrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        let pad = usize::from(data.last().copied().unwrap_or(0));
        if pad == 0 || pad > PAD_BLOCK || pad > data.len() {
            return Err(bad(format!("bad padding (pad byte {pad})")));
        }
        let body_len = data.len() - pad;
        if data[body_len..].iter().any(|&b| usize::from(b) != pad) {
            return Err(bad("bad padding (inconsistent pad bytes)".into()));
        }
        let body = &data[..body_len];
        if body.len() < 20 {
            return Err(bad(format!(
                "plaintext is {} bytes, shorter than random + length (20)",
                body.len()
            )));
        }
        let len_bytes = [body[16], body[17], body[18], body[19]];
        let msg_len = usize::try_from(u32::from_be_bytes(len_bytes)).unwrap_or(usize::MAX);
        let rest = &body[20..];
        if msg_len > rest.len() {
            return Err(bad(format!(
                "message length field {msg_len} exceeds the {} bytes decrypted",
                rest.len()
            )));
        }
        let (msg, app_id) = rest.split_at(msg_len);
        if app_id != self.app_id.as_bytes() {
            return Err(bad(format!(
                "AppID mismatch: the message is for {:?}",
                String::from_utf8_lossy(app_id)
            )));
        }
        String::from_utf8(msg.to_vec()).map_err(|_| bad("message is not UTF-8".into()))
    }

    /// The `Encrypt` value for `xml`, with the 16 given random bytes in
    /// front (the caller draws them from a CSPRNG; tests fix them).
    pub fn encrypt(&self, xml: &str, random: [u8; 16]) -> String {
        // Replies are a few hundred bytes; the length field is 32 bits.
        let len = u32::try_from(xml.len()).unwrap_or(u32::MAX);
        let mut data = Vec::with_capacity(20 + xml.len() + self.app_id.len() + PAD_BLOCK);
        data.extend_from_slice(&random);
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(xml.as_bytes());
        data.extend_from_slice(self.app_id.as_bytes());
        let pad = PAD_BLOCK - data.len() % PAD_BLOCK;
        // pad is 1..=32, so it fits a byte.
        data.resize(data.len() + pad, u8::try_from(pad).unwrap_or(32));
        let mut enc = cbc::Encryptor::<Aes256>::new(&self.key.into(), &self.iv().into());
        for block in data.chunks_exact_mut(AES_BLOCK) {
            enc.encrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        STANDARD.encode(&data)
    }
}

/// The direct children of the `<xml>` root, in document order, as (name,
/// text). Text and CDATA are concatenated; only the five predefined entities
/// and character references are decoded. Refused: any DOCTYPE (so no entity
/// declarations: no billion laughs, no external entities), undefined
/// entities, a root other than `<xml>`, nesting deeper than [`MAX_DEPTH`],
/// more than [`MAX_ELEMENTS`] elements, documents over [`MAX_XML_BYTES`],
/// and anything quick-xml finds ill-formed.
fn xml_children(xml: &str) -> Result<Vec<(String, String)>, Invalid> {
    let bad = |msg: String| Invalid::new("body", msg);
    if xml.len() > MAX_XML_BYTES {
        return Err(bad(format!(
            "XML is {} bytes, more than {MAX_XML_BYTES}",
            xml.len()
        )));
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut elements = 0usize;
    let mut children: Vec<(String, String)> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| {
            bad(format!(
                "malformed XML near byte {}: {}",
                reader.error_position(),
                clip(&e.to_string(), 120)
            ))
        })?;
        let text = match event {
            Event::DocType(_) => {
                return Err(bad(
                    "DOCTYPE and entity declarations are not accepted".into()
                ));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(bad(format!("more than {MAX_ELEMENTS} elements")));
                }
                let name = e.name().into_inner();
                match depth {
                    0 if seen_root => {
                        return Err(bad("more than one root element".into()));
                    }
                    0 if name != "xml" => {
                        return Err(bad(format!(
                            "root element must be <xml>, not <{}>",
                            clip(name, 40)
                        )));
                    }
                    0 => seen_root = true,
                    1 => children.push((name.to_owned(), String::new())),
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(bad(format!(
                            "elements nested deeper than {MAX_DEPTH} levels"
                        )));
                    }
                }
                continue;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::Text(t) => t.xml10_content().into_owned(),
            Event::CData(c) => c.xml10_content().into_owned(),
            Event::GeneralRef(r) => {
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => {
                            return Err(bad(format!(
                                "invalid character reference &{};",
                                clip(&r, 40)
                            )));
                        }
                    }
                } else if let Some(s) = resolve_xml_entity(&r) {
                    s.to_owned()
                } else {
                    return Err(bad(format!("undefined entity &{};", clip(&r, 40))));
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
            Event::Eof => break,
        };
        match depth {
            0 if !text.trim().is_empty() => {
                return Err(bad("text outside the <xml> root".into()));
            }
            2 => {
                if let Some((_, value)) = children.last_mut() {
                    value.push_str(&text);
                }
            }
            // Whitespace between the children, text of nested elements.
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad("unexpected end of XML: unclosed element".into()));
    }
    if !seen_root {
        return Err(bad("no <xml> element".into()));
    }
    Ok(children)
}

/// At most `max` characters of `s` (for error messages).
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The `Encrypt` element of a safe-mode envelope
/// (`<xml><ToUserName>…</ToUserName><Encrypt>…</Encrypt></xml>`).
pub fn encrypted_envelope(xml: &str) -> Result<String, Invalid> {
    let children = xml_children(xml)?;
    let encrypt = children
        .into_iter()
        .find(|(name, _)| name == "Encrypt")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    if encrypt.is_empty() {
        return Err(Invalid::new("Encrypt", "missing from the envelope"));
    }
    Ok(encrypt)
}

/// Parses a (decrypted) message XML. `ToUserName`, `FromUserName`,
/// `CreateTime` (Unix seconds) and `MsgType` are required; a known element
/// given twice is refused (which one would count?); unknown elements are
/// ignored.
pub fn parse_message(xml: &str) -> Result<Message, Invalid> {
    let children = xml_children(xml)?;
    let mut m = Message::default();
    let mut create_time: Option<String> = None;
    let mut seen: Vec<&'static str> = Vec::new();
    for (name, value) in children {
        let (element, slot, verbatim): (&'static str, &mut String, bool) = match name.as_str() {
            "ToUserName" => ("ToUserName", &mut m.to_user, false),
            "FromUserName" => ("FromUserName", &mut m.from_user, false),
            "CreateTime" => ("CreateTime", create_time.get_or_insert_default(), false),
            "MsgType" => ("MsgType", &mut m.msg_type, false),
            "MsgId" | "MsgID" => ("MsgId", &mut m.msg_id, false),
            "Content" => ("Content", &mut m.content, true),
            "Recognition" => ("Recognition", &mut m.recognition, true),
            "PicUrl" => ("PicUrl", &mut m.pic_url, false),
            "MediaId" => ("MediaId", &mut m.media_id, false),
            "Format" => ("Format", &mut m.format, false),
            "ThumbMediaId" => ("ThumbMediaId", &mut m.thumb_media_id, false),
            "Location_X" => ("Location_X", &mut m.location_x, false),
            "Location_Y" => ("Location_Y", &mut m.location_y, false),
            "Scale" => ("Scale", &mut m.scale, false),
            "Label" => ("Label", &mut m.label, false),
            "Title" => ("Title", &mut m.title, false),
            "Description" => ("Description", &mut m.description, false),
            "Url" => ("Url", &mut m.url, false),
            "Event" => ("Event", &mut m.event, false),
            "EventKey" => ("EventKey", &mut m.event_key, false),
            "MsgDataId" => ("MsgDataId", &mut m.msg_data_id, false),
            "Idx" => ("Idx", &mut m.idx, false),
            _ => continue,
        };
        if seen.contains(&element) {
            return Err(Invalid::new(element, "appears more than once"));
        }
        seen.push(element);
        *slot = if verbatim {
            value
        } else {
            value.trim().to_owned()
        };
    }
    for (element, value) in [
        ("ToUserName", &m.to_user),
        ("FromUserName", &m.from_user),
        ("MsgType", &m.msg_type),
    ] {
        if value.is_empty() {
            return Err(Invalid::new(element, "missing"));
        }
    }
    let create_time = create_time.ok_or_else(|| Invalid::new("CreateTime", "missing"))?;
    if create_time.is_empty() || !create_time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(
            "CreateTime",
            format!("not Unix seconds: {:?}", clip(&create_time, 40)),
        ));
    }
    m.create_time = create_time
        .parse()
        .map_err(|_| Invalid::new("CreateTime", "out of range"))?;
    Ok(m)
}

/// `s` as one or more CDATA sections: a `]]>` inside is split across two
/// sections so it cannot close the section early.
fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

/// `s` escaped as XML character data.
fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A passive text reply (the answer to the push itself, within 5 s):
/// `to_user` is the follower's openid, `from_user` the account's id.
pub fn text_reply(to_user: &str, from_user: &str, create_time: i64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName>\
         <CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content>{}</Content></xml>",
        cdata(to_user),
        cdata(from_user),
        cdata(content)
    )
}

/// A safe-mode reply envelope around `reply_xml`, signed with a
/// `msg_signature` over the new `Encrypt` value.
pub fn encrypted_reply(
    cipher: &Cipher,
    token: &str,
    timestamp: &str,
    nonce: &str,
    reply_xml: &str,
    random: [u8; 16],
) -> String {
    let encrypt = cipher.encrypt(reply_xml, random);
    let msg_signature = signature(&[token, timestamp, nonce, &encrypt]);
    format!(
        "<xml><Encrypt>{}</Encrypt><MsgSignature>{}</MsgSignature>\
         <TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
        cdata(&encrypt),
        cdata(&msg_signature),
        xml_text(timestamp),
        cdata(nonce)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const APP_ID: &str = "wx5823bf96d3bd56c7";

    fn text_xml(content: &str) -> String {
        format!(
            "<xml><ToUserName><![CDATA[gh_3ad8c2f1e0b7]]></ToUserName>\
             <FromUserName><![CDATA[oX3Ze5Hq1f0TQ9m0sVYkR2l8aB4c]]></FromUserName>\
             <CreateTime>1763790000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[{content}]]></Content><MsgId>24398765432101234</MsgId></xml>"
        )
    }

    #[test]
    fn signature_sorts_before_hashing() {
        // sha1("123456789") is the well-known check value f7c3bc1d…
        assert_eq!(
            signature(&["789", "456", "123"]),
            "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
        );
        assert_eq!(signature(&["b", "a"]), signature(&["a", "b"]));
        assert_ne!(signature(&["ab", "c"]), signature(&["a", "bc", "x"]));
    }

    #[test]
    fn verify_signature_ignores_hex_case_only() {
        let sig = signature(&["tok", "1763790000", "nonce1"]);
        assert!(verify_signature("tok", "1763790000", "nonce1", &sig));
        assert!(verify_signature(
            "tok",
            "1763790000",
            "nonce1",
            &sig.to_ascii_uppercase()
        ));
        assert!(!verify_signature("tok", "1763790000", "nonce1", &sig[..39]));
        assert!(!verify_signature("tok", "1763790001", "nonce1", &sig));
        assert!(!verify_signature("tok", "1763790000", "nonce1", ""));
    }

    #[test]
    fn timestamp_fresh_never_overflows() {
        assert!(timestamp_fresh("1000", 1300, 300));
        assert!(!timestamp_fresh("1000", 1301, 300));
        assert!(timestamp_fresh("1600", 1300, 300));
        assert!(!timestamp_fresh("1601", 1300, 300));
        assert!(!timestamp_fresh("9223372036854775807", i64::MIN, 300));
        assert!(!timestamp_fresh("99999999999999999999", 0, 300));
        assert!(!timestamp_fresh("-5", -5, 300));
        assert!(!timestamp_fresh("+1000", 1000, 300));
        assert!(!timestamp_fresh("", 0, 300));
        assert!(!timestamp_fresh("1000", 1000, -1));
    }

    #[test]
    fn padding_covers_a_whole_block_when_aligned() {
        let cipher = Cipher::new(KEY, APP_ID).unwrap();
        // 16 + 4 + len + 18 (AppID) = 64 when len = 26: a full 32-byte pad block.
        let xml = "abcdefghijklmnopqrstuvwxyz";
        let enc = cipher.encrypt(xml, [7; 16]);
        assert_eq!(STANDARD.decode(&enc).unwrap().len(), 96);
        assert_eq!(cipher.decrypt(&enc).unwrap(), xml);
        // One byte more: the pad shrinks to 31 bytes and the total stays 96.
        let enc = cipher.encrypt("abcdefghijklmnopqrstuvwxyz0", [7; 16]);
        assert_eq!(STANDARD.decode(&enc).unwrap().len(), 96);
        assert_eq!(cipher.decrypt(&enc).unwrap(), "abcdefghijklmnopqrstuvwxyz0");
    }

    #[test]
    fn cipher_new_checks_the_key() {
        assert_eq!(
            Cipher::new("short", APP_ID).unwrap_err().field,
            "wechat_aes_key"
        );
        let with_bad_char = format!("{}*", &KEY[..42]);
        assert_eq!(
            Cipher::new(&with_bad_char, APP_ID).unwrap_err().field,
            "wechat_aes_key"
        );
        assert_eq!(Cipher::new(KEY, " ").unwrap_err().field, "wechat_app_id");
        // 43 'A's: the all-zero key Tencent's third-party platform docs use.
        assert!(Cipher::new(&"A".repeat(43), APP_ID).is_ok());
        // The key never shows in Debug output.
        let shown = format!("{:?}", Cipher::new(KEY, APP_ID).unwrap());
        assert!(shown.contains(APP_ID) && !shown.contains("key"));
    }

    #[test]
    fn cdata_splits_the_terminator() {
        assert_eq!(cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
        assert_eq!(
            cdata("]]>]]>"),
            "<![CDATA[]]]]><![CDATA[>]]]]><![CDATA[>]]>"
        );
        // Round trip through our own reader.
        let xml = text_reply("o1", "gh_1", 1, "x]]>y]]]>z");
        assert_eq!(parse_message(&xml).unwrap().content, "x]]>y]]]>z");
    }

    #[test]
    fn entities_and_char_refs_are_decoded() {
        let xml = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>\
                   <CreateTime>1</CreateTime><MsgType>text</MsgType>\
                   <Content>a &lt;b&gt; &amp; &quot;c&apos; &#20013;&#x6587;</Content></xml>";
        assert_eq!(parse_message(xml).unwrap().content, "a <b> & \"c' 中文");
        let bad = xml.replace("&amp;", "&nbsp;");
        let err = parse_message(&bad).unwrap_err();
        assert!(err.message.contains("undefined entity &nbsp;"), "{err}");
        let bad = xml.replace("&#20013;", "&#0;");
        assert!(parse_message(&bad).is_err());
    }

    #[test]
    fn structure_limits() {
        let deep = format!(
            "<xml>{}x{}</xml>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        let err = parse_message(&deep).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{err}");
        let ok_depth = format!(
            "{}{}",
            text_xml("x").trim_end_matches("</xml>"),
            "<a><b><c><d><e/></d></c></b></a></xml>"
        );
        assert_eq!(parse_message(&ok_depth).unwrap().content, "x");
        let many = format!("<xml>{}</xml>", "<a/>".repeat(MAX_ELEMENTS + 1));
        assert!(
            parse_message(&many)
                .unwrap_err()
                .message
                .contains("elements")
        );
        let big = format!(
            "<xml><Content>{}</Content></xml>",
            "x".repeat(MAX_XML_BYTES)
        );
        assert!(parse_message(&big).unwrap_err().message.contains("bytes"));
        assert!(parse_message(&format!("{}<xml/>", text_xml("x"))).is_err());
        assert!(parse_message(&format!("{} trailing", text_xml("x"))).is_err());
        assert!(parse_message("<root><MsgType>text</MsgType></root>").is_err());
        assert_eq!(parse_message("").unwrap_err().message, "no <xml> element");
        let bom = format!("\u{feff}{}", text_xml("带BOM"));
        assert_eq!(parse_message(&bom).unwrap().content, "带BOM");
    }

    #[test]
    fn duplicate_known_elements_are_refused() {
        let xml = text_xml("你好").replace(
            "<MsgType><![CDATA[text]]></MsgType>",
            "<MsgType>text</MsgType><MsgType>event</MsgType>",
        );
        assert_eq!(parse_message(&xml).unwrap_err().field, "MsgType");
        let xml = text_xml("你好").replace("</xml>", "<MsgID>1</MsgID></xml>");
        assert_eq!(parse_message(&xml).unwrap_err().field, "MsgId");
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("投诉快递", 2), "投诉…");
        assert_eq!(clip("ab", 2), "ab");
    }
}
