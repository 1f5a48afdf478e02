//! Email: one raw RFC 5322 message in.
//!
//! The mail gateway hands over every message that reaches the complaint
//! address, so this module decides three things: whether the message is a
//! person writing at all (auto-replies, bounces, read receipts and bulk
//! mail are [`Email::Ignored`] so that they can never open a complaint or
//! start a mail loop with the acknowledgement), whether it is well-formed
//! enough to be read ([`Invalid`]), and otherwise what the person wrote.
//!
//! MIME decoding (encoded words in any charset, quoted-printable, base64,
//! RFC 2231 parameters, GBK/GB18030/Big5 bodies) is mail-parser's. What is
//! ours: choosing the text (`text/plain` before `text/html`), dropping the
//! quoted original from replies, the threading keys, and being strict where
//! mail-parser is lenient (a multipart whose boundary never occurs is
//! rejected rather than shown as one raw blob), and reading attached
//! messages ourselves, because mail-parser's own handling of them goes out
//! of step on a forward of a forward (see `prepare`).

use std::borrow::Cow;

use mail_parser::decoders::{
    base64::base64_decode, charsets::map::charset_decoder,
    quoted_printable::quoted_printable_decode,
};
use mail_parser::{
    Addr, Address, Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart,
    MimeHeaders, PartType,
};
use sha2::{Digest, Sha256};

use crate::{Attachment, Fields, Inbound, Invalid, text};

/// What an email turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "the public API intake is written against; one value per request, never stored in bulk"
)]
pub enum Email {
    /// A complaint, or a follow-up when `reply_to`/`tracking_refs` name a known one.
    Message(Inbound),
    /// An auto-reply, bounce or DSN: never a complaint. The reason says
    /// which: one of [`AUTO_REPLY`], [`AUTO_GENERATED`], [`BULK`],
    /// [`BOUNCE`], [`RECEIPT`], [`REPORT`].
    Ignored(&'static str),
}

/// An out-of-office or other automatic answer (`Auto-Submitted:
/// auto-replied`, `X-Autoreply`, `X-Autorespond`, `X-Auto-Response-Suppress:
/// All|OOF`, `Precedence: auto_reply`).
pub const AUTO_REPLY: &str = "auto-reply";
/// A message a program sent by itself (`Auto-Submitted: auto-generated`,
/// `auto-notified`, or any other value than `no`).
pub const AUTO_GENERATED: &str = "auto-generated";
/// Mass mail (`Precedence: bulk` or `junk`).
///
/// `Precedence: list` alone is *not* ignored: mailing-list software stamps
/// it on every post, and a post is still a person writing (an owners'
/// list copying the complaint address, say). Bulk senders that also set
/// `Auto-Submitted` are caught by that header.
pub const BULK: &str = "bulk";
/// A non-delivery report: a delivery-status report, a `message/delivery-status`
/// part, a `MAILER-DAEMON`/`postmaster` sender, or an empty `Return-Path: <>`
/// with a bounce subject.
pub const BOUNCE: &str = "bounce";
/// A read receipt (`multipart/report; report-type=disposition-notification`).
pub const RECEIPT: &str = "receipt";
/// Any other `multipart/report` (abuse feedback, TLS reports…).
pub const REPORT: &str = "report";

/// Attached messages whose text is appended to the description, at most.
const MAX_ATTACHED_MESSAGES: usize = 3;
/// Ids taken from `In-Reply-To` + `References`, at most (a long thread's
/// `References` can list hundreds; the newest matter).
const MAX_REPLY_IDS: usize = 50;

/// Parses a raw message. Attachments are returned whole; size limits are the caller's.
///
/// Order of decisions: not a message at all → `Invalid("message")`; an
/// automatic message → `Ignored` (before any other check, so that a broken
/// bounce is still just ignored); a multipart with a broken boundary →
/// `Invalid("body")`; no usable sender → `Invalid("from")`; no text and no
/// attachments → `Invalid("description")`.
///
/// The complainant is the `From` address; `Reply-To` is used only when
/// `From` is missing or unusable (web-form gateways sometimes send with
/// only a `Reply-To`). The `Date` header is when the mail was sent, not
/// when the complained-about thing happened, so it goes to `extra` as
/// `("date", RFC 3339)` and `occurred_at` stays empty.
pub fn parse(raw: &[u8]) -> Result<Email, Invalid> {
    let prepared = prepare(raw);
    let Some(msg) = MessageParser::default().parse(prepared.bytes.as_ref()) else {
        return Err(Invalid::new(
            "message",
            "not an email message: no header fields",
        ));
    };
    let Some(root) = msg.parts.first() else {
        return Err(Invalid::new(
            "message",
            "not an email message: no header fields",
        ));
    };
    if !root.headers.iter().any(|h| is_message_header(&h.name)) {
        return Err(Invalid::new(
            "message",
            "not an email message: none of From, To, Subject, Date, Message-ID, \
             Received, MIME-Version or Content-Type",
        ));
    }

    let mail = Mail {
        msg: &msg,
        raw,
        nested: &prepared.nested,
    };

    if let Some(reason) = ignore_reason(&mail) {
        return Ok(Email::Ignored(reason));
    }
    check_boundaries(&mail)?;

    let (email, name, reply_to_addr) = sender(&msg)?;

    let subject_line = subject(&mail);
    let (title, prefix) = strip_subject_prefixes(subject_line.as_deref().unwrap_or_default());
    let title = Some(title).filter(|t| !t.is_empty());

    let message_id = msg
        .message_id()
        .map(|id| id.trim().trim_matches(['<', '>']).trim())
        .filter(|id| !id.is_empty() && !id.chars().any(char::is_control))
        .map(str::to_owned);
    let reply_ids = reply_ids(&msg, message_id.as_deref());
    let is_reply = prefix == Prefix::Reply || !reply_ids.is_empty();

    // The text: plain preferred, HTML converted when there is no plain text.
    let body = body_text(&mail);
    let mut description = body.text.clone();
    let mut original = body.html.unwrap_or_default();
    if is_reply && let Some(stripped) = strip_quoted(&description) {
        if original.is_empty() {
            original = description;
        }
        description = stripped;
    }

    // A forward as attachment: the attached message's text is part of
    // what the person sent us, as it would be in an inline forward.
    let (attachments, attached) = attachments(&mail);
    for (label, text) in attached {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&format!("---------- 附件邮件：{label} ----------\n"));
        description.push_str(&text);
    }
    if description.is_empty() {
        if attachments.is_empty() {
            return Err(Invalid::new(
                "description",
                "the message has no text and no attachments",
            ));
        }
        // Photos sent with only a subject: the subject says what they show.
        description = match &title {
            Some(t) => t.clone(),
            None => attachment_summary(&attachments),
        };
    }

    let mut extra = Vec::new();
    if let Some(date) = msg.date().and_then(rfc3339) {
        extra.push(("date".to_owned(), date));
    }
    if let Some(addr) = reply_to_addr {
        extra.push(("reply_to".to_owned(), addr));
    }

    let thread_keys = message_id.iter().map(|id| format!("email:{id}")).collect();
    let channel_message_id = message_id
        .clone()
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(raw))));

    Ok(Email::Message(Inbound {
        fields: Fields {
            channel_message_id: Some(channel_message_id),
            title,
            description: Some(description),
            name,
            email: Some(email),
            ..Fields::default()
        },
        attachments,
        thread_keys,
        reply_to: reply_ids.iter().map(|id| format!("email:{id}")).collect(),
        tracking_refs: crate::tracking_numbers(subject_line.as_deref().unwrap_or_default()),
        original,
        extra,
    }))
}

/// What a neutralized `Content-Type` said (see [`prepare`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nested {
    /// `message/rfc822` or `message/global` (the media type): an attached message.
    Message(&'static str),
    /// `multipart/digest`: a mailing-list digest.
    Digest,
}

/// The bytes mail-parser is given, and where they differ from the raw message.
struct Prepared<'r> {
    bytes: Cow<'r, [u8]>,
    /// Positions of neutralized `Content-Type` header names, ascending.
    nested: Vec<(usize, Nested)>,
}

/// Hides nested-message structure from mail-parser.
///
/// mail-parser descends into an unencoded `message/rfc822` part (and into
/// the parts of a `multipart/digest`, which default to it) with state that
/// goes out of step when the attached message is itself a bare message
/// (a forward of a forward) or is cut short: it hits `debug_assert!`s,
/// i.e. panics in debug and fuzz builds and silently mis-parses in
/// release. So every `Content-Type` field naming one of those types gets
/// its name changed in one byte (`Content-TypX`, same length, so every
/// offset still points into the raw message); mail-parser then sees a
/// plain part, and [`attachments`] parses the attached message on its own.
/// The scan is deliberately broader than mail-parser's header parser
/// (any line, any spacing, comments stripped): changing one header too
/// many only makes a part an attachment, missing one would bring the
/// fault back.
fn prepare(raw: &[u8]) -> Prepared<'_> {
    let nested = nested_content_types(raw);
    if nested.is_empty() {
        return Prepared {
            bytes: Cow::Borrowed(raw),
            nested,
        };
    }
    let mut bytes = raw.to_vec();
    for &(pos, _) in &nested {
        if let Some(b) = bytes.get_mut(pos) {
            *b = b'X';
        }
    }
    Prepared {
        bytes: Cow::Owned(bytes),
        nested,
    }
}

/// Every `Content-Type:` field (name matched as mail-parser does: case and
/// whitespace ignored) whose value is a nested message or a digest, as the
/// position of the name's last byte.
fn nested_content_types(raw: &[u8]) -> Vec<(usize, Nested)> {
    const NAME: &[u8] = b"content-type";
    let mut found = Vec::new();
    let mut line_start = 0;
    for (colon, &b) in raw.iter().enumerate() {
        if b == b'\n' {
            line_start = colon + 1;
            continue;
        }
        if b != b':' {
            continue;
        }
        // The non-blank bytes before the colon, backwards.
        let mut matched = 0;
        let mut last = None;
        let mut j = colon;
        while j > line_start && matched < NAME.len() {
            j -= 1;
            let c = raw[j];
            if c.is_ascii_whitespace() {
                continue;
            }
            if !c.eq_ignore_ascii_case(&NAME[NAME.len() - 1 - matched]) {
                break;
            }
            if matched == 0 {
                last = Some(j);
            }
            matched += 1;
        }
        if matched < NAME.len() {
            continue;
        }
        let value = raw.get(colon + 1..).unwrap_or_default();
        if let (Some(pos), Some(kind)) = (last, nested_kind(value)) {
            found.push((pos, kind));
        }
    }
    found
}

/// Whether a Content-Type value (the bytes after the colon, up to the end
/// of the field) is a nested message or a digest. Blanks, quotes,
/// backslashes and comments are skipped, as mail-parser skips them. A value
/// that cannot be settled within 256 bytes counts as nested (real
/// headers settle within a few dozen; the bound keeps many overlapping
/// fields linear).
fn nested_kind(value: &[u8]) -> Option<Nested> {
    const LIMIT: usize = 256;
    const WANT: usize = 16; // "multipart/digest".len()
    let mut norm = Vec::with_capacity(WANT);
    let mut depth = 0usize;
    let mut escaped = false;
    let mut i = 0;
    while i < value.len() && norm.len() < WANT {
        if i >= LIMIT {
            return Some(Nested::Message("message/rfc822"));
        }
        let c = value[i];
        i += 1;
        if c == b'\n' {
            if matches!(value.get(i), Some(b' ' | b'\t')) {
                continue; // folded
            }
            break; // end of the field
        }
        if depth > 0 {
            match c {
                b'\\' => escaped = !escaped,
                b'(' if !escaped => depth += 1,
                b')' if !escaped => depth -= 1,
                _ => escaped = false,
            }
            if c != b'\\' {
                escaped = false;
            }
            continue;
        }
        match c {
            b'(' => depth = 1,
            b';' => break,
            b'"' | b'\\' => {}
            c if c.is_ascii_whitespace() => {}
            c => norm.push(c.to_ascii_lowercase()),
        }
    }
    if norm.starts_with(b"message/rfc822") {
        Some(Nested::Message("message/rfc822"))
    } else if norm.starts_with(b"message/global") {
        Some(Nested::Message("message/global"))
    } else if norm.starts_with(b"multipart/digest") {
        Some(Nested::Digest)
    } else {
        None
    }
}

/// A parsed message together with the bytes as received.
struct Mail<'m, 'x> {
    msg: &'m Message<'x>,
    /// The raw message (mail-parser's offsets index it: [`prepare`] keeps lengths).
    raw: &'m [u8],
    /// From [`Prepared::nested`].
    nested: &'m [(usize, Nested)],
}

impl Mail<'_, '_> {
    /// Whether a neutralized position lies in `from..to`.
    fn nested_within(&self, from: usize, to: usize) -> Option<Nested> {
        let first = self.nested.partition_point(|&(pos, _)| pos < from);
        self.nested
            .get(first)
            .filter(|&&(pos, _)| pos < to)
            .map(|&(_, kind)| kind)
    }

    /// What the part's neutralized Content-Type said, if it had one.
    fn nested(&self, part: &MessagePart<'_>) -> Option<Nested> {
        self.nested_within(part.offset_header as usize, part.offset_body as usize)
    }

    /// Whether [`prepare`] changed bytes in the part's body (a text that
    /// quotes such a header line): then its text is read from the raw bytes.
    fn body_touched(&self, part: &MessagePart<'_>) -> bool {
        self.nested_within(part.offset_body as usize, part.offset_end as usize)
            .is_some()
    }

    /// The part's body as received (still transfer-encoded).
    fn body_bytes(&self, part: &MessagePart<'_>) -> Option<&[u8]> {
        self.raw
            .get(part.offset_body as usize..part.offset_end as usize)
    }
}

/// Header fields that only an email message has. A JSON or form body
/// posted to the endpoint parses as "headers" too (`{"title": …`), but
/// carries none of these.
fn is_message_header(name: &HeaderName<'_>) -> bool {
    matches!(
        name,
        HeaderName::From
            | HeaderName::Sender
            | HeaderName::ReplyTo
            | HeaderName::To
            | HeaderName::Cc
            | HeaderName::Subject
            | HeaderName::Date
            | HeaderName::MessageId
            | HeaderName::InReplyTo
            | HeaderName::References
            | HeaderName::Received
            | HeaderName::ReturnPath
            | HeaderName::MimeVersion
            | HeaderName::ContentType
    )
}

/// The first top-level header field called `name` (case-insensitive),
/// raw, unfolded and trimmed.
fn raw_header(mail: &Mail<'_, '_>, name: &str) -> Option<String> {
    let root = mail.msg.parts.first()?;
    let header = root
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    let bytes = mail
        .raw
        .get(header.offset_start as usize..header.offset_end as usize)?;
    let value = String::from_utf8_lossy(bytes);
    Some(value.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `type/subtype` of a part, lower-case (`None` without a Content-Type).
fn mime_type(part: &MessagePart<'_>) -> Option<(String, String)> {
    let ct = part.content_type()?;
    Some((
        ct.ctype().to_ascii_lowercase(),
        ct.subtype().unwrap_or_default().to_ascii_lowercase(),
    ))
}

/// Why the message must never become a complaint, if it must not.
fn ignore_reason(mail: &Mail<'_, '_>) -> Option<&'static str> {
    let msg = mail.msg;
    // A mailing-list digest is bulk mail by definition.
    if msg
        .parts
        .iter()
        .any(|p| mail.nested(p) == Some(Nested::Digest))
    {
        return Some(BULK);
    }
    // Reports anywhere in the top-level structure (not inside an attached
    // message: a customer forwarding a bounce is still writing to us).
    for part in &msg.parts {
        let Some((ctype, subtype)) = mime_type(part) else {
            continue;
        };
        match (ctype.as_str(), subtype.as_str()) {
            ("multipart", "report") => {
                let kind = part
                    .content_type()
                    .and_then(|ct| ct.attribute("report-type"))
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                return Some(match kind.as_str() {
                    "delivery-status" | "global-delivery-status" => BOUNCE,
                    "disposition-notification" | "global-disposition-notification" => RECEIPT,
                    _ => REPORT,
                });
            }
            ("message", "delivery-status" | "global-delivery-status") => return Some(BOUNCE),
            ("message", "disposition-notification" | "global-disposition-notification") => {
                return Some(RECEIPT);
            }
            _ => {}
        }
    }

    if let Some(value) = raw_header(mail, "Auto-Submitted") {
        let token = first_token(&value);
        if !token.is_empty() && token != "no" {
            return Some(if token == "auto-replied" {
                AUTO_REPLY
            } else {
                AUTO_GENERATED
            });
        }
    }
    for name in ["X-Autoreply", "X-Autorespond"] {
        if let Some(value) = raw_header(mail, name) {
            let token = first_token(&value);
            if !matches!(token.as_str(), "" | "no" | "false" | "0") {
                return Some(AUTO_REPLY);
            }
        }
    }
    if let Some(value) = raw_header(mail, "X-Auto-Response-Suppress") {
        let suppressed = value
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .any(|t| t == "all" || t == "oof");
        if suppressed {
            return Some(AUTO_REPLY);
        }
    }
    if let Some(value) = raw_header(mail, "Precedence") {
        match first_token(&value).as_str() {
            "bulk" | "junk" => return Some(BULK),
            "auto_reply" | "auto-reply" => return Some(AUTO_REPLY),
            _ => {}
        }
    }

    let from_local = msg
        .from()
        .and_then(Address::first)
        .and_then(|a| a.address.as_deref())
        .map(|a| {
            a.split('@')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if matches!(
        from_local.as_deref(),
        Some("mailer-daemon" | "postmaster" | "mail-daemon")
    ) {
        return Some(BOUNCE);
    }

    let null_return_path = raw_header(mail, "Return-Path")
        .is_some_and(|v| v.chars().filter(|c| !c.is_whitespace()).eq("<>".chars()));
    if null_return_path && msg.subject().is_some_and(is_bounce_subject) {
        return Some(BOUNCE);
    }
    None
}

/// The first `;`-separated token of a header value, lower-case.
fn first_token(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Subjects that mail servers put on non-delivery reports. Only trusted
/// together with an empty Return-Path (a person may well write "退信").
fn is_bounce_subject(subject: &str) -> bool {
    let s = subject.to_lowercase();
    [
        "undeliverable",
        "undelivered mail",
        "delivery status notification",
        "delivery failure",
        "delivery has failed",
        "mail delivery failed",
        "returned mail",
        "failure notice",
        "non-delivery",
        "退信",
        "投递失败",
        "无法投递",
        "無法傳遞",
    ]
    .iter()
    .any(|needle| s.contains(needle))
}

/// Rejects a multipart whose boundary is missing or never delimits a
/// part. mail-parser then shows the whole body as one text blob (MIME
/// headers, base64 and all); a complaint made of that would be garbage, so
/// the sender is told instead. Attached messages are evidence and are not
/// held to this.
fn check_boundaries(mail: &Mail<'_, '_>) -> Result<(), Invalid> {
    for part in &mail.msg.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        if !ct.ctype().eq_ignore_ascii_case("multipart") {
            continue;
        }
        let kind = format!(
            "multipart/{}",
            ct.subtype().unwrap_or_default().to_ascii_lowercase()
        );
        let Some(boundary) = ct.attribute("boundary").filter(|b| !b.is_empty()) else {
            return Err(Invalid::new(
                "body",
                format!("broken MIME structure: {kind} without a boundary parameter"),
            ));
        };
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let body = mail
            .raw
            .get(part.offset_body as usize..)
            .unwrap_or_default();
        let message = if boundary_occurs(body, boundary.as_bytes()) {
            format!(
                "broken MIME structure: the {kind} boundary {boundary:?} occurs but never \
                 starts a part"
            )
        } else {
            format!(
                "broken MIME structure: the {kind} boundary {boundary:?} declared in \
                 Content-Type never occurs in the body"
            )
        };
        return Err(Invalid::new("body", message));
    }
    Ok(())
}

/// Whether `--boundary` starts a line somewhere in `body`.
fn boundary_occurs(body: &[u8], boundary: &[u8]) -> bool {
    let mut delimiter = Vec::with_capacity(boundary.len() + 2);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary);
    body.windows(delimiter.len())
        .enumerate()
        .any(|(i, w)| w == delimiter.as_slice() && (i == 0 || body[i - 1] == b'\n'))
}

/// The complainant: (address, display name, Reply-To address when it
/// differs and is worth keeping).
fn sender(msg: &Message<'_>) -> Result<(String, Option<String>, Option<String>), Invalid> {
    let from = msg.from().and_then(usable_address);
    let reply_to = msg.reply_to().and_then(usable_address);
    let Some((email, name)) = from.clone().or_else(|| reply_to.clone()) else {
        let raw = msg
            .from()
            .and_then(Address::first)
            .and_then(|a| a.address.as_deref())
            .filter(|a| !a.trim().is_empty());
        return Err(match raw {
            Some(raw) => Invalid::new(
                "from",
                format!("the sender address {raw:?} is not an email address"),
            ),
            None => Invalid::new("from", "the message has no sender address (From)"),
        });
    };
    let other = reply_to
        .map(|(addr, _)| addr)
        .filter(|addr| from.is_some() && *addr != email);
    Ok((email, name, other))
}

/// The first address of a header that is a valid email address, lower-cased,
/// with its display name.
fn usable_address(address: &Address<'_>) -> Option<(String, Option<String>)> {
    let addr: &Addr<'_> = address.iter().find(|a| {
        a.address
            .as_deref()
            .is_some_and(|s| s.parse::<tousu_domain::Email>().is_ok())
    })?;
    let email = addr
        .address
        .as_deref()?
        .parse::<tousu_domain::Email>()
        .ok()?
        .as_str()
        .to_owned();
    let name = addr
        .name
        .as_deref()
        .map(|n| {
            text::clean(n)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .trim_matches(['"', '\''])
                .trim()
                .to_owned()
        })
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(&email));
    Some((email, name))
}

/// The decoded subject, one line. A subject written in raw 8-bit bytes
/// (old Chinese clients send GBK unencoded) is decoded with the message's
/// charset, GB18030 when none is declared.
fn subject(mail: &Mail<'_, '_>) -> Option<String> {
    let msg = mail.msg;
    let parsed = msg.subject()?;
    let raw = msg.parts.first().and_then(|root| {
        let h = root
            .headers
            .iter()
            .find(|h| h.name == HeaderName::Subject)?;
        mail.raw.get(h.offset_start as usize..h.offset_end as usize)
    });
    let decoded = match raw {
        Some(raw) if std::str::from_utf8(raw).is_err() && !contains(raw, b"=?") => {
            let charset = msg
                .parts
                .iter()
                .find_map(|p| p.content_type().and_then(|ct| ct.attribute("charset")))
                .unwrap_or("gb18030");
            charset_decoder(charset.as_bytes())
                .or_else(|| charset_decoder(b"gb18030"))
                .map_or_else(|| parsed.to_owned(), |decode| decode(raw))
        }
        _ => parsed.to_owned(),
    };
    let one_line = text::clean(&decoded)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(one_line)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What the subject's leading prefixes said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    None,
    Reply,
    Forward,
}

/// Strips `Re:`/`Fwd:`/`回复：`/`答复:`/`转发:` (and their variants) from
/// the front of a subject, repeatedly. Returns the rest and whether the
/// outermost prefix made it a reply or a forward.
fn strip_subject_prefixes(subject: &str) -> (String, Prefix) {
    const REPLY: &[&str] = &["re", "aw", "sv", "回复", "答复", "回覆", "答覆"];
    const FORWARD: &[&str] = &["fwd", "fw", "转发", "轉寄", "轉發"];
    let mut s = subject.trim();
    let mut kind = Prefix::None;
    'strip: loop {
        for (prefixes, k) in [(REPLY, Prefix::Reply), (FORWARD, Prefix::Forward)] {
            for p in prefixes {
                let Some(head) = s.get(..p.len()) else {
                    continue;
                };
                if !head.eq_ignore_ascii_case(p) {
                    continue;
                }
                let mut rest = &s[p.len()..];
                // "Re[2]:" / "Re(2):"
                if let Some(r) = rest.strip_prefix(['[', '(']) {
                    let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                    if digits > 0 && r[digits..].starts_with([']', ')']) {
                        rest = &r[digits + 1..];
                    }
                }
                let rest = rest.trim_start_matches(' ');
                if let Some(after) = rest.strip_prefix([':', '：']) {
                    if kind == Prefix::None {
                        kind = k;
                    }
                    s = after.trim_start();
                    continue 'strip;
                }
            }
        }
        break;
    }
    (s.to_owned(), kind)
}

/// `In-Reply-To` then `References` ids, without brackets or repeats, not
/// the message's own id; at most [`MAX_REPLY_IDS`], the newest kept.
fn reply_ids(msg: &Message<'_>, own: Option<&str>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut push = |id: &str| {
        let id = id.trim().trim_matches(['<', '>']).trim();
        if !id.is_empty()
            && !id.chars().any(|c| c.is_control() || c.is_whitespace())
            && Some(id) != own
            && !ids.iter().any(|known| known == id)
        {
            ids.push(id.to_owned());
        }
    };
    for value in [msg.in_reply_to(), msg.references()] {
        match value {
            HeaderValue::Text(id) => push(id),
            HeaderValue::TextList(list) => {
                // The newest references are last.
                let skip = list.len().saturating_sub(MAX_REPLY_IDS);
                for id in list.iter().skip(skip) {
                    push(id);
                }
            }
            _ => {}
        }
    }
    ids.truncate(MAX_REPLY_IDS);
    ids
}

/// The readable text of a message and, when it came from HTML, the HTML.
struct Body {
    /// Cleaned text (may be empty).
    text: String,
    /// The HTML the text was converted from.
    html: Option<String>,
}

/// `text/plain` body parts joined; the HTML body parts converted when
/// there is no plain text (HTML-only mail, or an empty plain alternative).
/// Attached messages are never body text.
fn body_text(mail: &Mail<'_, '_>) -> Body {
    let msg = mail.msg;
    let parts = |ids: &[u32], html: bool| -> Vec<String> {
        ids.iter()
            .filter_map(|&id| msg.parts.get(id as usize))
            .filter(|p| mail.nested(p).is_none())
            .filter_map(|p| match (&p.body, html) {
                (PartType::Text(t), false) | (PartType::Html(t), true) => {
                    Some(if mail.body_touched(p) {
                        decode_text(mail, p).unwrap_or_else(|| t.to_string())
                    } else {
                        t.to_string()
                    })
                }
                _ => None,
            })
            .collect()
    };
    let text = text::clean(&parts(&msg.text_body, false).join("\n\n"));
    if !text.is_empty() {
        return Body { text, html: None };
    }
    let html = parts(&msg.html_body, true);
    if html.is_empty() {
        return Body { text, html: None };
    }
    let converted: Vec<String> = html.iter().map(|h| text::html_to_text(h)).collect();
    Body {
        text: text::clean(&converted.join("\n\n")),
        html: Some(html.join("\n")),
    }
}

/// A text part decoded from the bytes as received (transfer encoding,
/// then charset), for parts whose bytes `prepare` touched.
fn decode_text(mail: &Mail<'_, '_>, part: &MessagePart<'_>) -> Option<String> {
    let bytes = transfer_decoded(mail, part)?;
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
    Some(match charset.and_then(|c| charset_decoder(c.as_bytes())) {
        Some(decode) => decode(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// The new text of a reply: everything before the quoted original (the
/// "On … wrote:" / "在 … 写道：" line, an "Original Message" separator, an
/// Outlook "From:/Sent:" block) without `>` lines. `None` when nothing was
/// quoted or nothing would remain (a reply that only quotes is kept whole).
fn strip_quoted(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    // next[i]: the next non-empty line after line i, trimmed.
    let mut next = vec![""; lines.len()];
    let mut following = "";
    for (i, line) in lines.iter().enumerate().rev() {
        next[i] = following;
        if !line.trim().is_empty() {
            following = line.trim();
        }
    }
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    for (line, next) in lines.iter().zip(&next) {
        if is_quote_header(line.trim(), next) {
            break;
        }
        if line.trim_start().starts_with('>') {
            continue;
        }
        kept.push(line);
    }
    let stripped = text::clean(&kept.join("\n"));
    (!stripped.is_empty() && stripped != text).then_some(stripped)
}

/// Whether `line` (trimmed) introduces the quoted original; `next` is the
/// next non-empty line, trimmed.
fn is_quote_header(line: &str, next: &str) -> bool {
    // Gmail / Apple Mail / Thunderbird: "On <date>, <name> wrote:", which
    // Gmail wraps before "wrote:" when long.
    if line.starts_with("On ") && (line.ends_with("wrote:") || next == "wrote:") {
        return true;
    }
    // 163 / 126 / Foxmail: "在 2026-12-10 09:00:00，"客服" <x@y> 写道："
    let zh_wrote = ["写道：", "写道:", "寫道：", "寫道:"];
    if line.starts_with('在')
        && zh_wrote.iter().any(|w| line.ends_with(w))
        && line.chars().any(|c| c.is_ascii_digit() || c == '@')
    {
        return true;
    }
    // "-----Original Message-----", "------------------ 原始邮件 ------------------"
    if line.starts_with("---") || line.starts_with("___") {
        let core: String = line
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' ' | '=' | '*' | '\u{a0}' | '\u{3000}'))
            .collect::<String>()
            .to_lowercase();
        if [
            "originalmessage",
            "原始邮件",
            "原始郵件",
            "邮件原件",
            "郵件原件",
            "原邮件",
        ]
        .contains(&core.as_str())
        {
            return true;
        }
        // Outlook's "________________________________" before "From:".
        if core.is_empty() && line.len() >= 20 && starts_header_block(next) {
            return true;
        }
    }
    // Outlook without a separator: "From: …" then "Sent: …".
    let header_pairs: [(&[&str], &[&str]); 3] = [
        (&["From:"], &["Sent:", "Date:"]),
        (&["发件人:", "发件人："], &["发送时间", "时间", "日期"]),
        (&["寄件者:", "寄件者："], &["寄件日期", "傳送時間", "日期"]),
    ];
    header_pairs.iter().any(|(first, second)| {
        first.iter().any(|p| line.starts_with(p)) && second.iter().any(|p| next.starts_with(p))
    })
}

/// Whether a line starts a quoted header block ("From:", "发件人:"…).
fn starts_header_block(line: &str) -> bool {
    ["From:", "发件人:", "发件人：", "寄件者:", "寄件者："]
        .iter()
        .any(|p| line.starts_with(p))
}

/// Evidence files: every part mail-parser did not take as body text
/// (binary files, inline images, text files) and every attached message,
/// in message order; empty parts are skipped. Also the (subject, text) of
/// the first [`MAX_ATTACHED_MESSAGES`] attached messages that have text.
fn attachments(mail: &Mail<'_, '_>) -> (Vec<Attachment>, Vec<(String, String)>) {
    let msg = mail.msg;
    let mut ids: Vec<usize> = msg.attachments.iter().map(|&id| id as usize).collect();
    ids.extend(
        msg.parts
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(mail.nested(p), Some(Nested::Message(_))))
            .map(|(id, _)| id),
    );
    ids.sort_unstable();
    ids.dedup();

    let mut out = Vec::new();
    let mut attached = Vec::new();
    let mut summarized = 0;
    for id in ids {
        let Some(part) = msg.parts.get(id) else {
            continue;
        };
        if let Some(Nested::Message(media_type)) = mail.nested(part) {
            let Some(data) = transfer_decoded(mail, part).filter(|d| !d.is_empty()) else {
                continue;
            };
            let summary = if summarized < MAX_ATTACHED_MESSAGES {
                summarized += 1;
                summarize(&data)
            } else {
                None
            };
            let filename = match part.attachment_name() {
                Some(name) => file_name(name),
                None => {
                    let s = summary
                        .as_ref()
                        .map(|(s, _)| file_name(s))
                        .unwrap_or_default();
                    format!("{}.eml", if s.is_empty() { "message" } else { &s })
                }
            };
            if let Some((subject, text)) = summary.filter(|(_, t)| !t.is_empty()) {
                attached.push((subject, text));
            }
            out.push(Attachment {
                filename,
                media_type: media_type.to_owned(),
                data,
            });
            continue;
        }
        let data = if mail.body_touched(part) {
            transfer_decoded(mail, part).unwrap_or_default()
        } else {
            match &part.body {
                PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
                PartType::Text(t) | PartType::Html(t) => {
                    transfer_decoded(mail, part).unwrap_or_else(|| t.as_bytes().to_vec())
                }
                PartType::Message(inner) => mail
                    .body_bytes(part)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_else(|| inner.raw_message.to_vec()),
                PartType::Multipart(_) => continue,
            }
        };
        if data.is_empty() {
            continue;
        }
        out.push(Attachment {
            filename: part.attachment_name().map(file_name).unwrap_or_default(),
            media_type: media_type(part),
            data,
        });
    }
    (out, attached)
}

/// The subject and text of an attached message, parsed on its own (with
/// its own attached messages left as they are: one level is enough to
/// read a forward).
fn summarize(data: &[u8]) -> Option<(String, String)> {
    let prepared = prepare(data);
    let msg = MessageParser::default().parse(prepared.bytes.as_ref())?;
    let mail = Mail {
        msg: &msg,
        raw: data,
        nested: &prepared.nested,
    };
    let subject = subject(&mail).unwrap_or_default();
    Some((subject, body_text(&mail).text))
}

/// A part's bytes as received (only the transfer encoding undone), so a
/// GBK `.txt` attachment stays the file the customer attached.
fn transfer_decoded(mail: &Mail<'_, '_>, part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let raw = mail.body_bytes(part)?;
    match part.encoding {
        Encoding::None => Some(raw.to_vec()),
        Encoding::Base64 => base64_decode(raw),
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
    }
}

/// The media type of a part, lower-case; `application/octet-stream` when
/// it is unusable; the MIME defaults when there is no Content-Type.
fn media_type(part: &MessagePart<'_>) -> String {
    let Some((ctype, subtype)) = mime_type(part) else {
        return match part.body {
            PartType::Message(_) => "message/rfc822".to_owned(),
            _ => "text/plain".to_owned(),
        };
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    if token(&ctype) && token(&subtype) {
        format!("{ctype}/{subtype}")
    } else {
        "application/octet-stream".to_owned()
    }
}

/// A file name as sent, minus any directory part and control characters.
fn file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    base.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// What the description says when the mail is only attachments and has
/// no subject either.
fn attachment_summary(attachments: &[Attachment]) -> String {
    let names: Vec<&str> = attachments
        .iter()
        .map(|a| {
            if a.filename.is_empty() {
                a.media_type.as_str()
            } else {
                a.filename.as_str()
            }
        })
        .collect();
    format!("附件: {}", names.join(", "))
}

/// A parsed Date header as RFC 3339, when it is a real date.
fn rfc3339(date: &mail_parser::DateTime) -> Option<String> {
    let month = time::Month::try_from(date.month).ok()?;
    let day = time::Date::from_calendar_date(i32::from(date.year), month, date.day).ok()?;
    let clock = time::Time::from_hms(date.hour, date.minute, date.second).ok()?;
    let sign: i8 = if date.tz_before_gmt { -1 } else { 1 };
    let hours = i8::try_from(date.tz_hour).ok()?;
    let minutes = i8::try_from(date.tz_minute).ok()?;
    let offset = time::UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?;
    time::PrimitiveDateTime::new(day, clock)
        .assume_offset(offset)
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(raw: &str) -> Inbound {
        match parse(raw.as_bytes()) {
            Ok(Email::Message(m)) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    const HEAD: &str = "From: a@example.com\r\nSubject: t\r\nMessage-ID: <m1@example.com>\r\n";

    #[test]
    fn subject_prefixes_are_stripped_repeatedly() {
        let cases = [
            ("Re: Fwd: 回复：投诉", "投诉", Prefix::Reply),
            (
                "RE：[TS20261122-000123] 快递",
                "[TS20261122-000123] 快递",
                Prefix::Reply,
            ),
            ("转发: 答复:  物业", "物业", Prefix::Forward),
            ("Fw: Re[2]: x", "x", Prefix::Forward),
            ("Re : 回覆：退款", "退款", Prefix::Reply),
            ("Reply needed: refund", "Reply needed: refund", Prefix::None),
            ("Regarding: x", "Regarding: x", Prefix::None),
            ("回复", "回复", Prefix::None),
            ("Re:", "", Prefix::Reply),
        ];
        for (subject, want, kind) in cases {
            assert_eq!(
                strip_subject_prefixes(subject),
                (want.to_owned(), kind),
                "{subject}"
            );
        }
    }

    #[test]
    fn quoted_original_is_cut_at_each_client_style() {
        let cases = [
            "新内容\n\nOn Mon, Nov 23, 2026 at 10:15 AM A <a@b.cn> wrote:\n> 旧",
            "新内容\nOn Mon, Nov 23, 2026 at 10:15 AM Someone Long <a@b.cn>\nwrote:\n\n> 旧",
            "新内容\n在 2026-12-10 09:00:00，\"客服\" <a@b.cn> 写道：\n>旧",
            "新内容\n-----Original Message-----\nFrom: x\n旧",
            "新内容\n------------------ 原始邮件 ------------------\n发件人: x\n旧",
            "新内容\n-----邮件原件-----\n旧",
            "新内容\n________________________________\n发件人: 客服\n旧",
            "新内容\n\nFrom: Support <s@b.cn>\nSent: Friday\n旧",
            "新内容\n> 旧\n> 旧2",
        ];
        for text in cases {
            assert_eq!(strip_quoted(text).as_deref(), Some("新内容"), "{text}");
        }
    }

    #[test]
    fn text_that_only_looks_like_a_quote_header_is_kept() {
        // No digits or address after 在: a person quoting what support wrote.
        assert_eq!(strip_quoted("在回复中客服写道：\n会处理的。"), None);
        assert_eq!(
            strip_quoted("On Monday I called twice.\nNobody answered."),
            None
        );
        // Only quoted text: nothing would remain, so nothing is stripped.
        assert_eq!(strip_quoted("> 只有引用"), None);
    }

    #[test]
    fn reply_ids_skip_own_id_repeats_and_garbage() {
        let raw = format!(
            "{HEAD}In-Reply-To: <r2@x>\r\nReferences: <r1@x> <r2@x> <m1@example.com>\r\n\r\nbody\r\n"
        );
        let m = message(&raw);
        assert_eq!(m.reply_to, ["email:r2@x", "email:r1@x"]);
        assert_eq!(m.thread_keys, ["email:m1@example.com"]);
    }

    #[test]
    fn long_reference_lists_keep_the_newest() {
        let refs: Vec<String> = (0..200).map(|i| format!("<r{i}@x>")).collect();
        let raw = format!("{HEAD}References: {}\r\n\r\nbody\r\n", refs.join("\r\n "));
        let m = message(&raw);
        assert_eq!(m.reply_to.len(), MAX_REPLY_IDS);
        assert_eq!(m.reply_to.last().map(String::as_str), Some("email:r199@x"));
        assert_eq!(m.reply_to.first().map(String::as_str), Some("email:r150@x"));
    }

    #[test]
    fn auto_submitted_no_is_a_person() {
        let m = message(&format!("{HEAD}Auto-Submitted: no\r\n\r\n我要投诉\r\n"));
        assert_eq!(m.fields.description.as_deref(), Some("我要投诉"));
        assert_eq!(
            parse(format!("{HEAD}Auto-Submitted: auto-generated\r\n\r\nx\r\n").as_bytes()),
            Ok(Email::Ignored(AUTO_GENERATED))
        );
        assert_eq!(
            parse(format!("{HEAD}Precedence: junk\r\n\r\nx\r\n").as_bytes()),
            Ok(Email::Ignored(BULK))
        );
        assert_eq!(
            parse(format!("{HEAD}Precedence: auto_reply\r\n\r\nx\r\n").as_bytes()),
            Ok(Email::Ignored(AUTO_REPLY))
        );
        assert_eq!(
            parse(format!("{HEAD}X-Auto-Response-Suppress: DR, RN, OOF\r\n\r\nx\r\n").as_bytes()),
            Ok(Email::Ignored(AUTO_REPLY))
        );
        // Suppressing only read receipts does not make it automatic.
        let m = message(&format!(
            "{HEAD}X-Auto-Response-Suppress: RN, NRN\r\n\r\n正文\r\n"
        ));
        assert_eq!(m.fields.description.as_deref(), Some("正文"));
    }

    #[test]
    fn an_empty_return_path_alone_is_not_a_bounce() {
        let m = message(&format!("Return-Path: <>\r\n{HEAD}\r\n网关转发的投诉\r\n"));
        assert_eq!(m.fields.description.as_deref(), Some("网关转发的投诉"));
    }

    #[test]
    fn an_unusable_from_falls_back_to_reply_to_or_fails() {
        let raw = "From: 张三 <not-an-address>\r\nReply-To: <ok@example.com>\r\nSubject: x\r\n\r\n正文\r\n";
        assert_eq!(message(raw).fields.email.as_deref(), Some("ok@example.com"));
        let raw = "From: <zhangsan@localhost>\r\nSubject: x\r\n\r\n正文\r\n";
        let err = parse(raw.as_bytes()).unwrap_err();
        assert_eq!(err.field, "from");
        assert!(err.message.contains("zhangsan@localhost"), "{err}");
    }

    #[test]
    fn a_multipart_without_boundary_is_broken() {
        let raw = format!("{HEAD}Content-Type: multipart/mixed\r\n\r\n正文\r\n");
        let err = parse(raw.as_bytes()).unwrap_err();
        assert_eq!(err.field, "body");
        assert!(err.message.contains("without a boundary"), "{err}");
    }

    #[test]
    fn a_broken_inner_boundary_is_found_too() {
        let raw = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n\
             Content-Type: multipart/alternative; boundary=inner\r\n\r\n--wrong\r\n\
             Content-Type: text/plain\r\n\r\n正文\r\n--outer--\r\n"
        );
        let err = parse(raw.as_bytes()).unwrap_err();
        assert_eq!(err.field, "body");
        assert!(err.message.contains("\"inner\""), "{err}");
    }

    #[test]
    fn boundary_must_start_a_line() {
        assert!(boundary_occurs(b"--abc\r\n", b"abc"));
        assert!(boundary_occurs(b"x\r\n--abc--", b"abc"));
        assert!(!boundary_occurs(b"x --abc", b"abc"));
        assert!(!boundary_occurs(b"", b"abc"));
    }

    #[test]
    fn dates_become_rfc3339_and_nonsense_dates_are_dropped() {
        let m = message(&format!(
            "{HEAD}Date: Wed, 2 Dec 2026 21:07:33 -0530\r\n\r\nx\r\n"
        ));
        assert_eq!(
            m.extra,
            [("date".to_owned(), "2026-12-02T21:07:33-05:30".to_owned())]
        );
        let m = message(&format!(
            "{HEAD}Date: Wed, 31 Feb 2026 25:07:33 +0800\r\n\r\nx\r\n"
        ));
        assert!(m.extra.is_empty(), "{:?}", m.extra);
        assert_eq!(m.fields.occurred_at, None);
    }

    #[test]
    fn text_attachments_keep_their_original_bytes() {
        let gbk_b64 = "0ruw49bQzsQ="; // "一般中文" in GBK
        let raw = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n见附件\r\n--b\r\n\
             Content-Type: text/plain; charset=gbk; name=\"记录.txt\"\r\n\
             Content-Disposition: attachment; filename=\"C:\\\\Users\\\\me\\\\记录.txt\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{gbk_b64}\r\n--b--\r\n"
        );
        let m = message(&raw);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].filename, "记录.txt");
        assert_eq!(m.attachments[0].media_type, "text/plain");
        assert_eq!(m.attachments[0].data, b"\xd2\xbb\xb0\xe3\xd6\xd0\xce\xc4");
    }

    #[test]
    fn a_forward_of_a_forward_is_one_attached_message_kept_byte_for_byte() {
        // message/rfc822 whose content is itself a bare message/rfc822:
        // the shape that trips mail-parser's nested-message state.
        let inner = "From: c@d.cn\r\nSubject: middle\r\nContent-Type: message/rfc822\r\n\r\n\
                     From: e@f.cn\r\nSubject: inner\r\n\r\ninner text";
        let raw = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\
             Content-Type: text/plain\r\n\r\nsee attached\r\n--o\r\n\
             Content-Type: message/rfc822\r\n\r\n{inner}\r\n--o--\r\n"
        );
        let m = message(&raw);
        assert_eq!(m.fields.description.as_deref(), Some("see attached"));
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].media_type, "message/rfc822");
        assert_eq!(m.attachments[0].filename, "middle.eml");
        assert_eq!(m.attachments[0].data, inner.as_bytes());
    }

    #[test]
    fn an_attached_message_is_read_whatever_its_transfer_encoding() {
        let inner = "From: c@d.cn\r\nSubject: =?UTF-8?B?6YCA5qy+?=\r\n\r\n商家拒绝退款。\r\n";
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, inner);
        let raw = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\
             Content-Type: Message/RFC822\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--o--\r\n"
        );
        let m = message(&raw);
        assert_eq!(
            m.fields.description.as_deref(),
            Some("---------- 附件邮件：退款 ----------\n商家拒绝退款。")
        );
        assert_eq!(m.attachments[0].filename, "退款.eml");
        assert_eq!(m.attachments[0].data, inner.as_bytes());
    }

    #[test]
    fn a_body_quoting_a_content_type_line_is_read_unchanged() {
        let raw = format!(
            "{HEAD}Content-Type: text/plain; charset=utf-8\r\n\r\n\
             网关报错，原文如下：\r\nContent-Type: message/rfc822\r\n请处理。\r\n"
        );
        let m = message(&raw);
        assert_eq!(
            m.fields.description.as_deref(),
            Some("网关报错，原文如下：\nContent-Type: message/rfc822\n请处理。")
        );
        assert!(m.attachments.is_empty());
    }

    #[test]
    fn a_digest_is_bulk() {
        let raw = format!(
            "{HEAD}Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n\
             From: x@y.cn\r\nSubject: 1\r\n\r\nlist post\r\n--d--\r\n"
        );
        assert_eq!(parse(raw.as_bytes()), Ok(Email::Ignored(BULK)));
    }

    #[test]
    fn nested_content_types_are_found_however_they_are_spelled() {
        let nested = |v: &str| nested_kind(v.as_bytes());
        assert_eq!(
            nested(" message/rfc822\r\n"),
            Some(Nested::Message("message/rfc822"))
        );
        assert_eq!(
            nested(" (fwd) \"Message\" / RFC822 ; name=a\r\n"),
            Some(Nested::Message("message/rfc822"))
        );
        assert_eq!(
            nested("\r\n message/\r\n\tglobal\r\n"),
            Some(Nested::Message("message/global"))
        );
        assert_eq!(nested(" (a\\(b)multipart/digest;"), Some(Nested::Digest));
        assert_eq!(nested(" text/plain; name=\"message/rfc822\"\r\n"), None);
        assert_eq!(nested(" message/delivery-status\r\n"), None);
        assert_eq!(nested(" text/plain\r\nX: message/rfc822\r\n"), None);
        let padded = format!(" {}message/rfc822", " ".repeat(300));
        assert_eq!(nested(&padded), Some(Nested::Message("message/rfc822")));

        let raw = b"Subject: x\r\n C o n t e n t - T y p E :message/rfc822\r\nX-Content-Type: text/plain\r\n";
        let found = nested_content_types(raw);
        assert_eq!(found.len(), 1);
        assert_eq!(raw[found[0].0], b'E');
        assert_eq!(prepare(raw).bytes[found[0].0], b'X');
        assert!(matches!(
            prepare(b"Content-Type: text/plain\r\n").bytes,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let inputs: [&[u8]; 9] = [
            b"",
            b"\n\n\n",
            b":",
            b"From:\r\n\r\n",
            b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
            b"From: a@b.cn\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d.cn\r\n\r\n",
            b"From: a@b.cn\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x--",
            b"\xff\xfe\x00\x01: \x80\x81\r\n\r\n\xc3",
            b"Subject: =?gbk?B?\xff?=\r\nFrom: =?utf-8?q?=ff?= <a@b.cn>\r\n\r\n",
        ];
        for raw in inputs {
            let _ = parse(raw);
        }
        let deep = "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n".repeat(200);
        let _ = parse(format!("From: a@b.cn\r\n{deep}").as_bytes());
    }
}
