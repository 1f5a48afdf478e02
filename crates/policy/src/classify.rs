//! The classifier: which category of the taxonomy a complaint belongs to,
//! how sure we are, and which words decided it.
//!
//! # Scoring
//!
//! Each category of the policy's [`taxonomy`](crate::taxonomy) lists
//! weighted terms. A complaint is scored against every category:
//!
//! 1. **Terms.** The title, and the body (text, product and location
//!    together, so product and place words count like text) are
//!    [normalized](crate::text::normalize). A term with Chinese characters
//!    matches as a substring of the normalized field (so `没送到` matches
//!    in `一直没送到家`, which jieba cuts as `没/送到家`; segmentation is
//!    not stable enough across contexts to match Chinese on tokens). Any
//!    other term matches on the field's English words: one word, or a
//!    phrase of words that must follow each other exactly (`hung up on
//!    me`; nothing is skipped, so a phrase means what it says), and a
//!    trailing `*` makes the last word a prefix (`deliver*` matches
//!    `delivery`, `delivered`). Apostrophes split words as all punctuation
//!    does: write `doesn't work`, it matches `doesn’t work` and `DOESN'T
//!    WORK`.
//! 2. **Longest match wins.** A match lying strictly inside a longer match
//!    of another term is dropped, whatever category either belongs to:
//!    `快递员态度差` (delivery) silences the `态度差` (staff attitude)
//!    inside it, and `data leak*` (privacy) silences `leak*` (product
//!    quality). This is how a taxonomy says "this phrase means something
//!    else than its words"; within a category it means a phrase should
//!    weigh at least as much as the words inside it. Several terms of one
//!    category matching the very same text (`refund` and `refund*`) count
//!    once, at the highest weight.
//! 3. **Presence, not frequency.** A term counts once per field, so a long
//!    rant repeating one word does not outweigh a precise title. It adds
//!    its weight × [`TITLE_WEIGHT`] when in the title and its weight once
//!    when in the body.
//! 4. **Hint.** When the channel's `category_hint` (a web form drop-down,
//!    an IVR branch) equals one of a category's `hints` or its code
//!    (ignoring case and width), that category gains [`HINT_BOOST`]: the
//!    customer chose it, which outweighs a few words but not a text that
//!    plainly says otherwise.
//!
//! # Confidence
//!
//! With `s` the winner's score and `S` the sum of all categories' scores:
//!
//! ```text
//! confidence = (s / S) × (1 − exp(−s / EVIDENCE_SCALE))
//! ```
//!
//! The first factor is the winner's share of the evidence (1 when no
//! other category matched, ½ for a two-way tie); the second discounts thin
//! evidence (one weak word is not a decision). Both lie in [0, 1], so the
//! confidence does; it rises with the winner's score and falls as rivals
//! score. No match at all is confidence 0.
//!
//! # With a learned model
//!
//! A policy with `classifier_training` (a JSONL file of labeled
//! complaints, see `docs/policy.md`) also has a naive Bayes model
//! ([`crate::bayes`], built by [`Classifier::with_training`]). Keywords
//! are what the policy's author thought of; the model has learned how
//! people actually word each category. The two are combined as naive
//! Bayes with the keyword score as one more feature: with `log P(c)` the
//! model's (tempered) log-posterior of category `c` and `s(c)` its keyword
//! score (terms and hint, as above),
//!
//! ```text
//! P(c) = softmax( log P_model(c) + KEYWORD_WEIGHT × s(c) )
//! ```
//!
//! The most probable category wins and its probability is the confidence:
//! in [0, 1], rising with the winner's keyword score and model
//! probability, falling as rivals gain either. `scores` then lists these
//! probabilities (those below [`MIN_SCORE`] left out). A category the
//! training set has no sample of gets the model's lowest log-probability
//! (no vote, no veto), so it can still win on its keywords. When the model
//! abstains (no feature of the complaint is in its vocabulary) the
//! keywords decide alone, exactly as without a model, and `scores` lists
//! each category's keyword confidence (the formula above). The
//! explanation lists the winner's keyword terms, then the model's
//! strongest reasons, `model: 快递 +2.1, 没到 +1.7`: the features that
//! most favour the winner over the model's runner-up, each with its share
//! of the model's log-odds between the two (tempered, so on the scale
//! of `KEYWORD_WEIGHT × s`).
//!
//! [`KEYWORD_WEIGHT`] and the model's options ([`crate::bayes::Options`])
//! were chosen by 10-fold cross-validation on the training set
//! (`policies/testdata/classify-train.jsonl`, 600 complaints): 84.8 %
//! against 75.2 % for the keywords alone on the same complaints (which the
//! keywords were not written from). Accuracy is flat for weights of
//! 0.75–1.5 at temperature 4. The development set (`classify-dev.jsonl`,
//! 120) cannot tell the weights apart: the keywords were written from it
//! and score 99.2 % there, the combination 98.3 %. Trained on all 600, the
//! default policy scores 91.8 % on the held-out set (`classify.jsonl`, 340
//! complaints, measured once after every choice was made), against 81.5 %
//! for its keywords alone.
//!
//! # Triage
//!
//! Below the policy's threshold — and always when nothing matched — the
//! category is [`TRIAGE`]: a person in the triage department decides. The
//! scores are still reported so that person sees the best guesses. `other`
//! is a real category, chosen when its own terms (suggestions, inquiries)
//! win, never as a fallback.
//!
//! # Cost
//!
//! Terms are compiled into two character tries (Chinese substrings,
//! English words), so one pass over each field finds every match however
//! large the taxonomy; each trie's edges are laid out in hash tables (the
//! root's own, small enough for the L1 cache, and the rest behind a bit
//! filter), so that a step of the walk costs a probe, not a binary search
//! among hundreds of children. With the default taxonomy (~6,900 terms, built in
//! ~9 ms) a 146-character Chinese complaint with title, product and place
//! classifies in ~8 µs and a 270-character English one in ~9 µs (release
//! build, one core). No jieba: Chinese terms need only the normalized text.
//!
//! The model adds jieba and its own table lookups: trained on the default
//! training set (600 complaints, ~30 ms, 4,759 features, ~0.5 MB), its
//! posterior for a 130-character Chinese complaint with a title takes
//! ~8.7 µs (115,000/s) and for a 220-character English one ~4.4 µs; the
//! whole combined classification, explanation included, ~19 µs and
//! ~13 µs (52,000/s and 76,000/s; release build, one core). A caller that
//! also needs the words (routing, for the similarity fingerprint) prepares
//! the complaint once ([`Prepared`]) and passes it to
//! [`Classifier::classify_prepared`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::bayes::{self, NaiveBayes, Posterior};
use crate::taxonomy::Category;
use crate::text;

/// The category of a complaint the classifier is not sure about; it goes
/// to the triage department. Reserved: no taxonomy category may use it.
pub const TRIAGE: &str = "triage";

/// How much more a term counts in the title than in the body: people put
/// the point of the complaint in the subject line.
pub const TITLE_WEIGHT: f64 = 2.0;

/// Score added to a category the channel's `category_hint` points at.
pub const HINT_BOOST: f64 = 6.0;

/// The score at which evidence counts as substantial: a winner scoring
/// this much alone has confidence 1 − 1/e ≈ 0.63.
pub const EVIDENCE_SCALE: f64 = 3.0;

/// How much one point of keyword score counts against the learned model:
/// it adds this much to a category's log-odds (in nats of the model's
/// tempered posterior; see the module docs). Chosen by cross-validation on
/// the training set.
pub const KEYWORD_WEIGHT: f64 = 1.25;

/// With a model, categories whose combined probability is below this are
/// left out of [`Classification::scores`] (noise, never a winner).
pub const MIN_SCORE: f64 = 0.001;

/// How many of the model's features the explanation lists.
pub const MODEL_TERMS: usize = 3;

/// What the classifier reads of a complaint. Borrowed, so that routing
/// classifies a complaint without copying it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Input<'a> {
    /// Subject line, if the channel has one (email subject, form title).
    pub title: &'a str,
    /// The complaint itself.
    pub text: &'a str,
    /// The channel's pre-classification (form drop-down, IVR branch).
    pub category_hint: &'a str,
    /// Product or service named by the complainant.
    pub product: &'a str,
    /// Place (store, site, address) named by the complainant.
    pub location: &'a str,
}

/// A complaint read once for everything that reads its text: every field
/// [normalized](crate::text::normalize) and, for the learned model and
/// the similarity fingerprint, cut into words. Routing prepares each
/// complaint once and hands it to the classifier
/// ([`Classifier::classify_prepared`]) and to
/// [`crate::similar::fingerprint_words`]; segmenting is most of what
/// either would otherwise spend on its own copy.
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    input: Input<'a>,
    title: text::Segmented,
    text: text::Segmented,
    product: text::Segmented,
    location: text::Segmented,
    hint: String,
}

impl<'a> Prepared<'a> {
    /// Every field normalized and segmented.
    pub fn new(input: &Input<'a>) -> Self {
        let mut prepared = Self::normalized(input);
        for field in [
            &mut prepared.title,
            &mut prepared.text,
            &mut prepared.product,
            &mut prepared.location,
        ] {
            field.segment();
        }
        prepared
    }

    /// Every field normalized, none segmented: enough for keyword
    /// matching. A reader that needs words segments on its own.
    pub fn normalized(input: &Input<'a>) -> Self {
        Self {
            input: *input,
            title: text::Segmented::normalized_only(input.title),
            text: text::Segmented::normalized_only(input.text),
            product: text::Segmented::normalized_only(input.product),
            location: text::Segmented::normalized_only(input.location),
            hint: text::normalize(input.category_hint),
        }
    }

    /// The complaint as given.
    pub fn input(&self) -> &Input<'a> {
        &self.input
    }

    /// The title.
    pub fn title(&self) -> &text::Segmented {
        &self.title
    }

    /// The text.
    pub fn text(&self) -> &text::Segmented {
        &self.text
    }

    /// The product.
    pub fn product(&self) -> &text::Segmented {
        &self.product
    }

    /// The location.
    pub fn location(&self) -> &text::Segmented {
        &self.location
    }

    /// The category hint, normalized.
    pub fn hint(&self) -> &str {
        &self.hint
    }
}

/// The classifier's decision with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The winning category's code, or [`TRIAGE`].
    pub category: String,
    /// How sure the classifier is, in [0, 1] (see the module docs).
    pub confidence: f64,
    /// Whether the confidence fell below the threshold, so `category` is
    /// [`TRIAGE`].
    pub triage: bool,
    /// Every category that scored, best first (ties in taxonomy order):
    /// keyword scores; with a model, probabilities (see the module docs).
    pub scores: Vec<(String, f64)>,
    /// The terms of the best-scoring category that matched, strongest
    /// first, as written in the policy (`hint:…` for a matching hint);
    /// with a model, last, its reasons (`model: 包裹 +2.1, 路上 +0.9`).
    pub terms: Vec<String>,
}

/// How a term matches.
#[derive(Debug)]
enum Pattern {
    /// Normalized text containing Chinese: a substring of the field
    /// (found through the classifier's Chinese trie).
    Han,
    /// English words in order; the last one is a prefix if `prefix`.
    Words { words: Vec<String>, prefix: bool },
}

#[derive(Debug)]
struct Term {
    /// As written in the policy, for explanations.
    source: String,
    category: usize,
    weight: f64,
    pattern: Pattern,
}

/// A character trie over term keys: walking it along the text finds every
/// term starting at a position in one pass, however many terms there are.
#[derive(Debug, Default)]
struct Trie {
    nodes: Vec<Node>,
    /// The same trie for walking, built by [`Trie::seal`] once every term
    /// is in (until then, walks search `nodes`).
    sealed: Option<Sealed>,
}

#[derive(Debug, Default)]
struct Node {
    /// Sorted by character, for binary search.
    children: Vec<(char, u32)>,
    /// Terms whose key ends exactly here.
    exact: Vec<u32>,
    /// One-word prefix terms whose prefix ends here.
    prefix: Vec<u32>,
}

/// A trie laid out for walking. The walk starts at every character of the
/// text, so its steps are most of the classifier's time; a step is one
/// probe of a hash table of edges (the root's own table is small enough to
/// stay in the L1 cache: the default taxonomy's Chinese terms start with
/// 816 different characters, where a binary search costs ten
/// unpredictable branches), and the edge says whether terms end at its
/// child, so the term lists, packed in one array, are read only then.
#[derive(Debug, Default)]
struct Sealed {
    root: EdgeTable,
    edges: EdgeTable,
    /// Per node, its exact terms and its prefix terms as ranges of `terms`.
    spans: Vec<[(u32, u32); 2]>,
    terms: Vec<u32>,
}

/// One step of a walk: the child reached and what it holds.
#[derive(Debug, Clone, Copy)]
struct Step {
    node: usize,
    /// Terms end at the child (its `exact` list is not empty).
    exact: bool,
    /// Prefix terms end at the child.
    prefix: bool,
    /// The walk can go on from the child.
    children: bool,
}

/// Open-addressing table (parent, char) → child with [`Step`]'s flags, one
/// `u64` per slot: `(parent << 21 | char) + 1` in the high 41 bits (0 in
/// an empty slot), the child in the next 20 and 3 flag bits. A power of
/// two of slots, at most half full, probed linearly.
#[derive(Debug, Default)]
struct EdgeTable {
    slots: Vec<u64>,
    shift: u32,
    /// A bit per hash of an edge's key (Bloom filter, one hash), checked
    /// before the table: most steps past the root find no edge, and the
    /// filter (16 KB) answers most of them from the L1 cache, where the
    /// table (a quarter megabyte for the default taxonomy) would miss.
    /// Empty for a table that has none.
    filter: Vec<u64>,
}

/// Bits of an [`EdgeTable`]'s filter, as a power of two.
const FILTER_BITS: u32 = 17;

const EXACT: u64 = 1;
const PREFIX: u64 = 2;
const CHILDREN: u64 = 4;
/// Nodes a sealed trie may have: with node numbers below 2^19, a key
/// (`parent << 21 | char`, plus one) fits the slot's 41 high bits and a
/// child its 20 middle bits.
const MAX_SEALED_NODES: usize = 1 << 19;

impl EdgeTable {
    /// The table of the given edges `(parent, char, child)` of `nodes`,
    /// with a filter if `filter`.
    fn new(nodes: &[Node], edges: &[(usize, char, u32)], filter: bool) -> Self {
        let size = (edges.len() * 2).next_power_of_two().max(16);
        let mut table = Self {
            slots: vec![0; size],
            shift: 64 - size.trailing_zeros(),
            filter: if filter {
                vec![0; (1 << FILTER_BITS) / 64]
            } else {
                Vec::new()
            },
        };
        let mask = size - 1;
        for &(parent, c, child) in edges {
            let Some(target) = nodes.get(child as usize) else {
                continue;
            };
            let flags = if target.exact.is_empty() { 0 } else { EXACT }
                | if target.prefix.is_empty() { 0 } else { PREFIX }
                | if target.children.is_empty() {
                    0
                } else {
                    CHILDREN
                };
            let key = Self::key(parent, c);
            if !table.filter.is_empty() {
                let bit = Self::filter_bit(key);
                table.filter[bit / 64] |= 1 << (bit % 64);
            }
            let mut i = table.home(key);
            while table.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            table.slots[i] = (key + 1) << 23 | u64::from(child) << 3 | flags;
        }
        table
    }

    fn key(parent: usize, c: char) -> u64 {
        (parent as u64) << 21 | u64::from(c)
    }

    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    fn filter_bit(key: u64) -> usize {
        (key.wrapping_mul(0xd6e8_feb8_6659_fd93) >> (64 - FILTER_BITS)) as usize
    }

    fn get(&self, parent: usize, c: char) -> Option<Step> {
        let mask = self.slots.len().checked_sub(1)?;
        let key = Self::key(parent, c);
        if !self.filter.is_empty() {
            let bit = Self::filter_bit(key);
            if self
                .filter
                .get(bit / 64)
                .is_none_or(|w| w & 1 << (bit % 64) == 0)
            {
                return None;
            }
        }
        let mut i = self.home(key);
        // At most half full: an empty slot ends every probe sequence.
        loop {
            let slot = *self.slots.get(i)?;
            if slot >> 23 == key + 1 {
                return Some(Step {
                    node: ((slot >> 3) & 0xf_ffff) as usize,
                    exact: slot & EXACT != 0,
                    prefix: slot & PREFIX != 0,
                    children: slot & CHILDREN != 0,
                });
            }
            if slot == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }
}

impl Trie {
    fn new() -> Self {
        Self {
            nodes: vec![Node::default()],
            sealed: None,
        }
    }

    /// Lays the trie out for walking; call after the last insert. A trie
    /// too large to seal (half a million nodes) is walked unsealed.
    fn seal(&mut self) {
        if self.nodes.len() > MAX_SEALED_NODES {
            self.sealed = None;
            return;
        }
        let mut root = Vec::new();
        let mut edges = Vec::new();
        let mut spans = Vec::with_capacity(self.nodes.len());
        let mut terms = Vec::new();
        for (parent, node) in self.nodes.iter().enumerate() {
            for &(c, child) in &node.children {
                if parent == 0 {
                    root.push((parent, c, child));
                } else {
                    edges.push((parent, c, child));
                }
            }
            let mut span = |list: &[u32]| {
                let start = terms.len() as u32;
                terms.extend_from_slice(list);
                (start, list.len() as u32)
            };
            spans.push([span(&node.exact), span(&node.prefix)]);
        }
        self.sealed = Some(Sealed {
            root: EdgeTable::new(&self.nodes, &root, false),
            edges: EdgeTable::new(&self.nodes, &edges, true),
            spans,
            terms,
        });
    }

    fn insert(&mut self, key: &str, term: u32, prefix: bool) {
        // A sealed layout would no longer describe the nodes.
        self.sealed = None;
        let mut node = 0usize;
        for c in key.chars() {
            node = match self.nodes[node]
                .children
                .binary_search_by_key(&c, |&(k, _)| k)
            {
                Ok(i) => self.nodes[node].children[i].1 as usize,
                Err(i) => {
                    let child = self.nodes.len();
                    self.nodes.push(Node::default());
                    // Node count is bounded by the taxonomy's total term
                    // length, far below u32::MAX (checked in `new`).
                    self.nodes[node].children.insert(i, (c, child as u32));
                    child
                }
            };
        }
        let node = &mut self.nodes[node];
        if prefix {
            node.prefix.push(term);
        } else {
            node.exact.push(term);
        }
    }

    /// The step from `node` along `c`, if the trie has it.
    fn step(&self, node: usize, c: char) -> Option<Step> {
        if let Some(sealed) = &self.sealed {
            let table = if node == 0 {
                &sealed.root
            } else {
                &sealed.edges
            };
            return table.get(node, c);
        }
        let children = &self.nodes.get(node)?.children;
        let i = children.binary_search_by_key(&c, |&(k, _)| k).ok()?;
        let child = children[i].1 as usize;
        let target = self.nodes.get(child)?;
        Some(Step {
            node: child,
            exact: !target.exact.is_empty(),
            prefix: !target.prefix.is_empty(),
            children: !target.children.is_empty(),
        })
    }

    /// Terms ending exactly at `node` (`which` 0) or prefix terms ending
    /// there (`which` 1).
    fn terms(&self, node: usize, which: usize) -> &[u32] {
        if let Some(sealed) = &self.sealed {
            return sealed
                .spans
                .get(node)
                .and_then(|spans| spans.get(which))
                .and_then(|&(start, len)| {
                    sealed
                        .terms
                        .get(start as usize..start as usize + len as usize)
                })
                .unwrap_or_default();
        }
        self.nodes
            .get(node)
            .map_or(&[], |n| if which == 0 { &n.exact } else { &n.prefix })
    }

    /// Terms ending exactly at `node`.
    fn exact(&self, node: usize) -> &[u32] {
        self.terms(node, 0)
    }

    /// Prefix terms ending at `node`.
    fn prefix(&self, node: usize) -> &[u32] {
        self.terms(node, 1)
    }
}

/// A classifier compiled from a taxonomy: build it once per policy
/// version, then classify any number of complaints (it is `Sync`).
#[derive(Debug)]
pub struct Classifier {
    codes: Vec<String>,
    threshold: f64,
    terms: Vec<Term>,
    han: Trie,
    /// Keyed by the first English word of each term.
    words: Trie,
    /// Normalized hint (and code) → categories it points at.
    hints: HashMap<String, Vec<usize>>,
    /// The learned component, when the policy has training data.
    model: Option<Model>,
}

/// A naive Bayes model attached to a classifier.
#[derive(Debug)]
struct Model {
    bayes: NaiveBayes,
    /// Model class (index into `bayes.codes()`) → category index.
    category: Vec<usize>,
    /// Log-odds of one point of keyword score (see [`KEYWORD_WEIGHT`]).
    weight: f64,
}

impl Model {
    /// The combined probability of each category (see the module docs):
    /// softmax of `log P_model(c) + weight × keyword score(c)`.
    fn combine(&self, keyword: &[f64], posterior: &Posterior) -> Vec<f64> {
        // A category the model has no sample of gets its least likely
        // category's log-probability: no vote, and no veto either.
        let least = posterior
            .log_probabilities
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let least = if least.is_finite() { least } else { 0.0 };
        let mut z: Vec<f64> = vec![least; keyword.len()];
        for (&category, &l) in self.category.iter().zip(&posterior.log_probabilities) {
            if let Some(slot) = z.get_mut(category) {
                *slot = l;
            }
        }
        for (slot, &s) in z.iter_mut().zip(keyword) {
            *slot += self.weight * s;
        }
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut p: Vec<f64> = z.iter().map(|&v| (v - max).exp()).collect();
        let total: f64 = p.iter().sum();
        if total > 0.0 && total.is_finite() {
            for v in &mut p {
                *v /= total;
            }
        }
        p
    }

    /// `model: 快递 +2.1, 没到 +1.7`: the features that most favour
    /// category `winner` over the model's best other category, with their
    /// share of the log-odds; `None` when the model does not know the
    /// winner or no feature favours it.
    fn explain(&self, posterior: &Posterior, winner: usize) -> Option<String> {
        let own = self.category.iter().position(|&c| c == winner)?;
        let rival = (0..self.category.len())
            .filter(|&c| c != own)
            .max_by(|&a, &b| {
                posterior.probabilities[a]
                    .total_cmp(&posterior.probabilities[b])
                    .then(b.cmp(&a))
            })?;
        let list = self.bayes.contributions(posterior, own, rival, MODEL_TERMS);
        if list.is_empty() {
            return None;
        }
        let parts: Vec<String> = list
            .iter()
            .map(|(name, c)| format!("{name} +{c:.1}"))
            .collect();
        Some(format!("model: {}", parts.join(", ")))
    }
}

/// Buffers of [`Classifier::find`], reused across a complaint's fields.
struct Scratch<'f> {
    found: Vec<Match>,
    kept: Vec<Match>,
    words: Vec<&'f str>,
}

/// One occurrence of a term in a field: `start..end` in bytes (Chinese)
/// or in words (English).
#[derive(Debug, Clone, Copy)]
struct Match {
    start: usize,
    end: usize,
    term: u32,
}

impl Classifier {
    /// Compiles the taxonomy's terms. `threshold` is the confidence below
    /// which a complaint goes to triage, in [0, 1].
    ///
    /// Every problem is an error naming the category and the term: a
    /// policy that would silently never match is worse than one refused.
    pub fn new(categories: &[Category], threshold: f64) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!(
                "classifier threshold {threshold} is not between 0 and 1"
            ));
        }
        if categories.is_empty() {
            return Err("the taxonomy has no categories".into());
        }
        let mut classifier = Self {
            codes: Vec::with_capacity(categories.len()),
            threshold,
            terms: Vec::new(),
            han: Trie::new(),
            words: Trie::new(),
            hints: HashMap::new(),
            model: None,
        };
        let mut seen = HashMap::new();
        for (index, category) in categories.iter().enumerate() {
            let code = category.code.as_str();
            if code.is_empty() {
                return Err(format!("category #{} has an empty code", index + 1));
            }
            if code == TRIAGE {
                return Err(format!(
                    "category code `{TRIAGE}` is reserved for complaints the classifier leaves to triage"
                ));
            }
            if classifier.codes.iter().any(|c| c == code) {
                return Err(format!("category `{code}` is defined twice"));
            }
            classifier.codes.push(code.to_owned());
            for (source, &weight) in &category.keywords {
                classifier.add_term(index, source, weight, &mut seen)?;
            }
            for hint in category.hints.iter().map(String::as_str).chain([code]) {
                let key = text::normalize(hint);
                if key.is_empty() {
                    return Err(format!(
                        "category `{code}`: hint {hint:?} has no letters or digits"
                    ));
                }
                let targets = classifier.hints.entry(key).or_default();
                if !targets.contains(&index) {
                    targets.push(index);
                }
            }
        }
        if u32::try_from(classifier.terms.len()).is_err()
            || u32::try_from(classifier.han.nodes.len() + classifier.words.nodes.len()).is_err()
        {
            return Err("the taxonomy has too many terms".into());
        }
        classifier.han.seal();
        classifier.words.seal();
        Ok(classifier)
    }

    /// Compiles one term. `seen` maps each category's compiled patterns to
    /// the term that produced them: two spellings that compile to the same
    /// pattern (`Wi-Fi` and `wi fi`) would count
    /// the same words twice, so that is an error.
    fn add_term(
        &mut self,
        category: usize,
        source: &str,
        weight: f64,
        seen: &mut HashMap<(usize, String), String>,
    ) -> Result<(), String> {
        let code = &self.codes[category];
        let fail = |why: &str| Err(format!("category `{code}`, term {source:?}: {why}"));
        if !weight.is_finite() || weight <= 0.0 {
            return fail(&format!("weight {weight} must be a positive number"));
        }
        let trimmed = source.trim();
        let (body, prefix) = match trimmed.strip_suffix('*') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        if body.contains('*') {
            return fail("`*` is only allowed at the end of a term");
        }
        let normalized = text::normalize(body);
        if normalized.is_empty() {
            return fail("the term has no letters or digits");
        }
        let (pattern, key) = if normalized.chars().any(text::is_han) {
            if prefix {
                return fail(
                    "a trailing `*` only applies to English words (Chinese terms already match inside longer text)",
                );
            }
            (Pattern::Han, normalized)
        } else {
            let mut words = Vec::new();
            text::for_each_latin_word(&normalized, |w| words.push(w.to_owned()));
            let Some(first) = words.first() else {
                return fail("the term has no letters or digits");
            };
            if prefix && words.len() == 1 && first.chars().count() < 3 {
                return fail("a prefix term needs at least 3 letters");
            }
            let key = format!("{}{}", words.join(" "), if prefix { "*" } else { "" });
            (Pattern::Words { words, prefix }, key)
        };
        if let Some(first) = seen.get(&(category, key.clone())) {
            return fail(&format!(
                "matches exactly what {first:?} matches (case, width and punctuation are ignored)"
            ));
        }
        let id = u32::try_from(self.terms.len()).map_err(|_| "the taxonomy has too many terms")?;
        match &pattern {
            Pattern::Han => self.han.insert(&key, id, false),
            Pattern::Words { words, prefix } => {
                if let Some(first) = words.first() {
                    self.words.insert(first, id, *prefix && words.len() == 1);
                }
            }
        }
        seen.insert((category, key), source.to_owned());
        self.terms.push(Term {
            source: source.to_owned(),
            category,
            weight,
            pattern,
        });
        Ok(())
    }

    /// A classifier that combines the taxonomy's keywords with a naive
    /// Bayes model trained on `samples` (the policy's
    /// `classifier_training`), with the default [`bayes::Options`] and
    /// [`KEYWORD_WEIGHT`]. Every sample's label must be a category of the
    /// taxonomy: a model that could vote for a category routing does not
    /// know is refused, naming the first such sample.
    pub fn with_training(
        categories: &[Category],
        threshold: f64,
        samples: &[Sample],
    ) -> Result<Self, String> {
        if let Some(sample) = samples
            .iter()
            .find(|s| !categories.iter().any(|c| c.code == s.category.trim()))
        {
            return Err(format!(
                "training sample {:?}: category `{}` is not in the taxonomy",
                sample.id,
                sample.category.trim()
            ));
        }
        let model = NaiveBayes::train(samples, &bayes::Options::default())?;
        Self::with_model(categories, threshold, model, KEYWORD_WEIGHT)
    }

    /// A classifier combining the taxonomy's keywords with an already
    /// trained model; `keyword_weight` (≥ 0) is the log-odds one point of
    /// keyword score is worth against the model (see the module docs; 0
    /// lets the model decide alone whenever it has an opinion). Fails like
    /// [`Classifier::new`], and when the model knows a category the
    /// taxonomy does not.
    pub fn with_model(
        categories: &[Category],
        threshold: f64,
        model: NaiveBayes,
        keyword_weight: f64,
    ) -> Result<Self, String> {
        if !(keyword_weight.is_finite() && keyword_weight >= 0.0) {
            return Err(format!(
                "keyword weight {keyword_weight} must be a number ≥ 0"
            ));
        }
        let mut classifier = Self::new(categories, threshold)?;
        let mut category = Vec::with_capacity(model.codes().len());
        for code in model.codes() {
            match classifier.codes.iter().position(|c| c == code) {
                Some(index) => category.push(index),
                None => {
                    return Err(format!(
                        "the model was trained on category `{code}`, which is not in the taxonomy"
                    ));
                }
            }
        }
        classifier.model = Some(Model {
            bayes: model,
            category,
            weight: keyword_weight,
        });
        Ok(classifier)
    }

    /// The learned model, if the classifier has one.
    pub fn model(&self) -> Option<&NaiveBayes> {
        self.model.as_ref().map(|m| &m.bayes)
    }

    /// The category codes in taxonomy order.
    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    /// The confidence below which complaints go to triage.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Scores the complaint against every category (see the module docs).
    /// Never fails: empty or unreadable input goes to triage.
    pub fn classify(&self, input: &Input<'_>) -> Classification {
        // Only the model reads words: without one, no segmentation.
        let prepared = if self.model.is_some() {
            Prepared::new(input)
        } else {
            Prepared::normalized(input)
        };
        self.classify_prepared(&prepared)
    }

    /// [`Classifier::classify`] of a complaint already prepared (by a
    /// caller that also reads its words, see [`Prepared`]). The same
    /// result, whether or not `prepared` was segmented.
    pub fn classify_prepared(&self, prepared: &Prepared<'_>) -> Classification {
        let input = prepared.input();
        let mut matched = Vec::new();
        let mut scratch = Scratch {
            found: Vec::with_capacity(64),
            kept: Vec::with_capacity(64),
            words: Vec::with_capacity(64),
        };
        // (term, contribution) over all fields, merged below.
        let mut hits: Vec<(u32, f64)> = Vec::new();

        self.find(prepared.title().normalized(), &mut matched, &mut scratch);
        hits.extend(
            dedup_terms(&mut matched)
                .into_iter()
                .map(|t| (t, TITLE_WEIGHT)),
        );

        for part in [prepared.text(), prepared.product(), prepared.location()] {
            self.find(part.normalized(), &mut matched, &mut scratch);
        }
        hits.extend(dedup_terms(&mut matched).into_iter().map(|t| (t, 1.0)));

        let mut scores = vec![0.0f64; self.codes.len()];
        let mut hint_hit = Vec::new();
        if !input.category_hint.is_empty()
            && let Some(targets) = self.hints.get(prepared.hint())
        {
            for &category in targets {
                scores[category] += HINT_BOOST;
                hint_hit.push(category);
            }
        }
        hits.sort_unstable_by_key(|&(term, _)| term);
        let mut merged: Vec<(u32, f64)> = Vec::with_capacity(hits.len());
        for (term, factor) in hits {
            let Some(t) = self.terms.get(term as usize) else {
                continue;
            };
            let contribution = t.weight * factor;
            scores[t.category] += contribution;
            match merged.last_mut() {
                Some((last, sum)) if *last == term => *sum += contribution,
                _ => merged.push((term, contribution)),
            }
        }

        let total: f64 = scores.iter().filter(|&&s| s > 0.0).sum();
        let evidence = |s: f64| {
            if total > 0.0 && s > 0.0 {
                ((s / total) * (1.0 - (-s / EVIDENCE_SCALE).exp())).clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        // The model's view, unless it has nothing to go on.
        let learned = self.model.as_ref().and_then(|model| {
            let posterior = model.bayes.posterior_prepared(prepared);
            (!posterior.abstains()).then_some((model, posterior))
        });
        // With a model, scores are on the confidence's scale: the combined
        // probability, or the keyword evidence alone when the model
        // abstains (which decides exactly as the keywords do).
        let mut floor = 0.0;
        if let Some(model) = &self.model {
            scores = match &learned {
                Some((_, posterior)) => {
                    floor = MIN_SCORE;
                    model.combine(&scores, posterior)
                }
                None => scores.iter().map(|&s| evidence(s)).collect(),
            };
        }
        // Best first; the stable sort keeps taxonomy order among equals.
        let mut order: Vec<usize> = (0..self.codes.len())
            .filter(|&c| scores[c] > floor)
            .collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let winner = order.first().copied();
        let confidence = match (winner, &self.model) {
            (Some(w), Some(_)) => scores[w].clamp(0.0, 1.0),
            (Some(w), None) => evidence(scores[w]),
            (None, _) => 0.0,
        };

        let mut terms = Vec::new();
        if let Some(w) = winner {
            if hint_hit.contains(&w) {
                terms.push(format!("hint:{}", input.category_hint.trim()));
            }
            let mut own: Vec<(u32, f64)> = merged
                .into_iter()
                .filter(|&(t, _)| self.terms[t as usize].category == w)
                .collect();
            own.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            terms.extend(
                own.into_iter()
                    .map(|(t, _)| self.terms[t as usize].source.clone()),
            );
            if let Some((model, posterior)) = &learned
                && let Some(explanation) = model.explain(posterior, w)
            {
                terms.push(explanation);
            }
        }

        let triage = winner.is_none() || confidence < self.threshold;
        Classification {
            category: match winner {
                Some(w) if !triage => self.codes[w].clone(),
                _ => TRIAGE.to_owned(),
            },
            confidence,
            triage,
            scores: order
                .into_iter()
                .map(|c| (self.codes[c].clone(), scores[c]))
                .collect(),
            terms,
        }
    }

    /// Appends every match in one normalized field, after dropping matches
    /// strictly inside longer ones.
    fn find<'f>(&self, field: &'f str, out: &mut Vec<Match>, scratch: &mut Scratch<'f>) {
        let Scratch { found, kept, words } = scratch;
        self.find_han(field, found);
        drop_contained_into(found, &self.terms, kept);
        out.append(found);
        self.find_words(field, found, words);
        drop_contained_into(found, &self.terms, kept);
        out.append(found);
    }

    fn find_han(&self, field: &str, out: &mut Vec<Match>) {
        if self.han.nodes.len() <= 1 {
            return;
        }
        for (start, _) in field.char_indices() {
            let mut node = 0;
            for (offset, c) in field[start..].char_indices() {
                let Some(step) = self.han.step(node, c) else {
                    break;
                };
                node = step.node;
                if step.exact {
                    let end = start + offset + c.len_utf8();
                    for &term in self.han.exact(node) {
                        out.push(Match { start, end, term });
                    }
                }
                if !step.children {
                    break;
                }
            }
        }
    }

    fn find_words<'f>(&self, field: &'f str, out: &mut Vec<Match>, words: &mut Vec<&'f str>) {
        if self.words.nodes.len() <= 1 {
            return;
        }
        words.clear();
        text::for_each_latin_word(field, |w| words.push(w));
        for (index, word) in words.iter().enumerate() {
            let mut node = Some(0);
            for c in word.chars() {
                let Some(step) = node.and_then(|n| self.words.step(n, c)) else {
                    node = None;
                    break;
                };
                node = Some(step.node);
                if step.prefix {
                    for &term in self.words.prefix(step.node) {
                        out.push(Match {
                            start: index,
                            end: index + 1,
                            term,
                        });
                    }
                }
            }
            let Some(n) = node else { continue };
            for &term in self.words.exact(n) {
                if let Pattern::Words {
                    words: pattern,
                    prefix,
                } = &self.terms[term as usize].pattern
                    && phrase_matches(pattern, *prefix, &words[index..])
                {
                    out.push(Match {
                        start: index,
                        end: index + pattern.len(),
                        term,
                    });
                }
            }
        }
    }
}

/// Whether `text` starts with the phrase `pattern` (last word a prefix if
/// `prefix`).
fn phrase_matches(pattern: &[String], prefix: bool, text: &[&str]) -> bool {
    if text.len() < pattern.len() {
        return false;
    }
    let last = pattern.len() - 1;
    pattern.iter().zip(text).enumerate().all(|(i, (p, w))| {
        if prefix && i == last {
            w.starts_with(p.as_str())
        } else {
            p == w
        }
    })
}

/// Drops every match lying strictly inside a longer match (see the module
/// docs), and of several matches of one category on the same span (a word
/// matched both as `refund` and `refund*`) keeps the heaviest: a piece of
/// text is evidence once. Matches of different categories on the same
/// span all stay: that is two categories sharing a term.
fn drop_contained_into(matches: &mut Vec<Match>, terms: &[Term], kept: &mut Vec<Match>) {
    let key = |m: &Match| {
        terms
            .get(m.term as usize)
            .map_or((usize::MAX, 0.0), |t| (t.category, t.weight))
    };
    // Sorted by start, longest first, every match that could contain
    // another comes before it; a group of equal spans is contained iff an
    // earlier group (different span, start ≤) reaches as far.
    matches.sort_unstable_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.term.cmp(&b.term))
    });
    let mut reach: Option<usize> = None;
    kept.clear();
    let mut i = 0;
    while i < matches.len() {
        let span = (matches[i].start, matches[i].end);
        let j = i + matches[i..]
            .iter()
            .take_while(|m| (m.start, m.end) == span)
            .count();
        let group = &matches[i..j];
        let contained = reach.is_some_and(|r| r >= span.1);
        if !contained {
            for (k, m) in group.iter().enumerate() {
                let (category, weight) = key(m);
                let outweighed = group.iter().enumerate().any(|(o, other)| {
                    let (c, w) = key(other);
                    o != k && c == category && (w > weight || (w == weight && o < k))
                });
                if !outweighed {
                    kept.push(*m);
                }
            }
        }
        reach = Some(reach.map_or(span.1, |r| r.max(span.1)));
        i = j;
    }
    // The kept ones become `matches`; the old buffer is the next `kept`.
    std::mem::swap(matches, kept);
}

/// [`drop_contained_into`] with a buffer of its own.
#[cfg(test)]
fn drop_contained(matches: &mut Vec<Match>, terms: &[Term]) {
    drop_contained_into(matches, terms, &mut Vec::new());
}

/// The distinct terms among `matches`, emptying it.
fn dedup_terms(matches: &mut Vec<Match>) -> Vec<u32> {
    let mut terms: Vec<u32> = matches.drain(..).map(|m| m.term).collect();
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// One labeled complaint of a JSONL evaluation set (see [`load_jsonl`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sample {
    /// Identifies the sample in reports of misclassifications.
    #[serde(deserialize_with = "null_as_empty")]
    pub id: String,
    /// `zh` or `en` (informational).
    #[serde(deserialize_with = "null_as_empty")]
    pub language: String,
    /// The intake channel (informational).
    #[serde(deserialize_with = "null_as_empty")]
    pub channel: String,
    /// See [`Input::title`].
    #[serde(deserialize_with = "null_as_empty")]
    pub title: String,
    /// See [`Input::text`].
    #[serde(deserialize_with = "null_as_empty")]
    pub text: String,
    /// See [`Input::category_hint`].
    #[serde(deserialize_with = "null_as_empty")]
    pub category_hint: String,
    /// See [`Input::product`].
    #[serde(deserialize_with = "null_as_empty")]
    pub product: String,
    /// See [`Input::location`].
    #[serde(deserialize_with = "null_as_empty")]
    pub location: String,
    /// The expected category code.
    #[serde(deserialize_with = "null_as_empty")]
    pub category: String,
    /// Which seed situation the complaint was written from (informational).
    #[serde(deserialize_with = "null_as_empty")]
    pub source: String,
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

impl Sample {
    /// The classifier's view of this sample.
    pub fn input(&self) -> Input<'_> {
        Input {
            title: &self.title,
            text: &self.text,
            category_hint: &self.category_hint,
            product: &self.product,
            location: &self.location,
        }
    }
}

/// Reads a labeled set: one JSON object per line (blank lines skipped),
/// fields `id, language, channel, title, text, category_hint, product,
/// location, category, source`, any of them may be missing (empty) except
/// `category`. The error names the line (1-based) of the first bad record.
pub fn load_jsonl(text: &str) -> Result<Vec<Sample>, String> {
    load_jsonl_lines(text)
        .map(|samples| samples.into_iter().map(|(_, s)| s).collect())
        .map_err(|e| e.to_string())
}

/// A bad record of a labeled set, where it is (for diagnostics that point
/// into the file, like the policy check's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlError {
    /// 1-based line of the record.
    pub line: usize,
    /// 1-based column of the problem within the line; 0 when the whole
    /// record is at fault (a missing label).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for JsonlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column == 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

/// [`load_jsonl`] with each sample's line (1-based), so that a later
/// problem with a sample (a label the taxonomy does not know) can be
/// reported where it is.
pub fn load_jsonl_lines(text: &str) -> Result<Vec<(usize, Sample)>, JsonlError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let sample: Sample = serde_json::from_str(line).map_err(|e| {
            // serde_json places the error within the one-line document;
            // only the column means anything to the reader.
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            JsonlError {
                line: number,
                column: e.column().max(1),
                message: message.to_owned(),
            }
        })?;
        if sample.category.trim().is_empty() {
            return Err(JsonlError {
                line: number,
                column: 0,
                message: "the record has no `category` label".into(),
            });
        }
        samples.push((number, sample));
    }
    Ok(samples)
}

/// Precision, recall and F1 of one category over an evaluation set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CategoryScore {
    /// Samples labeled with this category.
    pub support: usize,
    /// Samples predicted as this category.
    pub predicted: usize,
    /// Correct predictions of this category.
    pub correct: usize,
    /// correct / predicted (0 when never predicted).
    pub precision: f64,
    /// correct / support (0 when no sample has the label).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
}

/// A misclassified sample, for tuning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    /// The sample's id.
    pub id: String,
    /// Its label.
    pub expected: String,
    /// What the classifier said (possibly [`TRIAGE`]).
    pub predicted: String,
    /// The classifier's confidence in what it said.
    pub confidence: f64,
    /// The terms that decided the (wrong) prediction.
    pub terms: Vec<String>,
}

/// The classifier's results on a labeled set. `Display` prints the
/// accuracy, the confusion matrix and the per-category scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Samples classified.
    pub total: usize,
    /// Samples whose prediction equals their label.
    pub correct: usize,
    /// correct / total (0 for an empty set).
    pub accuracy: f64,
    /// (expected, predicted) → count; only pairs that occurred.
    pub confusion: BTreeMap<(String, String), usize>,
    /// Scores of every label that was expected or predicted.
    pub per_category: BTreeMap<String, CategoryScore>,
    /// Row and column order of the matrix: taxonomy order, then
    /// [`TRIAGE`], then any label the taxonomy does not know.
    pub labels: Vec<String>,
    /// Expected labels that are not categories of the classifier (typos in
    /// the set, or a set written for another taxonomy).
    pub unknown_labels: BTreeSet<String>,
    /// Every misclassified sample, in set order.
    pub misses: Vec<Miss>,
}

/// Classifies every sample and compares with its label. A sample sent to
/// triage counts as wrong: nobody was spared the work.
pub fn evaluate(classifier: &Classifier, samples: &[Sample]) -> Evaluation {
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut correct = 0;
    for sample in samples {
        let result = classifier.classify(&sample.input());
        let expected = sample.category.trim().to_owned();
        if result.category == expected {
            correct += 1;
        } else {
            misses.push(Miss {
                id: sample.id.clone(),
                expected: expected.clone(),
                predicted: result.category.clone(),
                confidence: result.confidence,
                terms: result.terms,
            });
        }
        *confusion.entry((expected, result.category)).or_default() += 1;
    }

    let mut labels: Vec<String> = classifier.codes.clone();
    labels.push(TRIAGE.to_owned());
    let mut unknown_labels = BTreeSet::new();
    for (expected, _) in confusion.keys() {
        if !labels.contains(expected) {
            unknown_labels.insert(expected.clone());
        }
    }
    labels.extend(unknown_labels.iter().cloned());

    let mut per_category = BTreeMap::new();
    for label in &labels {
        let mut score = CategoryScore::default();
        for ((expected, predicted), &n) in &confusion {
            if expected == label {
                score.support += n;
            }
            if predicted == label {
                score.predicted += n;
            }
            if expected == label && predicted == label {
                score.correct += n;
            }
        }
        if score.support == 0 && score.predicted == 0 {
            continue;
        }
        score.precision = ratio(score.correct, score.predicted);
        score.recall = ratio(score.correct, score.support);
        score.f1 = if score.precision + score.recall > 0.0 {
            2.0 * score.precision * score.recall / (score.precision + score.recall)
        } else {
            0.0
        };
        per_category.insert(label.clone(), score);
    }

    Evaluation {
        total: samples.len(),
        correct,
        accuracy: ratio(correct, samples.len()),
        confusion,
        per_category,
        labels,
        unknown_labels,
        misses,
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "accuracy: {:.1}% ({}/{})",
            self.accuracy * 100.0,
            self.correct,
            self.total
        )?;
        if self.total == 0 {
            return Ok(());
        }
        // Only rows and columns that occur, in taxonomy order.
        let rows: Vec<&String> = self
            .labels
            .iter()
            .filter(|l| self.confusion.keys().any(|(e, _)| e == *l))
            .collect();
        let columns: Vec<&String> = self
            .labels
            .iter()
            .filter(|l| self.confusion.keys().any(|(_, p)| p == *l) || rows.contains(l))
            .collect();
        let head = rows
            .iter()
            .map(|r| r.chars().count())
            .chain(["expected \\ predicted".len()])
            .max()
            .unwrap_or(0);
        writeln!(f)?;
        writeln!(
            f,
            "confusion matrix (rows: expected, columns: predicted; . = 0)"
        )?;
        write!(f, "{:<head$}", "expected \\ predicted")?;
        for column in &columns {
            write!(f, " {column}")?;
        }
        writeln!(f)?;
        for row in &rows {
            write!(f, "{row:<head$}")?;
            for column in &columns {
                let width = column.chars().count();
                match self.confusion.get(&((*row).clone(), (*column).clone())) {
                    Some(n) => write!(f, " {n:>width$}")?,
                    None => write!(f, " {:>width$}", ".")?,
                }
            }
            writeln!(f)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<head$} {:>7} {:>9} {:>6} {:>5}",
            "category", "support", "precision", "recall", "f1"
        )?;
        for label in &self.labels {
            if let Some(s) = self.per_category.get(label) {
                writeln!(
                    f,
                    "{label:<head$} {:>7} {:>9.3} {:>6.3} {:>5.3}",
                    s.support, s.precision, s.recall, s.f1
                )?;
            }
        }
        if !self.unknown_labels.is_empty() {
            writeln!(f)?;
            let list: Vec<&str> = self.unknown_labels.iter().map(String::as_str).collect();
            writeln!(
                f,
                "warning: labels not in the taxonomy: {}",
                list.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(category: usize, weight: f64) -> Term {
        Term {
            source: String::new(),
            category,
            weight,
            pattern: Pattern::Han,
        }
    }

    fn spans(matches: &[Match]) -> Vec<(usize, usize, u32)> {
        matches.iter().map(|m| (m.start, m.end, m.term)).collect()
    }

    #[test]
    fn contained_matches_go_overlapping_ones_stay() {
        let terms = [term(0, 1.0), term(1, 1.0), term(0, 1.0), term(1, 1.0)];
        let mut matches = vec![
            Match {
                start: 3,
                end: 5,
                term: 1,
            }, // inside 0..5
            Match {
                start: 0,
                end: 5,
                term: 0,
            },
            Match {
                start: 4,
                end: 8,
                term: 2,
            }, // overlaps 0..5, not inside
            Match {
                start: 0,
                end: 2,
                term: 3,
            }, // inside 0..5
        ];
        drop_contained(&mut matches, &terms);
        assert_eq!(spans(&matches), [(0, 5, 0), (4, 8, 2)]);
    }

    #[test]
    fn a_match_sharing_its_start_with_a_longer_one_is_contained() {
        let terms = [term(0, 1.0), term(1, 9.0)];
        let mut matches = vec![
            Match {
                start: 2,
                end: 4,
                term: 1,
            },
            Match {
                start: 2,
                end: 7,
                term: 0,
            },
        ];
        drop_contained(&mut matches, &terms);
        assert_eq!(spans(&matches), [(2, 7, 0)]);
    }

    #[test]
    fn on_one_span_each_category_keeps_its_heaviest_term() {
        let terms = [term(0, 2.0), term(0, 3.0), term(1, 1.0), term(0, 3.0)];
        let mut matches = (0..4)
            .map(|term| Match {
                start: 0,
                end: 1,
                term,
            })
            .collect();
        drop_contained(&mut matches, &terms);
        // Category 0: term 1 (3.0) beats term 0 (2.0) and, tied, comes
        // before term 3; category 1 keeps its only term.
        assert_eq!(spans(&matches), [(0, 1, 1), (0, 1, 2)]);
    }

    #[test]
    fn phrases_match_exactly_with_an_optional_prefix_last_word() {
        let pattern: Vec<String> = ["late", "deliver"].map(String::from).to_vec();
        assert!(phrase_matches(
            &pattern,
            true,
            &["late", "delivery", "again"]
        ));
        assert!(!phrase_matches(&pattern, false, &["late", "delivery"]));
        assert!(phrase_matches(&pattern, false, &["late", "deliver"]));
        assert!(!phrase_matches(&pattern, true, &["late"]));
        assert!(!phrase_matches(&pattern, true, &["lately", "delivery"]));
    }

    /// The default policy's taxonomy and training set, and the held-out
    /// labeled set, as shipped.
    fn shipped() -> (Vec<Category>, Vec<Sample>, Vec<Sample>) {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
        let read = |name: &str| {
            std::fs::read_to_string(format!("{root}/{name}"))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        #[derive(Deserialize)]
        struct File {
            taxonomy: Vec<Category>,
        }
        let file: File = toml::from_str(&read("default.toml")).expect("default.toml");
        let train = load_jsonl(&read("testdata/classify-train.jsonl")).expect("training set");
        let held_out = load_jsonl(&read("testdata/classify.jsonl")).expect("labeled set");
        (file.taxonomy, train, held_out)
    }

    #[test]
    fn a_sealed_trie_walks_like_the_nodes() {
        let (taxonomy, train, samples) = shipped();
        let mut classifier = Classifier::with_training(&taxonomy, 0.3, &train).unwrap();
        assert!(classifier.han.sealed.is_some() && classifier.words.sealed.is_some());
        let sealed: Vec<Classification> = samples
            .iter()
            .map(|s| classifier.classify(&s.input()))
            .collect();
        classifier.han.sealed = None;
        classifier.words.sealed = None;
        for (sample, want) in samples.iter().zip(&sealed) {
            assert_eq!(&classifier.classify(&sample.input()), want, "{}", sample.id);
        }
        // Every sample matched something: the comparison is not vacuous.
        assert!(sealed.iter().all(|c| !c.terms.is_empty()));
    }

    #[test]
    fn prepared_or_not_the_classification_is_the_same() {
        let (taxonomy, train, samples) = shipped();
        for classifier in [
            Classifier::new(&taxonomy, 0.3).unwrap(),
            Classifier::with_training(&taxonomy, 0.3, &train).unwrap(),
        ] {
            for sample in samples.iter().step_by(7) {
                let input = Input {
                    category_hint: "物流",
                    ..sample.input()
                };
                let want = classifier.classify(&input);
                assert_eq!(classifier.classify_prepared(&Prepared::new(&input)), want);
                assert_eq!(
                    classifier.classify_prepared(&Prepared::normalized(&input)),
                    want,
                    "{}",
                    sample.id
                );
            }
        }
    }
}
