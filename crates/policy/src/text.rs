//! Text normalization and segmentation for Chinese and English complaints.
//!
//! Complaints arrive in every form people type: full-width letters from a
//! Chinese input method (`ＡＰＰ闪退`), mixed Chinese and English
//! (`iPhone 屏幕坏了`), emoji, shouting in capitals. Everything that
//! compares texts (the classifier, near-duplicate detection) works on the
//! same two views of a text, built here:
//!
//! - [`normalize`]: full-width ASCII folded to half-width, letters
//!   lower-cased, and every run of punctuation, symbols and whitespace
//!   replaced by one space. Substring matching of Chinese terms runs on
//!   this, so a term never matches across a sentence boundary.
//! - [`tokens`]: the normalized text cut into words. Runs of Chinese
//!   characters are segmented with jieba (one dictionary per process, built
//!   on first use or by [`init`]); other letters and digits are split at
//!   anything that is not alphanumeric; stop words of either language are
//!   dropped. Negations (`不`, `没`, `not`, `no`, `never`) are not stop
//!   words: they carry the complaint.
//!
//! Segmentation uses jieba's dictionary path without the HMM for unknown
//! words ([`HMM`]). The HMM glues runs of characters missing from the
//! dictionary into guessed words, and guesses differently in different
//! contexts (`物業管理處收費` → `物業/管理/處收費`): two complaints about
//! the same thing then share fewer words, which is what near-duplicate
//! detection compares, while single characters are at least cut the same
//! way every time. The classifier's keywords match the normalized text, not
//! tokens; its naive Bayes model ([`crate::bayes`]) uses tokens alongside
//! character bigrams, which cover what an unknown word would have been.
//! The HMM also costs ~15 % more segmentation time.
//!
//! Cost, measured on a 146-character Chinese complaint (release build, one
//! core): [`normalize`] + [`for_each_token`] ≈ 3.8 µs (62 words, ~16 M
//! words/s), [`tokens`] ≈ 5.8 µs (one `String` per word); loading the
//! dictionary ≈ 0.1 s, once per process. [`Segmented`] keeps the words as
//! ranges of the normalized text, for a caller with several readers of
//! one text (routing: the classifier, its model and the fingerprint).

use std::sync::OnceLock;

use jieba_rs::Jieba;

/// Whether jieba's HMM guesses words missing from its dictionary. See the
/// module documentation for why it is off.
pub const HMM: bool = false;

static JIEBA: OnceLock<Jieba> = OnceLock::new();

fn jieba() -> &'static Jieba {
    JIEBA.get_or_init(Jieba::new)
}

/// Builds the segmentation dictionary now rather than on the first
/// complaint: loading it takes a noticeable fraction of a second, which a
/// service should pay at start-up, not on a request.
pub fn init() {
    jieba();
}

/// Whether `c` is a Chinese character (CJK unified ideographs, their
/// extensions and compatibility forms, and `〇`).
pub fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}'
        | '\u{3007}')
}

/// Folds full-width ASCII (`Ａ`, `１`, `！`) and the ideographic space to
/// their half-width forms, so both spellings of a word are one word.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// The text as the classifier and the similarity index compare it:
/// full-width folded to half-width, lower-case, and every run of
/// characters that are neither letters nor digits (punctuation, symbols,
/// emoji, whitespace) replaced by a single space, with none at either end.
///
/// ```
/// use tousu_policy::text::normalize;
/// assert_eq!(normalize("ＡＰＰ闪退！！Please fix…"), "app闪退 please fix");
/// ```
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// [`normalize`] into a caller's buffer (appending), so a caller that
/// normalizes many fields can reuse one allocation.
pub fn normalize_into(text: &str, out: &mut String) {
    // A separator is written lazily, only once the next kept character
    // arrives, so runs collapse and nothing trails.
    let mut pending_space = false;
    let start_len = out.len();
    for c in text.chars() {
        let c = fold_width(c);
        let keep = if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            is_han(c) || c.is_alphanumeric()
        };
        if !keep {
            pending_space = true;
            continue;
        }
        if pending_space && out.len() > start_len {
            out.push(' ');
        }
        pending_space = false;
        if c.is_ascii() || is_han(c) {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// The words of `text`: normalized, Chinese segmented, stop words dropped.
///
/// ```
/// use tousu_policy::text::tokens;
/// assert_eq!(tokens("我要投诉快递延误三天"), ["要", "投诉", "快递", "延误", "三天"]);
/// assert_eq!(tokens("The parcel was NOT delivered!"), ["parcel", "not", "delivered"]);
/// ```
pub fn tokens(text: &str) -> Vec<String> {
    let normalized = normalize(text);
    let mut out = Vec::with_capacity(normalized.len() / 4);
    for_each_token(&normalized, |word| out.push(word.to_owned()));
    out
}

/// A text normalized once, with its words: what the classifier's keywords,
/// its model and the similarity fingerprint all read, so that a complaint
/// is normalized and segmented (the costly part) once per decision, not
/// once per reader.
///
/// ```
/// use tousu_policy::text::{Segmented, tokens};
/// let s = Segmented::new("我要投诉：快递延误三天！");
/// assert_eq!(s.normalized(), "我要投诉 快递延误三天");
/// assert_eq!(s.words().collect::<Vec<_>>(), ["要", "投诉", "快递", "延误", "三天"]);
/// assert_eq!(s.words().collect::<Vec<_>>(), tokens("我要投诉：快递延误三天！"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segmented {
    normalized: String,
    /// Byte ranges of the words in `normalized`; `None` until segmented.
    words: Option<Vec<(usize, usize)>>,
}

impl Segmented {
    /// The text [`normalize`]d and cut into words ([`tokens`] without a
    /// `String` per word).
    pub fn new(text: &str) -> Self {
        let mut s = Self::normalized_only(text);
        s.segment();
        s
    }

    /// The text [`normalize`]d only; [`Segmented::segment`] cuts it later
    /// if some reader needs words (keyword matching does not).
    pub fn normalized_only(text: &str) -> Self {
        Self {
            normalized: normalize(text),
            words: None,
        }
    }

    /// Cuts the normalized text into words, unless already done.
    pub fn segment(&mut self) {
        if self.words.is_some() {
            return;
        }
        let normalized = self.normalized.as_str();
        let base = normalized.as_ptr() as usize;
        let mut words = Vec::with_capacity(normalized.len() / 4);
        for_each_token(normalized, |word| {
            // `word` is a slice of `normalized`: its offset is exact.
            let start = (word.as_ptr() as usize).wrapping_sub(base);
            words.push((start, start + word.len()));
        });
        self.words = Some(words);
    }

    /// Whether [`Segmented::words`] has the words (else it has none).
    pub fn is_segmented(&self) -> bool {
        self.words.is_some()
    }

    /// The [`normalize`]d text.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The words, as [`tokens`] gives them; none before
    /// [`Segmented::segment`].
    pub fn words(&self) -> impl Iterator<Item = &str> + Clone + '_ {
        self.words
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|&(start, end)| self.normalized.get(start..end))
    }
}

/// Calls `f` with each word of an already [`normalize`]d text, in order,
/// without allocating a `String` per word (for callers that only hash or
/// look words up). Text that was not normalized is still handled safely,
/// only with poorer results.
pub fn for_each_token<'a>(normalized: &'a str, mut f: impl FnMut(&'a str)) {
    // One jieba call for the whole text (it allocates its output once).
    // jieba cuts Chinese by its dictionary but hands back other scripts
    // in pieces (`café` as `caf` `é`), so consecutive non-Chinese pieces
    // are rejoined here into the word they came from.
    let mut latin: Option<(usize, usize)> = None;
    let flush = |latin: &mut Option<(usize, usize)>, f: &mut dyn FnMut(&'a str)| {
        if let Some((start, end)) = latin.take()
            && let Some(word) = normalized.get(start..end)
            && !is_stop_word(word)
        {
            f(word);
        }
    };
    for token in jieba().cut(normalized, HMM) {
        let word = token.word;
        if word.chars().any(is_han) {
            flush(&mut latin, &mut f);
            if !is_stop_word(word) {
                f(word);
            }
        } else if word.chars().all(char::is_alphanumeric) {
            latin = match latin {
                Some((start, end)) if end == token.byte_start => Some((start, token.byte_end)),
                _ => {
                    flush(&mut latin, &mut f);
                    Some((token.byte_start, token.byte_end))
                }
            };
        } else {
            flush(&mut latin, &mut f);
        }
    }
    flush(&mut latin, &mut f);
}

/// The words of an already [`normalize`]d text that are not Chinese (runs
/// of letters and digits), in order and all of them, stop words included:
/// the classifier matches English phrases on these literally (`hung up on
/// me`), and needs no dictionary to find them.
pub fn for_each_latin_word<'a>(normalized: &'a str, mut f: impl FnMut(&'a str)) {
    // `is_han` first: it is what a Chinese text's characters are, and
    // costs a comparison where `is_alphanumeric` looks up a table.
    for word in normalized.split(|c: char| is_han(c) || !c.is_alphanumeric()) {
        if !word.is_empty() {
            f(word);
        }
    }
}

/// Words too common to say anything about a complaint, in Chinese and
/// English. Negations are deliberately absent, and so are the English
/// particles of phrasal verbs (`hung up`, `broke down`, `cut off`).
pub fn is_stop_word(word: &str) -> bool {
    static SET: OnceLock<ShortWords> = OnceLock::new();
    SET.get_or_init(|| ShortWords::new(STOP_WORDS))
        .contains(word)
}

/// The stop words of [`is_stop_word`].
const STOP_WORDS: &[&str] = &[
    // Chinese: particles, pronouns, conjunctions, prepositions.
    "的", "了", "是", "我", "你", "您", "他", "她", "它", "在", "和", "也", "就", "都", "而", "及",
    "与", "着", "或", "之", "其", "把", "被", "给", "让", "从", "对", "向", "于", "以", "吗", "呢",
    "吧", "啊", "呀", "哦", "嗯", "么", "个", "这", "那", "得", "地", "过", "很", "一个", "没有",
    "我们", "你们", "他们", "她们", "它们", "咱们", "这个", "那个", "这些", "那些", "这样", "那样",
    "自己", "什么", "一下", "一些", "还是", "但是", "而且", "因为", "所以", "如果", "然后", "已经",
    "就是", "以及", "或者", "并且", "之后", "时候",
    // English: articles, pronouns, auxiliaries, prepositions, and
    // the pieces contractions leave (`it's` → `it` `s`).
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "for", "is", "are", "was", "were",
    "be", "been", "being", "am", "it", "its", "this", "that", "these", "those", "with", "at", "by",
    "from", "as", "i", "me", "my", "mine", "we", "us", "our", "you", "your", "he", "him", "his",
    "she", "her", "they", "them", "their", "do", "does", "did", "have", "has", "had", "will",
    "would", "shall", "should", "can", "could", "may", "might", "must", "just", "so", "than",
    "then", "there", "here", "what", "which", "who", "whom", "when", "where", "why", "how", "all",
    "any", "both", "each", "some", "such", "very", "too", "also", "about", "into", "if", "because",
    "while", "until", "s", "t", "d", "ll", "re", "ve", "m",
];

/// A set of words looked up without comparing strings: a word of at most
/// 7 bytes (every stop word) is packed with its length into a `u64` (never
/// 0), and the set is an open-addressing hash table of those, at most a
/// quarter full. Checking each of a complaint's words against a list of
/// ~150 string literals took a string comparison per literal of the same
/// length.
#[derive(Debug)]
pub(crate) struct ShortWords {
    /// Packed words, 0 in an empty slot; a power of two of slots.
    table: Vec<u64>,
    shift: u32,
    /// Words too long (or too short) to pack: none of the stop words.
    long: Vec<&'static str>,
}

impl ShortWords {
    pub(crate) fn new(words: &[&'static str]) -> Self {
        let size = (words.len() * 4).next_power_of_two().max(16);
        let mut set = Self {
            table: vec![0; size],
            shift: 64 - size.trailing_zeros(),
            long: Vec::new(),
        };
        for w in words {
            match pack(w.as_bytes(), false) {
                Some(key) => {
                    let mask = set.table.len() - 1;
                    let mut i = set.home(key);
                    while set.table[i] != 0 && set.table[i] != key {
                        i = (i + 1) & mask;
                    }
                    set.table[i] = key;
                }
                None => set.long.push(*w),
            }
        }
        set
    }

    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    fn has(&self, key: u64) -> bool {
        let mask = self.table.len() - 1;
        let mut i = self.home(key);
        // At most a quarter full: an empty slot ends every probe sequence.
        loop {
            match self.table.get(i) {
                Some(&k) if k == key => return true,
                Some(&0) | None => return false,
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// Whether `word` is in the set.
    pub(crate) fn contains(&self, word: &str) -> bool {
        match pack(word.as_bytes(), false) {
            Some(key) => self.has(key),
            None => self.long.contains(&word),
        }
    }

    /// Whether `word` with its ASCII letters lower-cased is in the set.
    pub(crate) fn contains_ascii_lowercase(&self, word: &str) -> bool {
        match pack(word.as_bytes(), true) {
            Some(key) => self.has(key),
            None => self.long.iter().any(|w| {
                w.eq_ignore_ascii_case(word) && !w.bytes().any(|b| b.is_ascii_uppercase())
            }),
        }
    }
}

/// A word of 1 to 7 bytes as one number (never 0): its length in the top
/// byte, its bytes (ASCII-lower-cased if `lower`) below.
fn pack(bytes: &[u8], lower: bool) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 7 {
        return None;
    }
    let mut key = (bytes.len() as u64) << 56;
    for (i, &b) in bytes.iter().enumerate() {
        let b = if lower { b.to_ascii_lowercase() } else { b };
        key |= u64::from(b) << (8 * i);
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_letters_digits_and_punctuation_fold() {
        assert_eq!(normalize("ＷｉＦｉ断了１２小时！"), "wifi断了12小时");
        assert_eq!(
            normalize("订单号：ＡＢ１２３　已付款"),
            "订单号 ab123 已付款"
        );
    }

    #[test]
    fn separators_collapse_and_never_trail() {
        assert_eq!(normalize("  ——快递？？没到!!  "), "快递 没到");
        assert_eq!(normalize("😡😡😡"), "");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn non_ascii_letters_lower_case() {
        assert_eq!(normalize("CAFÉ Ünïcode"), "café ünïcode");
    }

    #[test]
    fn normalize_into_appends_with_a_separator_only_between_words() {
        let mut buffer = String::from("前缀");
        normalize_into("，后面", &mut buffer);
        // The leading comma of the new text is not carried over: the
        // caller decides how fields are joined.
        assert_eq!(buffer, "前缀后面");
    }

    #[test]
    fn mixed_runs_split_between_scripts() {
        assert_eq!(tokens("iPhone14屏幕坏了"), ["iphone14", "屏幕", "坏"]);
    }

    #[test]
    fn non_ascii_latin_words_stay_whole() {
        // jieba hands `é` back on its own; the word is rejoined.
        let words = tokens("Café很难喝");
        assert_eq!(words.first().map(String::as_str), Some("café"));
        assert!(!words.iter().any(|w| w == "caf" || w == "é"), "{words:?}");
    }

    #[test]
    fn latin_words_skip_chinese_but_keep_every_english_word() {
        let normalized = normalize("The APP闪退 of my phone");
        let mut words = Vec::new();
        for_each_latin_word(&normalized, |w| words.push(w));
        assert_eq!(words, ["the", "app", "of", "my", "phone"]);
    }

    #[test]
    fn negations_are_kept() {
        assert!(!is_stop_word("不"));
        assert!(!is_stop_word("没"));
        assert!(!is_stop_word("not"));
        assert!(!is_stop_word("never"));
        assert!(!is_stop_word("up"));
    }

    const TEXTS: &[&str] = &[
        "我要投诉快递延误三天，客服电话一直打不通！",
        "The parcel was NOT delivered; the courier hung up on me.",
        "iPhone14屏幕坏了，Apple Store说要等两周",
        "Café很难喝，ＡＰＰ闪退😡😡",
        "物業管理處收費不合理",
        "",
        "！！！",
    ];

    #[test]
    fn segmented_words_are_the_tokens() {
        for text in TEXTS {
            let s = Segmented::new(text);
            assert_eq!(s.normalized(), normalize(text));
            assert!(s.is_segmented());
            assert_eq!(s.words().collect::<Vec<_>>(), tokens(text), "{text}");
            // Normalized first and segmented later: the same words.
            let mut later = Segmented::normalized_only(text);
            assert!(!later.is_segmented());
            assert_eq!(later.words().count(), 0);
            later.segment();
            assert_eq!(later, s);
        }
    }

    #[test]
    fn words_of_two_fields_are_the_words_of_both_joined_by_a_space() {
        // What routing relies on to fingerprint "title description"
        // from the title's and the description's own words.
        for title in TEXTS {
            for text in TEXTS {
                let joined = format!("{title} {text}");
                let (a, b) = (Segmented::new(title), Segmented::new(text));
                let words: Vec<&str> = a.words().chain(b.words()).collect();
                assert_eq!(words, tokens(&joined), "{joined}");
            }
        }
    }

    #[test]
    fn short_word_sets_find_exactly_their_words() {
        let set = ShortWords::new(STOP_WORDS);
        for w in STOP_WORDS {
            assert!(set.contains(w), "{w}");
            assert!(is_stop_word(w));
        }
        for w in [
            "them",
            "th",
            "我们的",
            "投诉",
            "快递",
            "",
            "abcdefgh",
            "becausee",
            "不",
        ] {
            assert_eq!(set.contains(w), STOP_WORDS.contains(&w), "{w}");
        }
        // Case: exact for `contains`, ASCII-insensitive for the other.
        assert!(!set.contains("The"));
        assert!(set.contains_ascii_lowercase("The"));
        assert!(set.contains_ascii_lowercase("BECAUSE"));
        assert!(!set.contains_ascii_lowercase("Ünd"));
        assert!(!set.contains_ascii_lowercase(""));
        // Words too long to pack are still looked up.
        let long = ShortWords::new(&["complaint", "a"]);
        assert!(long.contains("complaint"));
        assert!(long.contains_ascii_lowercase("COMPLAINT"));
        assert!(!long.contains("complaints"));
        assert!(long.contains("a"));
        assert!(!long.contains("b"));
    }
}
