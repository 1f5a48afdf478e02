//! Near-duplicate complaints and complaints of the same person.
//!
//! Grading needs two facts about a new complaint: how many *different
//! people* raised the same issue within 30 days (three or more make it hot,
//! ten or more a group incident) and whether the same person complained
//! about the same issue before (a repeat). Operators also want related
//! cases "listed on each other". This module answers those from an
//! in-memory [`Index`] of recent complaints.
//!
//! # Fingerprints: SimHash over token unigrams and bigrams
//!
//! [`fingerprint`] is a 64-bit SimHash of the segmented text. SimHash rather
//! than MinHash because a complaint carries *one `u64`*: it is stored on the
//! complaint, compared with one XOR + popcount, and indexed by bit blocks
//! (below). MinHash needs ~64–128 minimum hashes per text (256–512 bytes)
//! and banded LSH tables to search; with 64 bits of b-bit MinHash instead,
//! the estimate is about as noisy as SimHash's. SimHash also takes term
//! weights for free. Chinese complaints are short (20–60 tokens), so every
//! token matters: stop words (的 了 我 the a …) and punctuation are skipped
//! so that the shared function words of two unrelated complaints don't pull
//! them together, and bigrams are added so that word order counts a little.
//!
//! ## Measured distances, and the thresholds chosen from them
//!
//! Measured with [`crate::text::tokens`] on hand-written complaints (16
//! groups of "the same issue from different people", 14 re-sends by the
//! same person with small rewording, 1 125 unrelated pairs), on single edits
//! of 63 of them, and on 3 000 template-generated complaints (4.4 M pairs;
//! a pessimistic model of boilerplate-heavy traffic, since templates share
//! whole clauses):
//!
//! | pairs | median | p10–p90 | min | ≤ 8 | ≤ 16 |
//! |---|---|---|---|---|---|
//! | punctuation changed | 0 | 0–0 | 0 | 63/63 | 63/63 |
//! | greeting prefixed (您好，) | 5 | 3–8 | 1 | 59/63 | 63/63 |
//! | one token deleted | 8 | 3–12 | 0 | 41/63 | 62/63 |
//! | one token replaced | 9 | 5–14 | 0 | 24/63 | 62/63 |
//! | a request appended (请尽快处理，谢谢) | 9 | 4–13 | 2 | 30/63 | 63/63 |
//! | two tokens replaced | 14 | 9–19 | 7 | 4/63 | 43/63 |
//! | re-sent, reworded by the same person | 15 | 10–18 | 5 | 1/14 | 11/14 |
//! | same issue, different people and words | 30 | 24–36 | 18 | 0/51 | 0/51 |
//! | unrelated, same category | 31 | 27–35 | 21 | 0/126 | 0/126 |
//! | unrelated | 32 | 26–37 | 20 | 0/1125 | 0/1125 |
//!
//! Template pairs about *different* problems within distance d: d ≤ 6:
//! 1.6e-6, ≤ 8: 6.2e-6, ≤ 10: 3.0e-5, ≤ 12: 1.4e-4, ≤ 16: 1.6e-3; of the
//! same category: ≤ 8: 4.3e-5, ≤ 10: 2.0e-4, ≤ 16: 6.3e-3.
//!
//! Two conclusions. (1) On texts this short one edited word moves ~8 of 64
//! bits, so the classic web-page threshold of 3 finds only copies. (2)
//! SimHash cannot see that two people describe the same broken elevator in
//! their own words: those pairs are as far apart as unrelated complaints.
//! Hence three rules rather than one threshold:
//!
//! - **across people**, text near-duplicates are within
//!   [`DEFAULT_MAX_DISTANCE`] = 8 of each other, in a compatible category:
//!   copy-pasted group letters, forwards, light edits. Against 10 000
//!   complaints of one category in the window, the pessimistic template
//!   model predicts ~0.4 false matches per lookup at 8 and ~2 at 10; since
//!   three people make a complaint hot, 8 it is;
//! - **across people**, the *same issue in other words* is the same category
//!   at the same product or place ([`Config::context`]): three owners of
//!   building 3 complaining about its facilities within 30 days;
//! - **for the same person** (a handful of candidates, so a loose check is
//!   cheap and safe), the same issue is within
//!   [`DEFAULT_REPEAT_MAX_DISTANCE`] = 16 (11 of the 14 re-sends, nearly all
//!   light edits) or the same category at the same product or place.
//!
//! A product or place given on both sides and different vetoes a match:
//! "3号楼电梯坏了" and "5号楼电梯坏了" are two issues. Product and place are
//! compared exactly: the caller passes normalized values (a catalogue id, a
//! building code), not free text.
//!
//! # Lookup: block tables with radius probing
//!
//! The 64 bits are split into `m` blocks (5 by default: 13+13+13+13+12
//! bits), each with a table from block value to entries. If two
//! fingerprints are within distance `d`, some block differs in at most
//! `r = ⌊d/m⌋` bits (else the total would be ≥ m(r+1) > d). A lookup probes,
//! in each block, every value within `r` bits of the query's and verifies
//! the full distance. For d < m this is the classic pigeonhole (k = d + 1
//! blocks, one exact probe each); for the distances short texts need it is
//! not (d = 8 would need 9 tables of 7 bits, each probe scanning 1/128 of
//! the index), while radius 1 in 5 tables probes 70 buckets of ~1/8192 of
//! it. The result is exact: everything a brute-force scan finds. When the
//! probes would cost more than a scan (d ≥ 15 with 5 blocks), the lookup
//! scans a flat array of fingerprints instead.
//!
//! A match within `r` bits in several blocks is reported once, from the
//! first of them (checked on the XOR of the two fingerprints, no set of
//! seen entries). Of a hot topic's hundreds of matches only the newest
//! [`Config::max_matches`] are needed: only as many as can still be taken
//! are put in time order ([`slice::select_nth_unstable_by`]), not all of
//! them. Buckets keep each entry's receipt time beside its fingerprint,
//! the per-person and per-context lists keep times (and a context list the
//! other context field) beside their slots, and a compact per-slot record
//! holds what a candidate is checked on, so a lookup mostly reads memory
//! laid out for it instead of the stored entries.
//!
//! # Time windows
//!
//! Windows are inclusive: an entry exactly `window` before (or after) the
//! query time is inside. [`Index::evict_before`] removes entries strictly
//! before its argument, so evicting before `now - window` keeps everything
//! a query at `now` can see.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

/// Version of the [`fingerprint`] algorithm. Fingerprints are stored with
/// complaints; a change to the features, hash or weights must bump this so
/// that stored values are recomputed rather than compared across versions.
pub const FINGERPRINT_VERSION: u32 = 1;

/// The fingerprint of a text without any content token (empty, only
/// punctuation or stop words). It never matches as a near-duplicate: two
/// empty voice-call transcripts are not the same issue.
pub const EMPTY_FINGERPRINT: u64 = 0;

/// Content tokens a fingerprint reads at most: a complaint says what it is
/// about long before this, and a hostile 10 MB text costs no more than a
/// long letter.
pub const MAX_FINGERPRINT_TOKENS: usize = 4096;

/// Largest Hamming distance at which two complaints of different people
/// count as text near-duplicates (see the module docs for the measurement).
pub const DEFAULT_MAX_DISTANCE: u32 = 8;

/// Largest Hamming distance at which two complaints of the same person count
/// as the same issue (a repeat).
pub const DEFAULT_REPEAT_MAX_DISTANCE: u32 = 16;

/// Identity keys followed for one person across complaints (a complaint
/// with phone A and email B links A's and B's complaints), and kept per
/// complaint. Bounds the work when a shared number (a hotel front desk)
/// chains many people together.
pub const MAX_PERSON_KEYS: usize = 32;

/// Default number of blocks of the lookup tables.
pub const DEFAULT_BLOCKS: u32 = 5;

/// Above this many bucket probes per lookup, scanning the flat fingerprint
/// array is cheaper: a probe costs about two cache misses, a scan step 8
/// sequential bytes, and at 100 000 entries 1 024 probes ≈ a third of a
/// scan. With 5 blocks, distances up to 14 are probed, larger ones scanned.
const PROBE_LIMIT: u64 = 1024;

// ---------------------------------------------------------------------------
// Fingerprint
// ---------------------------------------------------------------------------

/// 64-bit SimHash of a segmented text.
///
/// Features: every content token (weight 1) and every pair of consecutive
/// content tokens (weight 1), where content tokens are the tokens with a
/// letter or digit that are not stop words, compared ASCII-case-insensitively.
/// Each feature is hashed with FNV-1a 64 (a tag byte, the token bytes, for
/// bigrams a 0x1F separator and the second token) followed by the SplitMix64
/// finalizer, which spreads FNV's weak high bits; bit `i` of the result is
/// set when the weights of the features with bit `i` set outweigh the rest.
/// Only the first [`MAX_FINGERPRINT_TOKENS`] content tokens count. Stable
/// across processes, platforms and releases (see [`FINGERPRINT_VERSION`]).
/// Returns [`EMPTY_FINGERPRINT`] when there is no content token.
pub fn fingerprint(tokens: &[String]) -> u64 {
    fingerprint_words(tokens.iter().map(String::as_str))
}

/// [`fingerprint`] of words that need not be `String`s: the same value
/// for the same sequence, e.g. of a [`crate::text::Segmented`] text's
/// words (how routing computes it, without a `String` per word).
pub fn fingerprint_words<'a>(tokens: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut counts = BitCounts::default();
    // FNV state of the bigram feature of the previous token, up to and
    // including its separator: each token's bytes are then read once for
    // its unigram, its bigram with the previous token, and the start of
    // its bigram with the next one.
    let mut prev: Option<Fnv> = None;
    let mut features = 0usize;
    for token in tokens {
        let token = token.trim();
        if !is_content(token) || is_stop(token) {
            continue;
        }
        if features == MAX_FINGERPRINT_TOKENS {
            break;
        }
        let mut unigram = Fnv::new();
        unigram.byte(TAG_UNIGRAM);
        let mut next = Fnv::new();
        next.byte(TAG_BIGRAM);
        match prev {
            Some(mut bigram) => {
                for &b in token.as_bytes() {
                    let b = b.to_ascii_lowercase();
                    unigram.byte(b);
                    next.byte(b);
                    bigram.byte(b);
                }
                counts.add(mix(unigram.0));
                counts.add(mix(bigram.0));
            }
            None => {
                for &b in token.as_bytes() {
                    let b = b.to_ascii_lowercase();
                    unigram.byte(b);
                    next.byte(b);
                }
                counts.add(mix(unigram.0));
            }
        }
        next.byte(0x1f);
        prev = Some(next);
        features += 1;
    }
    if features == 0 {
        return EMPTY_FINGERPRINT;
    }
    counts.majority()
}

/// Whether a token has a letter or digit.
fn is_content(token: &str) -> bool {
    token.chars().any(|c| {
        if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            // The CJK block is all letters (Unicode 14+): spares the
            // table lookup for nearly every Chinese word.
            matches!(c, '\u{4E00}'..='\u{9FFF}') || c.is_alphanumeric()
        }
    })
}

/// Per bit position, how many of the feature hashes added have it set:
/// SimHash with every weight 1 sets bit `i` when more than half do
/// (Σ ±1 > 0). Counted eight positions at a time in the bytes of a
/// `u64` (a table spreads a hash byte's 8 bits into 8 counter bytes), so
/// a feature costs 8 additions instead of 64.
struct BitCounts {
    /// `lanes[k]` byte `j` counts bit `8k + j`, for at most 255 hashes.
    lanes: [u64; 8],
    pending: u32,
    totals: [u32; 64],
    added: u32,
}

impl Default for BitCounts {
    fn default() -> Self {
        BitCounts {
            lanes: [0; 8],
            pending: 0,
            totals: [0; 64],
            added: 0,
        }
    }
}

/// `SPREAD[b]` has byte `j` = bit `j` of `b`.
const SPREAD: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            table[b] |= ((b as u64 >> j) & 1) << (8 * j);
            j += 1;
        }
        b += 1;
    }
    table
};

impl BitCounts {
    fn add(&mut self, hash: u64) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            *lane += SPREAD[((hash >> (8 * k)) & 0xff) as usize];
        }
        self.added += 1;
        self.pending += 1;
        if self.pending == 255 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            for j in 0..8 {
                self.totals[8 * k + j] += ((*lane >> (8 * j)) & 0xff) as u32;
            }
            *lane = 0;
        }
        self.pending = 0;
    }

    /// Bit `i` set when more than half of the hashes have bit `i` set.
    fn majority(mut self) -> u64 {
        self.flush();
        let mut fp = 0u64;
        for (i, &ones) in self.totals.iter().enumerate() {
            if u64::from(ones) * 2 > u64::from(self.added) {
                fp |= 1 << i;
            }
        }
        fp
    }
}

/// Number of differing bits between two fingerprints.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

const TAG_UNIGRAM: u8 = 0x01;
const TAG_BIGRAM: u8 = 0x02;

/// FNV-1a 64 (then [`mix`]) is the feature hash: over the tag byte and
/// the ASCII-lower-cased token bytes; for a bigram, the first token, a
/// 0x1F separator and the second token.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;

    fn new() -> Self {
        Fnv(Self::OFFSET)
    }

    fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(Self::PRIME);
    }
}

/// SplitMix64 finalizer (Steele, Lea, Flood 2014).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Function words that carry no topic. Kept short on purpose: negations and
/// complaint words (不, 没有, 投诉) stay, since they are part of what a
/// complaint says. Part of the fingerprint definition: changing this list
/// changes fingerprints (bump [`FINGERPRINT_VERSION`]).
fn is_stop(token: &str) -> bool {
    static SET: std::sync::OnceLock<crate::text::ShortWords> = std::sync::OnceLock::new();
    SET.get_or_init(|| crate::text::ShortWords::new(STOP_WORDS))
        .contains_ascii_lowercase(token)
}

/// The stop words of [`is_stop`], lower-case.
const STOP_WORDS: &[&str] = &[
    "的", "了", "是", "我", "你", "他", "她", "它", "们", "我们", "你们", "他们", "在", "和", "与",
    "也", "都", "就", "还", "又", "很", "太", "吧", "吗", "呢", "啊", "呀", "着", "过", "把", "被",
    "让", "给", "对", "从", "到", "说", "这", "那", "这个", "那个", "有", "一", "个", "要", "会",
    "能", "可以", "请", "而且", "但是", "因为", "所以", "已经", "现在", "还是", "什么", "怎么",
    "自己", "就是", "得", "地", "等", "及", "或", "并", "但", "其", "该", "为", "以", "于", "之",
    "所", "如果", "而", "将", "the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "for",
    "is", "was", "were", "be", "been", "are", "i", "my", "me", "we", "our", "you", "your", "it",
    "its", "this", "that", "with", "as", "by", "from", "have", "has", "had", "but", "so", "do",
    "did", "does", "just", "there", "they", "them", "their", "he", "she", "his", "her", "am",
    "which", "when", "what", "who", "would", "could", "will", "can", "if", "then", "than", "into",
    "s", "t",
];

// ---------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------

/// A complaint as the index needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Complaint id; inserting an id again replaces the earlier entry.
    pub id: String,
    /// When the complaint was received.
    pub at: OffsetDateTime,
    /// `phone:+86…`, `email:…`, `wechat:<openid>`, `forum:<host>/<user>`, as
    /// intake writes them. Empty for an anonymous complaint. Blank keys and
    /// keys with nothing after the colon are ignored, and keys beyond the
    /// first [`MAX_PERSON_KEYS`] too.
    pub identity_keys: Vec<String>,
    /// [`fingerprint`] of the complaint's tokens.
    pub fingerprint: u64,
    /// Category code ("" if unknown: then it agrees with any category).
    pub category: String,
    /// Normalized product (catalogue id or model), "" if none.
    pub product: String,
    /// Normalized place (store, site, building), "" if none.
    pub location: String,
}

/// An [`Entry`] by reference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryRef<'a> {
    pub(crate) id: &'a str,
    pub(crate) at: OffsetDateTime,
    pub(crate) identity_keys: &'a [String],
    pub(crate) fingerprint: u64,
    pub(crate) category: &'a str,
    pub(crate) product: &'a str,
    pub(crate) location: &'a str,
}

impl Entry {
    pub(crate) fn borrowed(&self) -> EntryRef<'_> {
        EntryRef {
            id: &self.id,
            at: self.at,
            identity_keys: &self.identity_keys,
            fingerprint: self.fingerprint,
            category: &self.category,
            product: &self.product,
            location: &self.location,
        }
    }
}

/// A near-duplicate lookup. Borrowed so that a lookup allocates nothing
/// until it has results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    /// The complaint being assessed, if it is itself in the index: it never
    /// matches itself.
    pub id: Option<&'a str>,
    /// [`fingerprint`] of its tokens.
    pub fingerprint: u64,
    /// Its category ("" = unknown, agrees with any).
    pub category: &'a str,
    /// Its normalized product ("" = none).
    pub product: &'a str,
    /// Its normalized place ("" = none).
    pub location: &'a str,
    /// Its receipt time: the centre of the window.
    pub at: OffsetDateTime,
    /// Entries within `window` before or after `at` (inclusive) are seen.
    pub window: Duration,
    /// Largest Hamming distance for a text near-duplicate.
    pub max_distance: u32,
    /// Also match the same category at the same product or place, whatever
    /// the words (see the module docs).
    pub context: bool,
    /// At most this many matches from each source (the text tables, the
    /// product list, the place list), the most recent first; `usize::MAX`
    /// for all. Bounds the work for a hot topic with thousands of
    /// complaints.
    pub limit: usize,
}

impl<'a> Query<'a> {
    /// The lookup [`Index::assess`] makes for `entry` under `config`: its
    /// window, distance, context rule and per-source limit.
    pub fn new(entry: &'a Entry, config: &Config) -> Self {
        Query {
            id: Some(&entry.id),
            fingerprint: entry.fingerprint,
            category: &entry.category,
            product: &entry.product,
            location: &entry.location,
            at: entry.at,
            window: config.window,
            max_distance: config.max_distance,
            context: config.context,
            limit: config.max_matches,
        }
    }
}

/// One complaint found by [`Index::similar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Complaint id.
    pub id: String,
    /// Its receipt time.
    pub at: OffsetDateTime,
    /// Hamming distance between the fingerprints (meaningless when either
    /// text was empty).
    pub distance: u32,
    /// Its identity keys, to count people ([`distinct_complainants`]).
    pub identity_keys: Vec<String>,
    /// Found as a text near-duplicate (distance ≤ the query's maximum).
    pub near_duplicate: bool,
    /// Found as the same category at the same product or place.
    pub same_context: bool,
}

/// Settings of an [`Index`]'s derived answers ([`Index::assess`],
/// [`Index::linked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Window for similar complaints and links (the "within 30 days" rule).
    pub window: Duration,
    /// Window for repeats of the same person.
    pub repeat_window: Duration,
    /// Text near-duplicates across people.
    pub max_distance: u32,
    /// Text near-duplicates of the same person.
    pub repeat_max_distance: u32,
    /// Same category at the same product or place counts as the same issue.
    pub context: bool,
    /// At most this many complaints are taken from each source (text
    /// tables, product list, place list, each identity key), the most
    /// recent first. Grading needs 3 and 10; beyond the cap the counts are
    /// lower bounds ([`Assessment::saturated`]) and a lookup stays cheap on
    /// a topic with thousands of complaints.
    pub max_matches: usize,
    /// At most this many linked ids are listed on a complaint (the most
    /// recent; [`Assessment::linked_total`] has the count), so that a hot
    /// topic does not list hundreds of cases on each of them.
    pub max_links: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: Duration::days(30),
            repeat_window: Duration::days(30),
            max_distance: DEFAULT_MAX_DISTANCE,
            repeat_max_distance: DEFAULT_REPEAT_MAX_DISTANCE,
            context: true,
            max_matches: 64,
            max_links: 50,
        }
    }
}

/// What grading and the case view need to know about one complaint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assessment {
    /// Distinct people (this complainant included) with a complaint about the
    /// same issue within [`Config::window`]: ≥ 3 makes it hot.
    pub similar_complainants: usize,
    /// Earlier complaints of the same person about the same issue within
    /// [`Config::repeat_window`].
    pub repeat_count: usize,
    /// Other complaints about the same issue within the window.
    pub similar_count: usize,
    /// Other complaints of the same person within the window.
    pub same_person_count: usize,
    /// Ids of the near-duplicate, same-issue and same-person complaints,
    /// most recent first, at most [`Config::max_links`].
    pub linked: Vec<String>,
    /// Number of linked complaints before that cap.
    pub linked_total: usize,
    /// A source hit [`Config::max_matches`]: the counts are lower bounds.
    pub saturated: bool,
}

/// An in-memory index of recent complaints for near-duplicate, same-person
/// and same-issue lookups. Not synchronized: the owner serializes access.
///
/// Measured first with 100 000 synthetic complaints over 30 days (~1.3
/// identity keys each, product or place on about half, texts clustered
/// around templates as hot topics are) on one core of a shared 2-core VM:
/// 611 bytes per complaint (61 MB) plus 2 MB of block tables; insert
/// ~2.5 µs; [`Index::assess`] 20–29 µs, of which the text lookup ~12 µs.
/// The lookup-friendly layout described in the module docs (per-slot
/// records, times in buckets and lists, each match reported once) then
/// took a third off [`Index::assess`] on the index of `tousu bench
/// routing` (100 000 complaints: 10 µs against 15 µs, the lookups run back
/// to back) for ~220 more bytes per complaint; `docs/performance.md` has
/// the current figures.
#[derive(Debug)]
pub struct Index {
    config: Config,
    slots: Vec<Option<Stored>>,
    /// Per slot, for lookups that should not touch the entry itself:
    /// fingerprint (0 when vacant or empty text), and what checking a
    /// candidate reads ([`Meta`]).
    fps: Vec<u64>,
    meta: Vec<Meta>,
    free: Vec<u32>,
    by_id: HashMap<Arc<str>, u32>,
    by_time: BTreeSet<(i128, u32)>,
    blocks: Vec<Block>,
    /// Slots per identity key and per (category, product|place), each list
    /// in (time, slot) order, with the time (and for a context list the
    /// other context field) beside the slot: a lookup walks a list without
    /// touching the entries it passes.
    by_key: HashMap<Arc<str>, VecDeque<(i128, u32)>>,
    by_context: HashMap<ContextKey, VecDeque<ContextEntry>, BuildSlotHasher>,
    strings: Interner,
}

/// An entry of a context list: its time and slot, and its value of the
/// other context field (its place in a list of a product, its product in
/// a list of a place), which is all a lookup has to check: the category
/// and the list's own field are the list's key.
#[derive(Debug, Clone, Copy)]
struct ContextEntry {
    t: i128,
    slot: u32,
    other: Sym,
}

/// An entry of a list kept in (time, slot) order.
trait Timed: Copy {
    fn key(&self) -> (i128, u32);
}

impl Timed for (i128, u32) {
    fn key(&self) -> (i128, u32) {
        *self
    }
}

impl Timed for ContextEntry {
    fn key(&self) -> (i128, u32) {
        (self.t, self.slot)
    }
}

/// What a lookup reads of a candidate, kept per slot in one array (a
/// cache line each) so that checking hundreds of candidates does not
/// touch their entries: receipt time, category, product and place, and
/// the identity key when there is just one (to count people).
#[derive(Debug, Clone, Copy)]
struct Meta {
    t: i128,
    category: Sym,
    product: Sym,
    location: Sym,
    /// Interned address of the first identity key (0 when none).
    key: usize,
    /// Number of identity keys.
    keys: u32,
    /// Whether the slot holds an entry.
    live: bool,
}

impl Meta {
    const VACANT: Meta = Meta {
        t: 0,
        category: Sym::EMPTY,
        product: Sym::EMPTY,
        location: Sym::EMPTY,
        key: 0,
        keys: 0,
        live: false,
    };
}

#[derive(Debug)]
struct Stored {
    id: Arc<str>,
    at: OffsetDateTime,
    t: i128,
    keys: Box<[Arc<str>]>,
    fp: u64,
    category: Arc<str>,
    product: Arc<str>,
    location: Arc<str>,
}

#[derive(Debug)]
struct Block {
    shift: u32,
    width: u32,
    /// `2^width` buckets; allocated on first insert.
    buckets: Vec<Bucket>,
}

/// Entries whose block has one value, each with its slot and receipt
/// time: a lookup reads a match's time where it found its fingerprint,
/// not from its slot, and an insert touches one array per block.
#[derive(Debug, Clone, Default)]
struct Bucket {
    entries: Vec<BucketEntry>,
}

#[derive(Debug, Clone, Copy)]
struct BucketEntry {
    fp: u64,
    /// Receipt time in Unix nanoseconds, [`FAR_TIME`] for one outside the
    /// years 1677–2262 (its slot's [`Meta`] has it).
    t: i64,
    slot: u32,
}

/// A bucket's mark for a time that takes more than 64 bits.
const FAR_TIME: i64 = i64::MIN;

impl Block {
    fn value(&self, fp: u64) -> usize {
        ((fp >> self.shift) & ((1u64 << self.width) - 1)) as usize
    }
}

/// A complaint as lookups compare it: its slot if it is in the index (so
/// it never matches itself), and its category, product and place as
/// [`Sym`]s, so that comparing them never touches string memory.
#[derive(Debug, Clone, Copy)]
struct View {
    slot: Option<u32>,
    t: i128,
    fp: u64,
    category: Sym,
    product: Sym,
    location: Sym,
}

/// An interned string by address: [`Sym::EMPTY`] for "", [`Sym::UNKNOWN`]
/// for a non-empty value no stored complaint has (it equals nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sym(usize);

impl Sym {
    const EMPTY: Sym = Sym(0);
    const UNKNOWN: Sym = Sym(usize::MAX);

    fn of(a: &Arc<str>) -> Sym {
        if a.is_empty() {
            Sym::EMPTY
        } else {
            Sym(Arc::as_ptr(a).cast::<u8>() as usize)
        }
    }

    fn is_empty(self) -> bool {
        self == Sym::EMPTY
    }

    /// Non-empty and held by some stored complaint.
    fn is_known(self) -> bool {
        self != Sym::EMPTY && self != Sym::UNKNOWN
    }
}

/// Matches of one lookup: (slot, near-duplicate, same context), plus
/// whether a source was cut at the limit.
struct Found {
    slots: Vec<(u32, bool, bool)>,
    saturated: bool,
}

const CONTEXT_PRODUCT: u8 = b'p';
const CONTEXT_LOCATION: u8 = b'l';

/// Key of a context list: the kind and the interned category and value.
type ContextKey = (u8, usize, usize);

fn context_key_sym(kind: u8, category: Sym, value: Sym) -> ContextKey {
    (kind, category.0, value.0)
}

/// Both given and different.
fn conflict(a: Sym, b: Sym) -> bool {
    !a.is_empty() && !b.is_empty() && a != b
}

/// Both given and equal.
fn agree(a: Sym, b: Sym) -> bool {
    a.is_known() && a == b
}

/// Same category at the same product or place, nothing conflicting.
fn same_context(a: &View, b: &Meta) -> bool {
    agree(a.category, b.category)
        && (agree(a.product, b.product) || agree(a.location, b.location))
        && !conflict(a.product, b.product)
        && !conflict(a.location, b.location)
}

fn within(a: i128, b: i128, window: i128) -> bool {
    (a - b).abs() <= window
}

fn usable_key(k: &str) -> Option<&str> {
    let k = k.trim();
    match k.split_once(':') {
        _ if k.is_empty() => None,
        Some((_, rest)) if rest.trim().is_empty() => None,
        _ => Some(k),
    }
}

impl Default for Index {
    fn default() -> Self {
        Index::new(Config::default())
    }
}

impl Index {
    /// An empty index with [`DEFAULT_BLOCKS`] lookup tables.
    pub fn new(config: Config) -> Self {
        Index::with_blocks(config, DEFAULT_BLOCKS)
    }

    /// An empty index whose lookup tables split the fingerprint into
    /// `blocks` blocks (clamped to 4..=16, so that a block has at most 16
    /// bits). More blocks: smaller tables, more candidates per lookup.
    pub fn with_blocks(config: Config, blocks: u32) -> Self {
        let m = blocks.clamp(4, 16);
        let (base, extra) = (64 / m, 64 % m);
        let mut shift = 0;
        let blocks = (0..m)
            .map(|i| {
                let width = base + u32::from(i < extra);
                let b = Block {
                    shift,
                    width,
                    buckets: Vec::new(),
                };
                shift += width;
                b
            })
            .collect();
        Index {
            config,
            slots: Vec::new(),
            fps: Vec::new(),
            meta: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            by_time: BTreeSet::new(),
            blocks,
            by_key: HashMap::new(),
            by_context: HashMap::default(),
            strings: Interner::default(),
        }
    }

    /// The settings of the derived answers.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of complaints in the index.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the index holds no complaint.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether a complaint is in the index.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Adds a complaint; an entry with the same id is replaced (a
    /// re-classified complaint is re-inserted with its new category).
    pub fn insert(&mut self, entry: Entry) {
        self.insert_ref(&entry.borrowed());
    }

    /// [`Index::insert`] of borrowed fields: routing inserts every
    /// complaint it decides on, and need not copy one into an [`Entry`]
    /// first.
    pub(crate) fn insert_ref(&mut self, entry: &EntryRef<'_>) {
        self.remove(entry.id);
        let t = entry.at.unix_timestamp_nanos();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let Ok(s) = u32::try_from(self.slots.len()) else {
                    // 4 billion live entries: refuse rather than corrupt.
                    return;
                };
                self.slots.push(None);
                self.fps.push(EMPTY_FINGERPRINT);
                self.meta.push(Meta::VACANT);
                s
            }
        };
        let fp = entry.fingerprint;
        if let (Some(f), Some(m)) = (
            self.fps.get_mut(slot as usize),
            self.meta.get_mut(slot as usize),
        ) {
            *f = fp;
            // The time first: the sorted lists below are ordered by it.
            *m = Meta { t, ..Meta::VACANT };
        }
        let id: Arc<str> = Arc::from(entry.id);
        let mut keys: Vec<Arc<str>> = Vec::with_capacity(entry.identity_keys.len());
        for k in entry.identity_keys {
            let Some(k) = usable_key(k) else { continue };
            if keys.iter().any(|x| &**x == k) {
                continue;
            }
            if keys.len() == MAX_PERSON_KEYS {
                break;
            }
            let key = match self.by_key.get_key_value(k) {
                Some((arc, _)) => arc.clone(),
                None => Arc::from(k),
            };
            let list = self.by_key.entry(key.clone()).or_default();
            insert_sorted(list, (t, slot));
            keys.push(key);
        }
        let category = self.strings.intern(entry.category.trim());
        let product = self.strings.intern(entry.product.trim());
        let location = self.strings.intern(entry.location.trim());
        if !category.is_empty() {
            for (kind, value, other) in [
                (CONTEXT_PRODUCT, &product, &location),
                (CONTEXT_LOCATION, &location, &product),
            ] {
                if !value.is_empty() {
                    let key = context_key_sym(kind, Sym::of(&category), Sym::of(value));
                    let list = self.by_context.entry(key).or_default();
                    insert_sorted(
                        list,
                        ContextEntry {
                            t,
                            slot,
                            other: Sym::of(other),
                        },
                    );
                }
            }
        }
        if fp != EMPTY_FINGERPRINT {
            for b in &mut self.blocks {
                if b.buckets.is_empty() {
                    b.buckets = vec![Bucket::default(); 1 << b.width];
                }
                let v = b.value(fp);
                if let Some(bucket) = b.buckets.get_mut(v) {
                    bucket.entries.push(BucketEntry {
                        fp,
                        t: i64::try_from(t).unwrap_or(FAR_TIME),
                        slot,
                    });
                }
            }
        }
        self.by_id.insert(id.clone(), slot);
        self.by_time.insert((t, slot));
        if let Some(m) = self.meta.get_mut(slot as usize) {
            *m = Meta {
                t,
                category: Sym::of(&category),
                product: Sym::of(&product),
                location: Sym::of(&location),
                key: keys
                    .first()
                    .map_or(0, |k| Arc::as_ptr(k).cast::<u8>() as usize),
                keys: keys.len() as u32,
                live: true,
            };
        }
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Some(Stored {
                id,
                at: entry.at,
                t,
                keys: keys.into_boxed_slice(),
                fp,
                category,
                product,
                location,
            });
        }
    }

    /// Removes a complaint (withdrawn, merged into another). Returns whether
    /// it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.by_id.remove(id) else {
            return false;
        };
        let Some(stored) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return false;
        };
        self.by_time.remove(&(stored.t, slot));
        if stored.fp != EMPTY_FINGERPRINT {
            for b in &mut self.blocks {
                let v = b.value(stored.fp);
                if let Some(bucket) = b.buckets.get_mut(v)
                    && let Some(p) = bucket.entries.iter().position(|e| e.slot == slot)
                {
                    bucket.entries.swap_remove(p);
                }
            }
        }
        for k in stored.keys.iter() {
            remove_sorted(&mut self.by_key, &**k, stored.t, slot);
        }
        if !stored.category.is_empty() {
            for (kind, value) in [
                (CONTEXT_PRODUCT, &stored.product),
                (CONTEXT_LOCATION, &stored.location),
            ] {
                if !value.is_empty() {
                    let key = context_key_sym(kind, Sym::of(&stored.category), Sym::of(value));
                    remove_sorted(&mut self.by_context, &key, stored.t, slot);
                }
            }
        }
        // Only now: the sorted lists above were searched by this time
        // (which the vacant slot keeps).
        if let Some(f) = self.fps.get_mut(slot as usize) {
            *f = EMPTY_FINGERPRINT;
        }
        if let Some(m) = self.meta.get_mut(slot as usize) {
            *m = Meta {
                t: m.t,
                ..Meta::VACANT
            };
        }
        let Stored {
            category,
            product,
            location,
            ..
        } = stored;
        self.strings.release(category);
        self.strings.release(product);
        self.strings.release(location);
        self.free.push(slot);
        true
    }

    /// Removes every complaint received strictly before `t`; returns how
    /// many. Call it with `now - window` to bound memory.
    pub fn evict_before(&mut self, t: OffsetDateTime) -> usize {
        let limit = t.unix_timestamp_nanos();
        let old: Vec<Arc<str>> = self
            .by_time
            .iter()
            .take_while(|&&(at, _)| at < limit)
            .filter_map(|&(_, slot)| self.stored(slot).map(|s| s.id.clone()))
            .collect();
        old.iter().filter(|id| self.remove(id)).count()
    }

    /// Complaints about the same issue as the query: text near-duplicates
    /// (distance ≤ `max_distance`, compatible category) and, with
    /// `query.context`, the same category at the same product or place. A
    /// product or place given on both sides and different rules a
    /// complaint out. Oldest first.
    pub fn similar(&self, query: &Query<'_>) -> Vec<Match> {
        let view = self.view_of(
            query.id,
            query.at,
            query.fingerprint,
            query.category,
            query.product,
            query.location,
        );
        let found = self.similar_slots(
            &view,
            query.window.whole_nanoseconds(),
            query.max_distance,
            query.context,
            query.limit,
        );
        let mut out: Vec<Match> = found
            .slots
            .iter()
            .filter_map(|&(slot, near, ctx)| {
                let s = self.stored(slot)?;
                Some(Match {
                    id: s.id.to_string(),
                    at: s.at,
                    distance: distance(s.fp, view.fp),
                    identity_keys: s.keys.iter().map(|k| k.to_string()).collect(),
                    near_duplicate: near,
                    same_context: ctx,
                })
            })
            .collect();
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Ids of the complaints sharing an identity key with `identity_keys`
    /// within `window` of `at` (inclusive), following keys transitively (a
    /// complaint with phone A and email B joins A's and B's complaints) up
    /// to [`MAX_PERSON_KEYS`] keys. Oldest first.
    pub fn same_person(
        &self,
        identity_keys: &[String],
        at: OffsetDateTime,
        window: Duration,
    ) -> Vec<String> {
        let (slots, _) = self.person_slots(
            identity_keys.iter().map(String::as_str),
            at.unix_timestamp_nanos(),
            window.whole_nanoseconds(),
            usize::MAX,
        );
        let mut v: Vec<(i128, &str)> = slots
            .iter()
            .filter_map(|&slot| self.stored(slot).map(|s| (s.t, &*s.id)))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, id)| id.to_string()).collect()
    }

    /// Grading facts for a complaint, whether or not it is in the index yet
    /// (it never counts itself): similar complainants, repeats, links.
    pub fn assess(&self, entry: &Entry) -> Assessment {
        self.assess_ref(&entry.borrowed())
    }

    /// [`Index::assess`] of borrowed fields (see [`Index::insert_ref`]).
    pub(crate) fn assess_ref(&self, entry: &EntryRef<'_>) -> Assessment {
        let view = self.view_of(
            Some(entry.id),
            entry.at,
            entry.fingerprint,
            entry.category,
            entry.product,
            entry.location,
        );
        self.assess_view(&view, entry.identity_keys.iter().map(String::as_str))
    }

    /// The complaints linked to a stored one (near-duplicates, same issue,
    /// same person within [`Config::window`]), most recent first, at most
    /// [`Config::max_links`]. Empty for an unknown id.
    pub fn linked(&self, id: &str) -> Vec<String> {
        let Some(&slot) = self.by_id.get(id) else {
            return Vec::new();
        };
        let Some(s) = self.stored(slot) else {
            return Vec::new();
        };
        self.assess_view(&s.view(slot), s.keys.iter().map(|k| &**k))
            .linked
    }

    /// The view of a complaint given by its fields.
    fn view_of(
        &self,
        id: Option<&str>,
        at: OffsetDateTime,
        fp: u64,
        category: &str,
        product: &str,
        location: &str,
    ) -> View {
        View {
            slot: id.and_then(|id| self.by_id.get(id).copied()),
            t: at.unix_timestamp_nanos(),
            fp,
            category: self.strings.sym(category.trim()),
            product: self.strings.sym(product.trim()),
            location: self.strings.sym(location.trim()),
        }
    }

    fn assess_view<'k>(
        &self,
        view: &View,
        keys: impl Iterator<Item = &'k str> + Clone,
    ) -> Assessment {
        let cfg = &self.config;
        let cap = cfg.max_matches.max(1);
        let window = cfg.window.whole_nanoseconds();
        let repeat_window = cfg.repeat_window.whole_nanoseconds();
        let similar = self.similar_slots(view, window, cfg.max_distance, cfg.context, cap);
        let (person, person_saturated) =
            self.person_slots(keys.clone(), view.t, window.max(repeat_window), cap);

        // People: this complainant plus the authors of the similar ones.
        // Keys are compared by their interned address; a key of this
        // complaint that no stored one has gets an address of its own.
        let mut people: KeyUnion<usize, BuildSlotHasher> = KeyUnion::default();
        let mut fresh = usize::MAX;
        people.add(
            keys.filter_map(usable_key)
                .map(|k| match self.by_key.get_key_value(k) {
                    Some((arc, _)) => Arc::as_ptr(arc).cast::<u8>() as usize,
                    None => {
                        fresh -= 1;
                        fresh
                    }
                }),
        );
        for &(slot, _, _) in &similar.slots {
            let Some(m) = self.live_meta(slot) else {
                continue;
            };
            // One key (or none) is on the slot's meta: the entry itself is
            // read only for a complaint with several.
            match m.keys {
                0 => people.add(None),
                1 => people.add(Some(m.key)),
                _ => {
                    if let Some(s) = self.stored(slot) {
                        people.add(s.keys.iter().map(|k| Arc::as_ptr(k).cast::<u8>() as usize));
                    }
                }
            }
        }

        let mut repeat_count = 0;
        let mut same_person_count = 0;
        let mut linked: Vec<u32> = Vec::with_capacity(similar.slots.len() + person.len());
        linked.extend(similar.slots.iter().map(|&(slot, _, _)| slot));
        for &slot in &person {
            if Some(slot) == view.slot {
                continue;
            }
            let Some(m) = self.live_meta(slot) else {
                continue;
            };
            if within(m.t, view.t, window) {
                same_person_count += 1;
                linked.push(slot);
            }
            let earlier = m.t < view.t && view.t - m.t <= repeat_window;
            if earlier && self.same_issue_of_person(view, slot, m) {
                repeat_count += 1;
            }
        }
        linked.sort_unstable();
        linked.dedup();
        let linked_total = linked.len();
        // Most recent first, ties by id (descending), as (time, id) sorts;
        // ids are read only for the ones listed.
        let mut recent: Vec<(i128, u32)> = linked
            .iter()
            .filter_map(|&slot| self.live_meta(slot).map(|m| (m.t, slot)))
            .collect();
        recent.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        let mut listed: Vec<(i128, &str)> = Vec::with_capacity(cfg.max_links.min(recent.len()));
        let mut run = 0;
        while run < recent.len() && listed.len() < cfg.max_links {
            let t = recent[run].0;
            let end = run + recent[run..].iter().take_while(|e| e.0 == t).count();
            let start = listed.len();
            listed.extend(
                recent[run..end]
                    .iter()
                    .map(|&(t, slot)| (t, self.id_of(slot))),
            );
            listed[start..].sort_unstable_by(|a, b| b.1.cmp(a.1));
            run = end;
        }
        listed.truncate(cfg.max_links);
        Assessment {
            similar_complainants: people.people(),
            repeat_count,
            similar_count: similar.slots.len(),
            same_person_count,
            linked: listed.iter().map(|&(_, id)| id.to_owned()).collect(),
            linked_total,
            saturated: similar.saturated || person_saturated,
        }
    }

    fn same_issue_of_person(&self, view: &View, slot: u32, other: &Meta) -> bool {
        if conflict(view.product, other.product) || conflict(view.location, other.location) {
            return false;
        }
        let fp = self
            .fps
            .get(slot as usize)
            .copied()
            .unwrap_or(EMPTY_FINGERPRINT);
        let text = view.fp != EMPTY_FINGERPRINT
            && fp != EMPTY_FINGERPRINT
            && distance(view.fp, fp) <= self.config.repeat_max_distance;
        text || same_context(view, other)
    }

    fn stored(&self, slot: u32) -> Option<&Stored> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn live_meta(&self, slot: u32) -> Option<&Meta> {
        self.meta.get(slot as usize).filter(|m| m.live)
    }

    fn id_of(&self, slot: u32) -> &str {
        self.stored(slot).map_or("", |s| &*s.id)
    }

    fn time_of(&self, slot: u32) -> i128 {
        self.meta.get(slot as usize).map_or(i128::MIN, |m| m.t)
    }

    /// Matches sorted by slot, without the query itself, at most `limit`
    /// per source (the newest).
    fn similar_slots(
        &self,
        q: &View,
        window: i128,
        max_distance: u32,
        context: bool,
        limit: usize,
    ) -> Found {
        let mut found: Vec<(u32, bool, bool)> = Vec::with_capacity(16);
        let mut saturated = false;
        let keep = |slot: u32, m: &Meta| -> bool {
            Some(slot) != q.slot
                && !conflict(q.product, m.product)
                && !conflict(q.location, m.location)
        };
        if q.fp != EMPTY_FINGERPRINT {
            let mut cands: Vec<(i128, u32)> = Vec::with_capacity(32);
            self.text_candidates(q.fp, max_distance.min(64), |slot, t| {
                if within(t, q.t, window) {
                    cands.push((t, slot));
                }
            });
            // Newest first (each slot comes once). Only as many as can
            // still be taken, plus one to tell whether the limit cut the
            // list, are put in order at a time: a hot topic has hundreds
            // of candidates and the limit is a few dozen.
            let newest_first = |a: &(i128, u32), b: &(i128, u32)| b.cmp(a);
            let mut rest = cands.as_mut_slice();
            let mut taken = 0;
            'take: while !rest.is_empty() {
                let chunk = (limit - taken).saturating_add(1).min(rest.len());
                if chunk < rest.len() {
                    rest.select_nth_unstable_by(chunk - 1, newest_first);
                }
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(chunk);
                head.sort_unstable_by(newest_first);
                for &(_, slot) in head.iter() {
                    if taken == limit {
                        saturated = true;
                        break 'take;
                    }
                    let Some(m) = self.live_meta(slot) else {
                        continue;
                    };
                    let category_ok =
                        q.category.is_empty() || m.category.is_empty() || q.category == m.category;
                    if category_ok && keep(slot, m) {
                        found.push((slot, true, false));
                        taken += 1;
                    }
                }
                rest = tail;
            }
        }
        if context && q.category.is_known() {
            for (kind, value) in [(CONTEXT_PRODUCT, q.product), (CONTEXT_LOCATION, q.location)] {
                if !value.is_known() {
                    continue;
                }
                let Some(list) = self
                    .by_context
                    .get(&context_key_sym(kind, q.category, value))
                else {
                    continue;
                };
                let (from, to) = (q.t.saturating_sub(window), q.t.saturating_add(window));
                let newest = if list.back().is_none_or(|e| e.t <= to) {
                    list.len()
                } else {
                    list.partition_point(|e| e.t <= to)
                };
                let mut taken = 0;
                for i in (0..newest).rev() {
                    let Some(e) = list.get(i) else { break };
                    if e.t < from {
                        break;
                    }
                    if taken == limit {
                        saturated = true;
                        break;
                    }
                    // Same category and the same `value` by the list's key:
                    // [`same_context`] and `keep` come down to the slot and
                    // the other field.
                    let other_conflicts = if kind == CONTEXT_PRODUCT {
                        conflict(q.location, e.other)
                    } else {
                        conflict(q.product, e.other)
                    };
                    if Some(e.slot) != q.slot && !other_conflicts {
                        found.push((e.slot, false, true));
                        taken += 1;
                    }
                }
            }
        }
        found.sort_unstable_by_key(|&(slot, _, _)| slot);
        let mut slots: Vec<(u32, bool, bool)> = Vec::with_capacity(found.len());
        for (slot, near, ctx) in found {
            match slots.last_mut() {
                Some(last) if last.0 == slot => {
                    last.1 |= near;
                    last.2 |= ctx;
                }
                _ => slots.push((slot, near, ctx)),
            }
        }
        Found { slots, saturated }
    }

    /// Calls `f(slot, time)` with every slot whose fingerprint is within
    /// `d` of `fp`, each once (exact).
    fn text_candidates(&self, fp: u64, d: u32, mut f: impl FnMut(u32, i128)) {
        if self.blocks.iter().any(|b| b.buckets.is_empty()) {
            return; // nothing with a text was ever inserted
        }
        let m = self.blocks.len() as u32;
        let r = d / m.max(1);
        let probes: u64 = self
            .blocks
            .iter()
            .map(|b| {
                (0..=r.min(b.width))
                    .map(|i| binomial(b.width, i))
                    .sum::<u64>()
            })
            .sum();
        if probes > PROBE_LIMIT {
            for (slot, &g) in self.fps.iter().enumerate() {
                if g != EMPTY_FINGERPRINT
                    && distance(g, fp) <= d
                    && let Ok(s) = u32::try_from(slot)
                {
                    f(s, self.time_of(s));
                }
            }
            return;
        }
        // Two passes: first every bucket to probe (independent loads the
        // CPU overlaps), then their fingerprints. Probing and scanning in
        // one loop serializes the cache misses and is ~2x slower.
        let mut buckets: Vec<(usize, &Bucket)> = Vec::with_capacity(probes as usize);
        for (j, b) in self.blocks.iter().enumerate() {
            let v = b.value(fp);
            for i in 0..=r.min(b.width) {
                for_each_mask(b.width, i, |mask| {
                    if let Some(bucket) = b.buckets.get(v ^ mask)
                        && !bucket.entries.is_empty()
                    {
                        buckets.push((j, bucket));
                    }
                });
            }
        }
        // A match is in every block's probes where it differs from `fp`
        // in at most `r` bits; it is reported from the first such block
        // only, so that nothing downstream has to remove duplicates.
        for (j, bucket) in buckets {
            let earlier = self.blocks.get(..j).unwrap_or_default();
            for e in &bucket.entries {
                let x = e.fp ^ fp;
                if x.count_ones() <= d && !earlier.iter().any(|b| at_most_ones(b.value(x), r)) {
                    let t = if e.t == FAR_TIME {
                        self.time_of(e.slot)
                    } else {
                        i128::from(e.t)
                    };
                    f(e.slot, t);
                }
            }
        }
    }

    /// Slots of the same person (sorted), at most `limit` per key, newest
    /// first; and whether a key hit the limit.
    fn person_slots<'k>(
        &self,
        keys: impl Iterator<Item = &'k str>,
        t: i128,
        window: i128,
        limit: usize,
    ) -> (Vec<u32>, bool) {
        let mut frontier: Vec<&str> = Vec::new();
        for k in keys.filter_map(usable_key) {
            if frontier.len() == MAX_PERSON_KEYS {
                break;
            }
            if !frontier.contains(&k) {
                frontier.push(k);
            }
        }
        let mut seen: HashSet<u32, BuildSlotHasher> = HashSet::default();
        let mut saturated = false;
        let mut i = 0;
        while let Some(&key) = frontier.get(i) {
            i += 1;
            let Some(list) = self.by_key.get(key) else {
                continue;
            };
            let to = t.saturating_add(window);
            let newest = if list.back().is_none_or(|&(at, _)| at <= to) {
                list.len()
            } else {
                list.partition_point(|&(at, _)| at <= to)
            };
            for (taken, j) in (0..newest).rev().enumerate() {
                let Some(&(at, slot)) = list.get(j) else {
                    break;
                };
                if at < t.saturating_sub(window) {
                    break;
                }
                if taken == limit {
                    saturated = true;
                    break;
                }
                if !seen.insert(slot) {
                    continue;
                }
                let Some(s) = self.stored(slot) else { continue };
                for k in s.keys.iter() {
                    if frontier.len() < MAX_PERSON_KEYS && !frontier.contains(&&**k) {
                        frontier.push(k);
                    }
                }
            }
        }
        let mut seen: Vec<u32> = seen.into_iter().collect();
        seen.sort_unstable();
        (seen, saturated)
    }
}

impl Stored {
    fn view(&self, slot: u32) -> View {
        View {
            slot: Some(slot),
            t: self.t,
            fp: self.fp,
            category: Sym::of(&self.category),
            product: Sym::of(&self.product),
            location: Sym::of(&self.location),
        }
    }
}

/// Whether `v` has at most `r` bits set.
fn at_most_ones(v: usize, r: u32) -> bool {
    match r {
        0 => v == 0,
        1 => v & v.wrapping_sub(1) == 0,
        _ => v.count_ones() <= r,
    }
}

/// Inserts an entry into a list kept in (time, slot) order; usually at
/// the end, since complaints arrive in time order.
fn insert_sorted<T: Timed>(list: &mut VecDeque<T>, item: T) {
    let key = item.key();
    if list.back().is_none_or(|last| last.key() <= key) {
        list.push_back(item);
        return;
    }
    let pos = list.partition_point(|x| x.key() <= key);
    list.insert(pos, item);
}

/// Removes the entry of `slot` (received at `t`) from the list under
/// `key`, dropping the list when it empties; usually at the front, since
/// eviction goes oldest first.
fn remove_sorted<K, Q, S, T>(map: &mut HashMap<K, VecDeque<T>, S>, key: &Q, t: i128, slot: u32)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
    S: std::hash::BuildHasher,
    T: Timed,
{
    let empty = match map.get_mut(key) {
        Some(list) => {
            let target = (t, slot);
            let pos = list.partition_point(|x| x.key() < target);
            if list.get(pos).is_some_and(|x| x.key() == target) {
                list.remove(pos);
            } else if let Some(p) = list.iter().position(|x| x.key().1 == slot) {
                // Not where the order says: still never leave it behind.
                list.remove(p);
            }
            list.is_empty()
        }
        None => false,
    };
    if empty {
        map.remove(key);
    }
}

/// Hasher of the maps keyed by slot numbers and interned addresses,
/// values no complainant chooses: a multiply and a finalizer instead of
/// SipHash, whose protection against chosen collisions buys nothing here.
/// (Maps keyed by ids and identity keys, which come from outside, keep
/// SipHash.)
#[derive(Default, Clone, Copy)]
struct SlotHasher(u64);

type BuildSlotHasher = std::hash::BuildHasherDefault<SlotHasher>;

impl std::hash::Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

fn binomial(n: u32, k: u32) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut r: u64 = 1;
    for i in 0..k {
        r = r.saturating_mul(u64::from(n - i)) / u64::from(i + 1);
    }
    r
}

/// Calls `f` with every `width`-bit mask with exactly `ones` bits set
/// (Gosper's hack). `width` ≤ 16.
fn for_each_mask(width: u32, ones: u32, mut f: impl FnMut(usize)) {
    if ones == 0 {
        f(0);
        return;
    }
    if ones > width || width > 16 {
        return;
    }
    let limit: u32 = 1 << width;
    let mut x: u32 = (1 << ones) - 1;
    while x < limit {
        f(x as usize);
        let c = x & x.wrapping_neg();
        let r = x + c;
        x = (((r ^ x) >> 2) / c) | r;
    }
}

/// Strings shared by many entries (categories, products, places), kept once.
#[derive(Debug, Default)]
struct Interner {
    set: HashSet<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(a.clone());
        a
    }

    /// The symbol of a string: [`Sym::UNKNOWN`] if no entry has it.
    fn sym(&self, s: &str) -> Sym {
        if s.is_empty() {
            return Sym::EMPTY;
        }
        self.set.get(s).map_or(Sym::UNKNOWN, Sym::of)
    }

    /// Drops the interned copy when `a` was its last user.
    fn release(&mut self, a: Arc<str>) {
        if Arc::strong_count(&a) == 2 {
            self.set.remove(&*a);
        }
    }
}

// ---------------------------------------------------------------------------
// Counting people
// ---------------------------------------------------------------------------

/// Number of different people among the matches: two matches sharing an
/// identity key are one person, transitively (phone A on one, phone A and
/// email B on another, email B on a third: one person); a match without
/// keys (anonymous) is one person of its own.
pub fn distinct_complainants(matches: &[Match]) -> usize {
    let mut people: KeyUnion<&str> = KeyUnion::default();
    for m in matches {
        people.add(m.identity_keys.iter().filter_map(|k| usable_key(k)));
    }
    people.people()
}

/// Union-find over identity keys; anonymous complaints counted apart.
struct KeyUnion<K, S = std::hash::RandomState> {
    ids: HashMap<K, usize, S>,
    parent: Vec<usize>,
    anonymous: usize,
}

impl<K, S: Default> Default for KeyUnion<K, S> {
    fn default() -> Self {
        KeyUnion {
            ids: HashMap::default(),
            parent: Vec::new(),
            anonymous: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq, S: std::hash::BuildHasher> KeyUnion<K, S> {
    /// Adds the keys of one complaint (one person).
    fn add(&mut self, keys: impl IntoIterator<Item = K>) {
        let mut first: Option<usize> = None;
        for k in keys {
            let next = self.parent.len();
            let id = *self.ids.entry(k).or_insert(next);
            if id == next {
                self.parent.push(id);
            }
            match first {
                None => first = Some(id),
                Some(f) => self.union(f, id),
            }
        }
        if first.is_none() {
            self.anonymous += 1;
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while let Some(&p) = self.parent.get(x) {
            if p == x {
                break;
            }
            let gp = self.parent.get(p).copied().unwrap_or(p);
            if let Some(slot) = self.parent.get_mut(x) {
                *slot = gp;
            }
            x = p;
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb
            && let Some(slot) = self.parent.get_mut(ra)
        {
            *slot = rb;
        }
    }

    /// People so far: key groups plus anonymous complaints.
    fn people(&mut self) -> usize {
        let n = self.parent.len();
        let roots = (0..n).filter(|&i| self.find(i) == i).count();
        roots + self.anonymous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_enumerate_every_combination_once() {
        for width in [1u32, 5, 12, 13, 16] {
            for ones in 0..=3u32 {
                let mut seen = Vec::new();
                for_each_mask(width, ones, |m| seen.push(m));
                assert_eq!(
                    seen.len() as u64,
                    binomial(width, ones),
                    "w={width} k={ones}"
                );
                assert!(seen.iter().all(|&m| m < 1 << width));
                assert!(seen.iter().all(|&m| m.count_ones() == ones));
                let mut dedup = seen.clone();
                dedup.sort_unstable();
                dedup.dedup();
                assert_eq!(dedup.len(), seen.len());
            }
        }
    }

    #[test]
    fn feature_hash_is_pinned() {
        // FNV-1a 64 of the empty input is its offset basis; the finalizer
        // of 0 is 0. Pins both halves of the stored-fingerprint definition.
        assert_eq!(Fnv::new().0, 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv::new();
        h.byte(b'a');
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(mix(0), 0);
        assert_ne!(mix(1), 1);
    }

    #[test]
    fn blocks_cover_all_64_bits() {
        for m in [0u32, 4, 5, 6, 7, 9, 16, 40] {
            let idx = Index::with_blocks(Config::default(), m);
            let total: u32 = idx.blocks.iter().map(|b| b.width).sum();
            assert_eq!(total, 64, "m={m}");
            assert!(idx.blocks.iter().all(|b| b.width <= 16));
            let last = idx.blocks.last().map(|b| b.shift + b.width);
            assert_eq!(last, Some(64));
        }
    }

    /// The fingerprint as first written: a signed counter per bit and
    /// each feature hashed on its own (FNV-1a over tag and bytes).
    fn fingerprint_reference(tokens: &[&str]) -> u64 {
        let hash = |tag: u8, a: &str, b: Option<&str>| {
            let mut h = Fnv::new();
            h.byte(tag);
            for &x in a.as_bytes() {
                h.byte(x.to_ascii_lowercase());
            }
            if let Some(b) = b {
                h.byte(0x1f);
                for &x in b.as_bytes() {
                    h.byte(x.to_ascii_lowercase());
                }
            }
            mix(h.0)
        };
        let mut acc = [0i64; 64];
        let mut add = |h: u64| {
            for (i, c) in acc.iter_mut().enumerate() {
                *c += ((h >> i) & 1) as i64 * 2 - 1;
            }
        };
        let mut prev: Option<&str> = None;
        let mut n = 0;
        for token in tokens {
            let token = token.trim();
            if !token.chars().any(char::is_alphanumeric)
                || is_stop_lower(&token.to_ascii_lowercase())
            {
                continue;
            }
            if n == MAX_FINGERPRINT_TOKENS {
                break;
            }
            add(hash(TAG_UNIGRAM, token, None));
            if let Some(p) = prev {
                add(hash(TAG_BIGRAM, p, Some(token)));
            }
            prev = Some(token);
            n += 1;
        }
        if n == 0 {
            return EMPTY_FINGERPRINT;
        }
        (0..64).filter(|&i| acc[i] > 0).fold(0, |fp, i| fp | 1 << i)
    }

    /// The stop list as first written (a string comparison per word).
    fn is_stop_lower(t: &str) -> bool {
        STOP_WORDS.contains(&t)
    }

    #[test]
    fn fingerprint_words_is_the_fingerprint_as_first_defined() {
        let texts = [
            "物业管理处乱收费，电梯坏了三个月没人修，我们要投诉！",
            "The parcel was NOT delivered; the courier said it was, but I never got it.",
            "iPhone14屏幕坏了，Apple Store说要等两周，THE WORST service ever",
            "😡😡😡 ！！！",
            "",
            "的 了 是 the a an",
        ];
        for text in texts {
            let tokens = crate::text::tokens(text);
            let strs: Vec<&str> = tokens.iter().map(String::as_str).collect();
            assert_eq!(fingerprint(&tokens), fingerprint_reference(&strs), "{text}");
            assert_eq!(
                fingerprint_words(strs.iter().copied()),
                fingerprint(&tokens)
            );
        }
        // Tokens as a caller may pass them: padded, upper-case, without
        // any letter, stop words in capitals, a non-ASCII capital.
        let odd = [
            " 快递 ", "THE", "Parcel", "!!", "", "\t", "ÉCOLE", "Лифт", "没有", "又",
        ];
        assert_eq!(fingerprint_words(odd), fingerprint_reference(&odd));
        // Past the token limit, and past 255 features (the counters'
        // flush), with ties between set and clear bits.
        let words: Vec<String> = (0..MAX_FINGERPRINT_TOKENS + 50)
            .map(|i| format!("w{}", i % 700))
            .collect();
        let strs: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(fingerprint(&words), fingerprint_reference(&strs));
        assert_ne!(fingerprint(&words), EMPTY_FINGERPRINT);
    }

    #[test]
    fn bit_counts_set_a_bit_only_on_a_strict_majority() {
        let mut c = BitCounts::default();
        // Bit 0 in 2 of 4 (a tie: clear), bit 1 in 3 of 4, bit 63 in 4.
        for h in [0b11u64 | 1 << 63, 0b11 | 1 << 63, 0b10 | 1 << 63, 1 << 63] {
            c.add(h);
        }
        assert_eq!(c.majority(), 0b10 | 1 << 63);
        // 600 hashes: counters flushed twice on the way.
        let mut c = BitCounts::default();
        for i in 0..600u64 {
            c.add(if i % 3 == 0 { u64::MAX } else { 1 << (i % 64) });
        }
        // Bit i: 200 all-ones hashes, plus about 6 of the rest; 600 total.
        assert_eq!(c.majority(), 0);
        let mut c = BitCounts::default();
        for i in 0..601u64 {
            c.add(if i % 2 == 0 { u64::MAX } else { 0 });
        }
        assert_eq!(c.majority(), u64::MAX); // 301 of 601
    }

    /// The text lookup with a per-source limit, by brute force: every live
    /// slot within the distance and window, newest first (ties: higher
    /// slot first), the first `limit` that pass the filters.
    fn limited_reference(index: &Index, q: &View, window: i128, d: u32, limit: usize) -> Found {
        let mut cands: Vec<(i128, u32)> = (0..index.meta.len() as u32)
            .filter(|&slot| {
                let fp = index.fps[slot as usize];
                index.meta[slot as usize].live
                    && fp != EMPTY_FINGERPRINT
                    && distance(fp, q.fp) <= d
                    && within(index.meta[slot as usize].t, q.t, window)
            })
            .map(|slot| (index.meta[slot as usize].t, slot))
            .collect();
        cands.sort_unstable_by(|a, b| b.cmp(a));
        let mut slots = Vec::new();
        let mut saturated = false;
        for (_, slot) in cands {
            if slots.len() == limit {
                saturated = true;
                break;
            }
            let m = &index.meta[slot as usize];
            let category_ok =
                q.category.is_empty() || m.category.is_empty() || q.category == m.category;
            if category_ok
                && Some(slot) != q.slot
                && !conflict(q.product, m.product)
                && !conflict(q.location, m.location)
            {
                slots.push((slot, true, false));
            }
        }
        slots.sort_unstable();
        Found { slots, saturated }
    }

    #[test]
    fn a_limited_lookup_takes_the_newest_matches_that_pass() {
        let mut state = 0x1234_5678_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix(state)
        };
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut index = Index::default();
        let centres = [next(), next(), next()];
        for i in 0..900u64 {
            // A few clusters (hundreds of near-duplicates each, as on a hot
            // topic), many receipt times shared by several complaints,
            // and categories, products and places that filter some out.
            let centre = centres[(i % 3) as usize];
            let noise = next() & next() & next() & next();
            index.insert(Entry {
                id: format!("c{i}"),
                at: t0 + Duration::hours((i / 4 * 5) as i64), // 47 days
                identity_keys: vec![format!("phone:{}", i % 50)],
                fingerprint: centre ^ noise,
                category: ["a", "b", ""][(next() % 3) as usize].into(),
                product: ["", "p1", "p2"][(next() % 3) as usize].into(),
                location: ["", "l1", "l2"][(next() % 3) as usize].into(),
            });
            if i % 11 == 0 {
                index.remove(&format!("c{}", i / 2));
            }
        }
        let window = Duration::days(30).whole_nanoseconds();
        for k in 0..60u64 {
            let at = t0 + Duration::hours((next() % 1200) as i64);
            let own = format!("c{}", next() % 900);
            let view = index.view_of(
                (k % 2 == 0).then_some(own.as_str()),
                at,
                centres[(k % 3) as usize] ^ (next() & next() & next()),
                ["a", "b", "", "zz"][(k % 4) as usize],
                ["", "p1", "p2"][(next() % 3) as usize],
                ["", "l1", "l2"][(next() % 3) as usize],
            );
            for limit in [0usize, 1, 3, 10, 64, 500, usize::MAX] {
                for d in [3u32, 8, 12] {
                    let got = index.similar_slots(&view, window, d, false, limit);
                    let want = limited_reference(&index, &view, window, d, limit);
                    assert_eq!(got.slots, want.slots, "k={k} limit={limit} d={d}");
                    assert_eq!(got.saturated, want.saturated, "k={k} limit={limit} d={d}");
                }
            }
        }
    }

    #[test]
    fn times_beyond_64_bits_are_found_through_the_buckets() {
        use time::macros::datetime;
        let far_past = datetime!(-9999-01-01 0:00 UTC);
        let far_future = datetime!(9999-12-31 23:59:59.999_999_999 UTC);
        let now = datetime!(2026-11-25 12:00 UTC);
        let mut index = Index::default();
        let fp = 0x0123_4567_89ab_cdef;
        for (id, at) in [("past", far_past), ("now", now), ("future", far_future)] {
            index.insert(Entry {
                id: id.into(),
                at,
                identity_keys: Vec::new(),
                fingerprint: fp ^ 0b101, // 2 bits apart: a near-duplicate
                category: String::new(),
                product: String::new(),
                location: String::new(),
            });
        }
        let query = |window| Query {
            id: None,
            fingerprint: fp,
            category: "",
            product: "",
            location: "",
            at: now,
            window,
            max_distance: DEFAULT_MAX_DISTANCE, // block probes, not a scan
            context: false,
            limit: usize::MAX,
        };
        let ids = |found: Vec<Match>| found.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(
            ids(index.similar(&query(Duration::MAX))),
            ["past", "now", "future"]
        );
        assert_eq!(ids(index.similar(&query(Duration::days(30)))), ["now"]);
        // Newest first under a limit: the far future wins.
        let mut limited = query(Duration::MAX);
        limited.limit = 1;
        assert_eq!(ids(index.similar(&limited)), ["future"]);
    }

    #[test]
    fn context_lists_take_the_newest_of_the_same_issue_that_pass() {
        let mut state = 0x0bad_cafe_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix(state)
        };
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut index = Index::default();
        for i in 0..600u64 {
            index.insert(Entry {
                id: format!("c{i}"),
                at: t0 + Duration::hours((i / 3 * 5) as i64),
                identity_keys: Vec::new(),
                fingerprint: next(),
                category: ["a", "b", ""][(next() % 3) as usize].into(),
                product: ["", "p1", "p2"][(next() % 3) as usize].into(),
                location: ["", "l1", "l2"][(next() % 3) as usize].into(),
            });
            if i % 13 == 0 {
                index.remove(&format!("c{}", i / 2));
            }
        }
        let window = Duration::days(30).whole_nanoseconds();
        for k in 0..80u64 {
            let own = format!("c{}", next() % 600);
            let view = index.view_of(
                (k % 2 == 0).then_some(own.as_str()),
                t0 + Duration::hours((next() % 1100) as i64),
                EMPTY_FINGERPRINT, // no text: the context lists alone
                ["a", "b"][(k % 2) as usize],
                ["", "p1", "p2"][(next() % 3) as usize],
                ["", "l1", "l2"][(next() % 3) as usize],
            );
            for limit in [0usize, 1, 5, 40, usize::MAX] {
                let got = index.similar_slots(&view, window, DEFAULT_MAX_DISTANCE, true, limit);
                let mut want: Vec<(u32, bool, bool)> = Vec::new();
                let mut saturated = false;
                for product_list in [true, false] {
                    let own_field = |m: &Meta| if product_list { m.product } else { m.location };
                    let value = if product_list {
                        view.product
                    } else {
                        view.location
                    };
                    if !value.is_known() {
                        continue;
                    }
                    let mut list: Vec<(i128, u32)> = (0..index.meta.len() as u32)
                        .filter(|&s| {
                            let m = &index.meta[s as usize];
                            m.live
                                && m.category == view.category
                                && own_field(m) == value
                                && within(m.t, view.t, window)
                        })
                        .map(|s| (index.meta[s as usize].t, s))
                        .collect();
                    list.sort_unstable_by(|a, b| b.cmp(a));
                    let mut taken = 0;
                    for (_, slot) in list {
                        if taken == limit {
                            saturated = true;
                            break;
                        }
                        let m = &index.meta[slot as usize];
                        if same_context(&view, m)
                            && Some(slot) != view.slot
                            && !conflict(view.product, m.product)
                            && !conflict(view.location, m.location)
                        {
                            if !want.iter().any(|w| w.0 == slot) {
                                want.push((slot, false, true));
                            }
                            taken += 1;
                        }
                    }
                }
                want.sort_unstable();
                assert_eq!(got.slots, want, "k={k} limit={limit}");
                assert_eq!(got.saturated, saturated, "k={k} limit={limit}");
            }
        }
    }
}
