//! Text cleaning: HTML to readable text, whitespace normalization.
//!
//! Complaint descriptions come from mail bodies, forum posts and chat
//! messages that carry markup and whitespace artefacts (CRLF, NBSP from
//! `&nbsp;`, zero-width spaces pasted from web pages, runs of blank lines).
//! Handlers read the text and the classifier scores it, so both want one
//! normal form. Everything here is total: any input, however malformed,
//! gives a string and never a panic.

/// Readable plain text from an HTML document or fragment.
///
/// A small tolerant scanner rather than a DOM parser: mail HTML (Outlook,
/// QQ Mail, Gmail) is routinely malformed, and all a handler needs is the
/// words in reading order. Tags are dropped, `<script>`/`<style>`/`<head>`
/// (and `<title>`, `<template>`) contents are skipped, entities are
/// decoded, block elements (p, div, br, li, tr, headings, tables, lists,
/// blockquote…) become line breaks, list items get a `- ` prefix, table
/// cells are separated by a space, and a link keeps its text followed by
/// ` (URL)` when the URL says something the text does not. Whitespace
/// inside text collapses as a browser would, except inside `<pre>`. The
/// result is passed through [`clean`].
pub fn html_to_text(html: &str) -> String {
    let mut w = HtmlWriter::default();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        w.text(&rest[..lt]);
        rest = &rest[lt..];
        rest = w.markup(rest);
    }
    w.text(rest);
    w.finish_link();
    clean(&w.out)
}

/// Whitespace normalized: CRLF and lone CR become LF; NBSP and the other
/// fixed-width spaces (U+2000–U+200A, U+202F, U+205F) become a plain space;
/// zero-width characters (U+200B, U+200C, U+2060, BOM, soft hyphen) and
/// control characters other than tab and LF are removed; trailing
/// whitespace is removed from every line; at most one blank line in a row;
/// the whole text trimmed.
///
/// The ideographic space U+3000 is kept inside a line (Chinese writers
/// indent paragraphs with two of them) but counts as whitespace for blank
/// lines, line ends and the trim. U+200D (zero-width joiner) is kept: it
/// glues emoji sequences together and removing it would change them.
pub fn clean(text: &str) -> String {
    let mut normalized = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                normalized.push('\n');
            }
            '\n' | '\t' => normalized.push(c),
            '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' => normalized.push(' '),
            '\u{200b}' | '\u{200c}' | '\u{2060}' | '\u{feff}' | '\u{ad}' => {}
            c if c.is_control() => {}
            c => normalized.push(c),
        }
    }

    let mut out = String::with_capacity(normalized.len());
    let mut blank_run = 0usize;
    for line in normalized.split('\n') {
        let line = line.trim_end_matches(is_space);
        if line.trim_start_matches(is_space).is_empty() {
            blank_run += 1;
            if blank_run == 1 && !out.is_empty() {
                out.push('\n');
            }
            continue;
        }
        blank_run = 0;
        out.push_str(line);
        out.push('\n');
    }
    out.trim_matches(is_space).to_owned()
}

/// Whitespace as far as blank lines and trimming are concerned.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{3000}'
}

/// Elements whose content is never shown.
const SKIPPED: &[&str] = &["script", "style", "head", "title", "template", "noscript"];

/// Elements that start and end a line.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "html",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "tr",
    "ul",
];

/// Elements separated from what follows by a blank line.
const PARAGRAPHS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "blockquote",
    "pre",
];

#[derive(Default)]
struct HtmlWriter {
    out: String,
    /// The last thing written was whitespace (or nothing on this line).
    pending_space: bool,
    /// `<pre>` nesting depth: whitespace is kept verbatim inside.
    pre: usize,
    /// The open `<a>`: where its text starts in `out`, and its href.
    link: Option<(usize, String)>,
    /// Inside a table cell: blocks there (Outlook puts a `<p>` in every
    /// cell) separate words, not lines, so that a row stays one line.
    cell: usize,
}

impl HtmlWriter {
    /// Writes a run of character data (entities decoded, whitespace collapsed).
    fn text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let decoded = decode_entities(raw);
        for c in decoded.chars() {
            if self.pre > 0 {
                self.out.push(c);
                self.pending_space = false;
            } else if matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}') {
                self.pending_space = true;
            } else {
                if self.pending_space && !self.out.is_empty() && !self.out.ends_with('\n') {
                    self.out.push(' ');
                }
                self.pending_space = false;
                self.out.push(c);
            }
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.pending_space = false;
    }

    fn blank_line(&mut self) {
        while !self.out.ends_with("\n\n") && !self.out.is_empty() {
            self.out.push('\n');
        }
        self.pending_space = false;
    }

    /// Handles the markup at the start of `s` (which begins with `<`) and
    /// returns what follows it.
    fn markup<'a>(&mut self, s: &'a str) -> &'a str {
        let after = &s[1..];
        if let Some(comment) = after.strip_prefix("!--") {
            return match comment.find("-->") {
                Some(end) => &comment[end + 3..],
                None => "",
            };
        }
        let first = after.chars().next();
        let is_tag = match first {
            Some(c) if c.is_ascii_alphabetic() || c == '!' || c == '?' => true,
            Some('/') => after[1..].starts_with(|c: char| c.is_ascii_alphabetic()),
            _ => false,
        };
        if !is_tag {
            // A lone `<` in text (e.g. "价格<100元").
            self.text("<");
            return after;
        }
        let Some(end) = tag_end(after) else {
            // Unterminated tag: drop the rest.
            return "";
        };
        let inner = &after[..end];
        let rest = &after[end + 1..];
        if inner.starts_with('!') || inner.starts_with('?') {
            return rest; // <!DOCTYPE>, <![if !supportLists]>, <?xml?>
        }
        let closing = inner.starts_with('/');
        let body = if closing { &inner[1..] } else { inner };
        let name_len = body
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .unwrap_or(body.len());
        let name = body[..name_len].to_ascii_lowercase();
        let attrs = &body[name_len..];

        if !closing && SKIPPED.contains(&name.as_str()) {
            return skip_element(rest, &name);
        }
        match (name.as_str(), closing) {
            ("td" | "th", false) => {
                self.cell += 1;
                self.pending_space = true;
            }
            ("td" | "th", true) => {
                self.cell = self.cell.saturating_sub(1);
                self.pending_space = true;
            }
            ("tr" | "table" | "tbody" | "thead" | "tfoot", _) => {
                self.cell = 0;
                if name == "table" {
                    self.blank_line();
                } else if !self.out.is_empty() && !self.out.ends_with('\n') {
                    self.newline();
                }
            }
            (n, _)
                if self.cell > 0
                    && (n == "br"
                        || n == "li"
                        || BLOCKS.contains(&n)
                        || PARAGRAPHS.contains(&n)) =>
            {
                self.pending_space = true;
            }
            ("br", _) => self.newline(),
            ("li", false) => {
                if !self.out.is_empty() && !self.out.ends_with('\n') {
                    self.newline();
                }
                self.out.push_str("- ");
                self.pending_space = false;
            }
            ("a", false) => {
                self.finish_link();
                let href = attribute(attrs, "href").unwrap_or_default();
                self.link = Some((self.out.len(), href));
            }
            ("a", true) => self.finish_link(),
            ("img", false) => {
                if let Some(alt) = attribute(attrs, "alt").filter(|a| !a.trim().is_empty()) {
                    self.text(&format!(" [{}] ", alt.trim()));
                }
            }
            ("pre", false) => {
                self.blank_line();
                self.pre += 1;
            }
            ("pre", true) => {
                self.pre = self.pre.saturating_sub(1);
                self.blank_line();
            }
            (n, _) if PARAGRAPHS.contains(&n) => self.blank_line(),
            (n, _) if BLOCKS.contains(&n) => {
                if !self.out.is_empty() && !self.out.ends_with('\n') {
                    self.newline();
                }
                self.pending_space = false;
            }
            _ => {}
        }
        rest
    }

    /// Closes the open link: appends ` (URL)` when the URL adds something.
    fn finish_link(&mut self) {
        let Some((start, href)) = self.link.take() else {
            return;
        };
        let href = href.trim();
        let shown = self.out.get(start..).unwrap_or_default().trim();
        let lower = href.to_ascii_lowercase();
        let useless = href.is_empty()
            || href.starts_with('#')
            || lower.starts_with("javascript:")
            || lower.starts_with("cid:");
        let same = shown == href
            || lower
                .strip_prefix("mailto:")
                .is_some_and(|addr| addr.eq_ignore_ascii_case(shown))
            || lower
                .strip_prefix("tel:")
                .is_some_and(|tel| tel == shown.to_ascii_lowercase());
        if !useless && !same {
            if shown.is_empty() {
                self.text(href);
            } else {
                self.out.push_str(" (");
                self.out.push_str(href);
                self.out.push(')');
                self.pending_space = false;
            }
        }
    }
}

/// The index of the `>` ending a tag whose text starts at `s` (after `<`),
/// ignoring `>` inside quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, b) in s.bytes().enumerate() {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Skips to after `</name>` (case-insensitive), or to the end. Linear in
/// the distance skipped (no lower-cased copy of the rest: a page of many
/// `<style>` blocks must not cost the square of its length).
fn skip_element<'a>(s: &'a str, name: &str) -> &'a str {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(pos) = s.get(from..).and_then(|r| r.find("</")) {
        let at = from + pos;
        let after = at + 2 + name.len();
        let named = bytes
            .get(at + 2..after)
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        // `</styles>` does not close `<style>`.
        let ends = matches!(
            bytes.get(after),
            None | Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/')
        );
        if named && ends {
            return match s.get(after..).and_then(|r| r.find('>')) {
                Some(gt) => s.get(after + gt + 1..).unwrap_or_default(),
                None => "",
            };
        }
        from = at + 2;
    }
    ""
}

/// The value of attribute `name` in a tag's attribute text (entities decoded).
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let bytes = attrs.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"=/>".contains(&bytes[i]) {
            i += 1;
        }
        let key = attrs.get(start..i)?;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let q = bytes[i];
                let vstart = i + 1;
                let vend = bytes[vstart..]
                    .iter()
                    .position(|&b| b == q)
                    .map_or(bytes.len(), |p| vstart + p);
                value = attrs.get(vstart..vend)?;
                i = (vend + 1).min(bytes.len());
            } else {
                let vstart = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = attrs.get(vstart..i)?;
            }
        } else if i == start {
            i += 1; // a stray character: step over it
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(decode_entities(value));
        }
    }
    None
}

/// Decodes character references: the common named ones and numeric
/// `&#NNN;` / `&#xHH;`. Unknown names are left as written; numeric
/// references to nothing (0, surrogates, beyond U+10FFFF) become U+FFFD.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match entity(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character of the entity at the start of `s` (which starts with `&`)
/// and the entity's length in bytes.
fn entity(s: &str) -> Option<(char, usize)> {
    let body = &s[1..];
    let end = body
        .bytes()
        .take(12)
        .position(|b| b == b';')
        .filter(|&p| p > 0);
    if let Some(num) = body.strip_prefix('#') {
        let (digits, radix, skip) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (num, 10, 1),
        };
        let len = digits.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
        let len = if radix == 10 {
            digits.bytes().take_while(u8::is_ascii_digit).count()
        } else {
            len
        };
        if len == 0 {
            return None;
        }
        let value = u32::from_str_radix(&digits[..len.min(8)], radix).unwrap_or(u32::MAX);
        let value = if len > 8 { u32::MAX } else { value };
        let c = match value {
            0 => '\u{fffd}',
            // Windows-1252 smart quotes and dashes written as numbers.
            0x80..=0x9f => cp1252(value).unwrap_or('\u{fffd}'),
            v => char::from_u32(v).unwrap_or('\u{fffd}'),
        };
        let semicolon = usize::from(digits.as_bytes().get(len) == Some(&b';'));
        return Some((c, 1 + skip + len + semicolon));
    }
    let end = end?;
    let name = &body[..end];
    let c = match name {
        "nbsp" => '\u{a0}',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "bull" => '•',
        "yen" => '¥',
        "euro" => '€',
        "pound" => '£',
        "cent" => '¢',
        "times" => '×',
        "divide" => '÷',
        "deg" => '°',
        "plusmn" => '±',
        "sect" => '§',
        "para" => '¶',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "thinsp" => '\u{2009}',
        "zwsp" => '\u{200b}',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        "shy" => '\u{ad}',
        "larr" => '←',
        "rarr" => '→',
        "uarr" => '↑',
        "darr" => '↓',
        "hearts" => '♥',
        "check" => '✓',
        _ => return None,
    };
    Some((c, end + 2))
}

/// Windows-1252 characters at 0x80–0x9F, which HTML maps numeric
/// references in that range to.
fn cp1252(v: u32) -> Option<char> {
    Some(match v {
        0x80 => '€',
        0x82 => '‚',
        0x84 => '„',
        0x85 => '…',
        0x8a => 'Š',
        0x8c => 'Œ',
        0x91 => '‘',
        0x92 => '’',
        0x93 => '“',
        0x94 => '”',
        0x95 => '•',
        0x96 => '–',
        0x97 => '—',
        0x99 => '™',
        0x9c => 'œ',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_normalizes_line_ends_blank_lines_and_trailing_space() {
        let raw = "\u{feff}  您好：  \r\n\r\n\r\n\r\n我要投诉\u{200b}快递。\t\r\n第二行\r第三行 \u{3000}\n\n\n";
        assert_eq!(clean(raw), "您好：\n\n我要投诉快递。\n第二行\n第三行");
    }

    #[test]
    fn clean_turns_nbsp_into_space_and_keeps_cjk_indentation_inside() {
        assert_eq!(clean("a\u{a0}b\u{2003}c"), "a b c");
        assert_eq!(
            clean("第一段\n\u{3000}\u{3000}第二段缩进"),
            "第一段\n\u{3000}\u{3000}第二段缩进"
        );
        // A line of only ideographic spaces is blank.
        assert_eq!(clean("甲\n\u{3000}\u{3000}\n\n乙"), "甲\n\n乙");
    }

    #[test]
    fn clean_removes_control_characters_but_keeps_emoji_joiners() {
        assert_eq!(clean("a\u{0}b\u{7}c\u{1b}d"), "abcd");
        let family = "👨\u{200d}👩\u{200d}👧";
        assert_eq!(clean(family), family);
        assert_eq!(clean(" \n\t \r\n"), "");
    }

    #[test]
    fn html_blocks_become_lines_and_inline_whitespace_collapses() {
        let html = "<div>您好，</div><p>我于   11月20日\n下单，</p><p>至今未发货。<br>请处理</p>";
        assert_eq!(
            html_to_text(html),
            "您好，\n\n我于 11月20日 下单，\n\n至今未发货。\n请处理"
        );
    }

    #[test]
    fn html_drops_script_style_head_and_comments() {
        let html = "<html><head><title>t</title><style>p{color:red}</style></head>\
                    <body><!--[if gte mso 9]><xml>x</xml><![endif]--><script type=\"x\">var a = '</p>';</script>\
                    <p>正文</p><SCRIPT>evil()</SCRIPT ></body></html>";
        assert_eq!(html_to_text(html), "正文");
    }

    #[test]
    fn html_entities_are_decoded() {
        let html = "a&nbsp;b &amp; &lt;c&gt; &quot;d&quot; &#39;e&#39; &#20013;&#x6587; &#x1F600; &bogus; & x &#0; &#150;";
        assert_eq!(
            html_to_text(html),
            "a b & <c> \"d\" 'e' 中文 😀 &bogus; & x \u{fffd} –"
        );
        assert_eq!(
            decode_entities("&#99999999999;&#xD800;"),
            "\u{fffd}\u{fffd}"
        );
    }

    #[test]
    fn html_lists_tables_and_links() {
        let html = "<ul><li>第一条</li><li>第二条</li></ul>\
                    <table><tr><td><p>订单号</p></td><td><p>金额</p></td></tr>\
                    <tr><td>A1</td><td>99元<br>已付</td></tr></table>\
                    <a href=\"https://shop.example.com/o/1\">订单详情</a> \
                    <a href=\"https://x.example.com\">https://x.example.com</a> \
                    <a href=\"mailto:a@b.cn\">a@b.cn</a> <a href=\"#top\">顶部</a>";
        assert_eq!(
            html_to_text(html),
            "- 第一条\n- 第二条\n\n订单号 金额\nA1 99元 已付\n\n订单详情 (https://shop.example.com/o/1) https://x.example.com a@b.cn 顶部"
        );
    }

    #[test]
    fn html_pre_keeps_whitespace() {
        assert_eq!(
            html_to_text("<p>日志：</p><pre>line 1\n  line  2</pre>"),
            "日志：\n\nline 1\n  line  2"
        );
    }

    #[test]
    fn malformed_html_does_not_panic_and_keeps_the_text() {
        assert_eq!(html_to_text("价格<100元，且 a < b"), "价格<100元，且 a < b");
        assert_eq!(html_to_text("<p>未闭合 <b>加粗"), "未闭合 加粗");
        assert_eq!(html_to_text("文本<a href=\"x"), "文本");
        assert_eq!(html_to_text("<!-- 未闭合注释"), "");
        assert_eq!(html_to_text("<style>无结束"), "");
        assert_eq!(html_to_text("</"), "</");
        assert_eq!(html_to_text("&#x;&#;&"), "&#x;&#;&");
        assert_eq!(html_to_text("<a>无链接</a>"), "无链接");
        for s in [
            "<",
            "<<<>>>",
            "<a href='>'>x</a>",
            "<td",
            "&#xFFFFFFFFFF;",
            "<\u{3000}>",
            "<é>",
        ] {
            let _ = html_to_text(s);
        }
    }

    #[test]
    fn many_skipped_elements_cost_linear_time() {
        // Quadratic skipping would take minutes here.
        let html = "<style>p{}</style>x".repeat(50_000) + "</STYLE >";
        assert_eq!(html_to_text(&html), "x".repeat(50_000));
        assert_eq!(html_to_text("<script>a</scripts>b</script >c"), "c");
    }

    #[test]
    fn img_alt_text_is_kept() {
        assert_eq!(
            html_to_text("<p>见图<img src=\"cid:1\" alt=\"破损照片\"></p>"),
            "见图 [破损照片]"
        );
    }
}
