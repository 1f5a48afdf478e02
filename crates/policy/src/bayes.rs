//! A multinomial naive Bayes model of the complaint categories, learned
//! from labeled complaints (the policy's `classifier_training` file), that
//! the [classifier](crate::classify) combines with the taxonomy's
//! keywords.
//!
//! Keywords say what the policy author thought of; the model picks up how
//! people actually write about each category (`到现在还没收到` for a
//! delivery, `held for 40 minutes` for service speed) without anybody
//! listing it.
//!
//! # Features
//!
//! Each field (title, text, product, place) is [normalized](crate::text)
//! and cut into:
//!
//! - **words**: jieba words of Chinese runs and English words, stop words
//!   dropped ([`text::for_each_token`]);
//! - **Chinese character bigrams** inside each run of Chinese characters
//!   (`没收到` → `没收`, `收到`): robust where jieba cuts the same phrase
//!   differently in different contexts;
//! - **single Chinese characters**, a back-off for words too rare in the
//!   training set (`漏` of `漏水`, `漏油`, `渗漏`);
//! - **English word bigrams** of consecutive words, stop words dropped
//!   (`not delivered`, `hung up`);
//! - the channel's **category hint**, as one feature.
//!
//! A feature counts once per complaint (binarized multinomial naive
//! Bayes: a rant repeating a word is not more of that category), with
//! weight [`Options::title_weight`] when it appears in the title.
//!
//! # Model
//!
//! `log P(c | x) = log P(c) + Σ_f w_f · log P(f | c) − log Z`, with
//! Lidstone-smoothed `P(f | c) = (n_fc + α) / (N_c + α·V)` over the
//! vocabulary, so a feature never seen with a category lowers it instead
//! of ruling it out. Features outside the vocabulary are ignored.
//! Categories without any training sample are not in the model (it says
//! nothing about them). The posterior is tempered
//! ([`Options::temperature`]): naive Bayes counts correlated features (a
//! word, its bigrams, its characters) as independent evidence, and would
//! otherwise be all but certain of every answer, right or wrong.
//!
//! The vocabulary is bounded: features seen in fewer than
//! [`Options::min_count`] training complaints are dropped (typos, order
//! numbers), and of the rest the [`Options::max_features`] with the most
//! information gain about the category are kept.
//!
//! # Cost
//!
//! Training computes, once, a table feature → log P(f | c) for every
//! category; a feature is looked up by a 64-bit hash of its text, so
//! prediction allocates no string per feature. Memory is the vocabulary
//! (its display strings, the hash index) plus `vocabulary × categories`
//! `f32` weights: with the default training set (600 complaints) and
//! options, 4,759 features of the 17,694 seen (the rest occur in one
//! complaint only), about 0.5 MB. Further figures are in
//! [`crate::classify`]'s module docs.
//!
//! Prediction reads a [`Prepared`] complaint (segmented once for the
//! whole decision). A feature's hash is first checked against an 8 KB
//! bit filter of the vocabulary's hashes, so most features outside the
//! vocabulary never reach the hash table; the known ones are marked in a
//! bitmap per weight, which read in order gives them sorted and counted
//! once without sorting.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::classify::{Input, Prepared, Sample};
use crate::text;

/// How the model reads complaints and how much it keeps. The defaults were
/// chosen by 10-fold cross-validation of the combined classifier on the
/// training set (`policies/testdata/classify-train.jsonl`), checked on the
/// development set; see [`crate::classify`] for the figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Lidstone smoothing: pseudo-count added to every feature × category.
    pub alpha: f64,
    /// A feature enters the vocabulary only if this many training
    /// complaints contain it.
    pub min_count: u32,
    /// At most this many features, the most informative kept.
    pub max_features: usize,
    /// Weight of a feature found in the title (1 in the other fields).
    pub title_weight: f64,
    /// jieba words and English words.
    pub words: bool,
    /// Chinese character bigrams.
    pub han_bigrams: bool,
    /// Single Chinese characters: a back-off for words the training set
    /// has too few examples of (`漏` of `漏水`, `漏油`, `渗漏`).
    pub han_unigrams: bool,
    /// English word bigrams.
    pub english_bigrams: bool,
    /// The channel's category hint as a feature.
    pub hint: bool,
    /// Divides the log-probabilities before they are normalized into the
    /// posterior. Naive Bayes counts correlated features (a word, the
    /// bigrams and characters inside it) as independent evidence, so its
    /// raw posterior is close to 0 or 1 even when it is wrong; a
    /// temperature above 1 makes it a probability that can be weighed
    /// against the keywords.
    pub temperature: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            alpha: 0.5,
            min_count: 2,
            max_features: 20_000,
            title_weight: 2.0,
            words: true,
            han_bigrams: true,
            han_unigrams: true,
            english_bigrams: true,
            hint: true,
            temperature: 4.0,
        }
    }
}

/// Kinds of feature, the first byte of a feature's key (so that the word
/// `快递` and the bigram `快递` are different features).
const WORD: u8 = b'w';
const BIGRAM: u8 = b'b';
const CHAR: u8 = b'c';
const PAIR: u8 = b'e';
const HINT: u8 = b'h';

/// A trained model. Immutable and `Sync`: train once per policy version.
#[derive(Debug, Clone)]
pub struct NaiveBayes {
    /// Categories the training set has samples of, sorted.
    codes: Vec<String>,
    log_prior: Vec<f64>,
    /// Feature key hash → feature id.
    index: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
    /// A bit per top [`FILTER_BITS`] bits of the hashes in `index` (a
    /// Bloom filter with one hash), checked first: many of a complaint's
    /// features are not in the vocabulary, and the filter (8 KB) rules
    /// most of them out from the L1 cache.
    filter: Vec<u64>,
    /// Display texts of the features (`快递`, `not delivered`,
    /// `hint:物流`), sorted and distinct: the word `快递` and the bigram
    /// `快递` are one thing to a reader.
    names: Vec<String>,
    /// Feature id → its display text's index in `names`.
    name_of: Vec<u32>,
    /// Feature id → the other feature with the same display text (the
    /// word `快递` and the bigram `快递`), `NO_PARTNER` if none. `None`
    /// if some text has more than two features (it cannot happen with
    /// the features of [`for_each_feature`], but the explanation does
    /// not rely on it).
    partner: Option<Vec<u32>>,
    /// `weights[f * codes.len() + c]` = log P(f | c).
    weights: Vec<f32>,
    options: Options,
}

/// The model's view of one complaint: posterior probabilities and the
/// known features that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Posterior {
    /// P(category | complaint), tempered (see [`Options::temperature`]),
    /// indexed like [`NaiveBayes::codes`]; all zero when the complaint has
    /// no known feature (the model abstains).
    pub probabilities: Vec<f64>,
    /// Their natural logarithms, computed without underflow (finite even
    /// where a probability rounds to 0); all zero when the model abstains.
    pub log_probabilities: Vec<f64>,
    /// Known features of the complaint with their weights (title or not),
    /// sorted by feature id.
    features: Vec<(u32, f64)>,
}

impl Posterior {
    /// Whether the model had nothing to go on (no feature of the
    /// complaint is in its vocabulary).
    pub fn abstains(&self) -> bool {
        self.features.is_empty()
    }
}

impl NaiveBayes {
    /// Learns from labeled complaints. Fails when there are no samples, a
    /// sample has no label, or an option is out of range.
    pub fn train(samples: &[Sample], options: &Options) -> Result<Self, String> {
        if !(options.alpha.is_finite() && options.alpha > 0.0) {
            return Err(format!(
                "smoothing alpha {} must be a positive number",
                options.alpha
            ));
        }
        if !(options.title_weight.is_finite() && options.title_weight > 0.0) {
            return Err(format!(
                "title weight {} must be a positive number",
                options.title_weight
            ));
        }
        if !(options.temperature.is_finite() && options.temperature > 0.0) {
            return Err(format!(
                "temperature {} must be a positive number",
                options.temperature
            ));
        }
        if options.max_features == 0 {
            return Err("the vocabulary must allow at least one feature".into());
        }
        if samples.is_empty() {
            return Err("no training samples".into());
        }
        let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, sample) in samples.iter().enumerate() {
            let code = sample.category.trim();
            if code.is_empty() {
                return Err(format!(
                    "training sample #{} ({:?}) has no category",
                    i + 1,
                    sample.id
                ));
            }
            classes.insert(code, 0);
        }
        for (i, class) in classes.values_mut().enumerate() {
            *class = i;
        }
        let k = classes.len();

        // Per document: its features (key → weight); per feature: weighted
        // count per class and document frequency per class.
        let mut docs: Vec<(usize, BTreeMap<String, f64>)> = Vec::with_capacity(samples.len());
        let mut df: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for sample in samples {
            let class = classes[sample.category.trim()];
            let mut features: BTreeMap<String, f64> = BTreeMap::new();
            for_each_feature(&sample.input(), options, |kind, parts, weight| {
                let mut key = String::with_capacity(16);
                key.push(char::from(kind));
                for p in parts {
                    key.push_str(p);
                }
                let w = features.entry(key).or_insert(0.0);
                *w = w.max(weight);
            });
            for key in features.keys() {
                let counts = df.entry(key.clone()).or_insert_with(|| vec![0; k]);
                counts[class] += 1;
            }
            docs.push((class, features));
        }

        let n = samples.len() as f64;
        let mut class_docs = vec![0u32; k];
        for (class, _) in &docs {
            class_docs[*class] += 1;
        }
        // Information gain of each frequent feature (presence vs absence).
        let entropy = |counts: &[f64]| -> f64 {
            let total: f64 = counts.iter().sum();
            if total <= 0.0 {
                return 0.0;
            }
            counts
                .iter()
                .filter(|&&c| c > 0.0)
                .map(|&c| {
                    let p = c / total;
                    -p * p.ln()
                })
                .sum()
        };
        let prior: Vec<f64> = class_docs.iter().map(|&c| f64::from(c)).collect();
        let h = entropy(&prior);
        let mut ranked: Vec<(f64, &String)> = df
            .iter()
            .filter(|(_, counts)| counts.iter().sum::<u32>() >= options.min_count)
            .map(|(key, counts)| {
                let with: Vec<f64> = counts.iter().map(|&c| f64::from(c)).collect();
                let without: Vec<f64> = prior.iter().zip(&with).map(|(p, w)| p - w).collect();
                let n_with: f64 = with.iter().sum();
                let gain =
                    h - (n_with / n) * entropy(&with) - ((n - n_with) / n) * entropy(&without);
                (gain, key)
            })
            .collect();
        // Most informative first; ties by key, so the cut is deterministic.
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        ranked.truncate(options.max_features);
        let mut vocabulary: Vec<&String> = ranked.into_iter().map(|(_, key)| key).collect();
        vocabulary.sort();

        let mut index: HashMap<u64, u32, BuildHasherDefault<KeyHasher>> = HashMap::default();
        let mut displayed = Vec::with_capacity(vocabulary.len());
        let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
        for key in vocabulary {
            let hash = key_hash(key.as_bytes());
            // Two features with one hash (about 1 in 10^15 for this
            // vocabulary size): the later one is left out, deterministically.
            if index.contains_key(&hash) {
                continue;
            }
            let id = u32::try_from(displayed.len()).map_err(|_| "vocabulary too large")?;
            index.insert(hash, id);
            ids.insert(key.as_str(), id);
            displayed.push(display(key));
        }
        let v = displayed.len();
        let mut names = displayed.clone();
        names.sort();
        names.dedup();
        let name_of: Vec<u32> = displayed
            .iter()
            .map(|d| names.binary_search(d).map_or(0, |i| i as u32))
            .collect();
        let partner = partners(&name_of, names.len());
        let mut filter = vec![0u64; (1 << FILTER_BITS) / 64];
        for &hash in index.keys() {
            let bit = filter_bit(hash);
            filter[bit / 64] |= 1 << (bit % 64);
        }

        let mut counts = vec![0.0f64; v * k];
        let mut totals = vec![0.0f64; k];
        for (class, features) in &docs {
            for (key, weight) in features {
                if let Some(&id) = ids.get(key.as_str()) {
                    counts[id as usize * k + class] += weight;
                    totals[*class] += weight;
                }
            }
        }
        let alpha = options.alpha;
        let mut weights = vec![0.0f32; v * k];
        for f in 0..v {
            for c in 0..k {
                let p = (counts[f * k + c] + alpha) / (totals[c] + alpha * v as f64);
                weights[f * k + c] = p.ln() as f32;
            }
        }
        let log_prior = class_docs
            .iter()
            .map(|&c| ((f64::from(c) + 1.0) / (n + k as f64)).ln())
            .collect();
        Ok(Self {
            codes: classes.keys().map(|c| (*c).to_owned()).collect(),
            log_prior,
            index,
            filter,
            names,
            name_of,
            partner,
            weights,
            options: options.clone(),
        })
    }

    /// The categories the model knows, sorted.
    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    /// How many features the model kept.
    pub fn vocabulary_len(&self) -> usize {
        self.name_of.len()
    }

    /// The options it was trained with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// P(category | complaint) for every category of the model, best first
    /// (ties in code order). Empty when no feature of the complaint is in
    /// the vocabulary: the model has no opinion then, and says so rather
    /// than repeating its prior.
    pub fn predict(&self, input: &Input<'_>) -> Vec<(String, f64)> {
        let posterior = self.posterior(input);
        if posterior.abstains() {
            return Vec::new();
        }
        let mut out: Vec<(String, f64)> = self
            .codes
            .iter()
            .cloned()
            .zip(posterior.probabilities)
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// The posterior of one complaint, with what explains it (see
    /// [`NaiveBayes::contributions`]).
    pub fn posterior(&self, input: &Input<'_>) -> Posterior {
        self.posterior_prepared(&Prepared::normalized(input))
    }

    /// [`NaiveBayes::posterior`] of a complaint already prepared (and
    /// segmented, or it is segmented here) by a caller that reads its
    /// words for other things too.
    pub fn posterior_prepared(&self, prepared: &Prepared<'_>) -> Posterior {
        let k = self.codes.len();
        // Once per complaint, at its highest weight: a feature is marked
        // in one bitmap per weight (the title's, and 1 for the rest: the
        // only two `for_each_prepared_feature` gives), and the bitmaps
        // read in id order give the features sorted, without sorting.
        let title_weight = self.options.title_weight;
        let words = self.name_of.len().div_ceil(64);
        let mut marks = vec![0u64; 2 * words];
        let mut found = 0usize;
        for_each_prepared_feature(prepared, &self.options, |kind, parts, weight| {
            let mut h = KeyHash::new();
            h.byte(kind);
            for p in parts {
                h.bytes(p.as_bytes());
            }
            let hash = h.finish();
            let bit = filter_bit(hash);
            if self
                .filter
                .get(bit / 64)
                .is_none_or(|w| w & 1 << (bit % 64) == 0)
            {
                return; // not in the vocabulary
            }
            if let Some(&id) = self.index.get(&hash) {
                let bitmap = if weight == title_weight { 0 } else { words };
                if let Some(w) = marks.get_mut(bitmap + id as usize / 64) {
                    *w |= 1 << (id % 64);
                    found += 1;
                }
            }
        });
        let both = if title_weight.total_cmp(&1.0).is_gt() {
            title_weight
        } else {
            1.0
        };
        let mut features: Vec<(u32, f64)> = Vec::with_capacity(found);
        let (title, body) = marks.split_at(words);
        for (i, (&t, &b)) in title.iter().zip(body).enumerate() {
            let mut any = t | b;
            while any != 0 {
                let bit = any.trailing_zeros();
                any &= any - 1;
                let weight = match (t >> bit & 1 != 0, b >> bit & 1 != 0) {
                    (true, true) => both,
                    (true, false) => title_weight,
                    _ => 1.0,
                };
                features.push(((i * 64) as u32 + bit, weight));
            }
        }
        if features.is_empty() {
            return Posterior {
                probabilities: vec![0.0; k],
                log_probabilities: vec![0.0; k],
                features,
            };
        }
        let mut log = self.log_prior.clone();
        for &(id, weight) in &features {
            let row = id as usize * k;
            if let Some(row) = self.weights.get(row..row + k) {
                for (l, &w) in log.iter_mut().zip(row) {
                    *l += weight * f64::from(w);
                }
            }
        }
        let max = log.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let t = self.options.temperature;
        for l in &mut log {
            *l = (*l - max) / t;
        }
        // The best category has exp(0) = 1, so z ≥ 1 and ln z is finite.
        let z: f64 = log.iter().map(|l| l.exp()).sum();
        let ln_z = z.ln();
        for l in &mut log {
            *l -= ln_z;
        }
        Posterior {
            probabilities: log.iter().map(|l| l.exp()).collect(),
            log_probabilities: log,
            features,
        }
    }

    /// The features that most favour category `winner` over `rival`
    /// (indices into [`NaiveBayes::codes`]), strongest first, at most
    /// `limit`: each with `w_f · (log P(f | winner) − log P(f | rival)) / T`,
    /// its share of the (tempered) posterior log-odds between the two.
    /// Only features in favour of the winner are listed.
    pub fn contributions(
        &self,
        posterior: &Posterior,
        winner: usize,
        rival: usize,
        limit: usize,
    ) -> Vec<(String, f64)> {
        let k = self.codes.len();
        if winner >= k || rival >= k {
            return Vec::new();
        }
        let contribution = |id: u32, weight: f64| -> Option<(u32, f64)> {
            let row = id as usize * k;
            let (&w, &r, &name) = (
                self.weights.get(row + winner)?,
                self.weights.get(row + rival)?,
                self.name_of.get(id as usize)?,
            );
            Some((name, weight * f64::from(w - r) / self.options.temperature))
        };
        // Summed by display name (name indices sort like the names).
        let mut list: Vec<(u32, f64)> = Vec::with_capacity(posterior.features.len());
        match &self.partner {
            // Two features at most per name: each name's sum is that of
            // its features present, found through the partner table
            // (two numbers add up the same in either order).
            Some(partner) => {
                let present = |id: u32| {
                    posterior
                        .features
                        .binary_search_by_key(&id, |f| f.0)
                        .ok()
                        .and_then(|j| posterior.features.get(j))
                };
                for &(id, weight) in &posterior.features {
                    let Some((name, mut c)) = contribution(id, weight) else {
                        continue;
                    };
                    let other = partner.get(id as usize).copied().unwrap_or(NO_PARTNER);
                    if other != NO_PARTNER {
                        let Some(&(_, w)) = present(other) else {
                            list.push((name, c));
                            continue;
                        };
                        if other < id {
                            continue; // summed at the partner
                        }
                        if let Some((_, d)) = contribution(other, w) {
                            c += d;
                        }
                    }
                    list.push((name, c));
                }
            }
            None => {
                let mut each: Vec<(u32, f64)> = posterior
                    .features
                    .iter()
                    .filter_map(|&(id, weight)| contribution(id, weight))
                    .collect();
                each.sort_unstable_by_key(|e| e.0);
                for (name, c) in each {
                    match list.last_mut() {
                        Some((last, sum)) if *last == name => *sum += c,
                        _ => list.push((name, c)),
                    }
                }
            }
        }
        list.retain(|e| e.1 > 0.0);
        // The `limit` strongest, in order (names are distinct, so the order
        // is total and selecting then sorting them is sorting all).
        let strongest = |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if limit == 0 {
            return Vec::new();
        }
        if list.len() > limit {
            list.select_nth_unstable_by(limit - 1, strongest);
            list.truncate(limit);
        }
        list.sort_unstable_by(strongest);
        list.into_iter()
            .filter_map(|(n, c)| Some((self.names.get(n as usize)?.clone(), c)))
            .collect()
    }
}

/// Bits of [`NaiveBayes`]'s vocabulary filter, as a power of two.
const FILTER_BITS: u32 = 16;

/// The filter bit of a feature hash (already well mixed).
fn filter_bit(hash: u64) -> usize {
    (hash >> (64 - FILTER_BITS)) as usize
}

/// No other feature shares the display text.
const NO_PARTNER: u32 = u32::MAX;

/// For each feature, the other feature with the same display name (index
/// into `names`, `name_of[id]`); `None` when a name has more than two.
fn partners(name_of: &[u32], names: usize) -> Option<Vec<u32>> {
    let mut first = vec![NO_PARTNER; names];
    let mut partner = vec![NO_PARTNER; name_of.len()];
    for (id, &name) in name_of.iter().enumerate() {
        let id = id as u32;
        let slot = first.get_mut(name as usize)?;
        if *slot == NO_PARTNER {
            *slot = id;
            continue;
        }
        let other = *slot;
        if partner.get(other as usize) != Some(&NO_PARTNER) {
            return None; // a third feature with this name
        }
        partner[other as usize] = id;
        partner[id as usize] = other;
    }
    Some(partner)
}

/// A feature key as a reader sees it: the text without its kind byte,
/// `hint:` before a hint.
fn display(key: &str) -> String {
    match key.as_bytes().first() {
        Some(&HINT) => format!("hint:{}", &key[1..]),
        Some(_) => key[1..].to_owned(),
        None => String::new(),
    }
}

/// Calls `f(kind, parts, weight)` for every feature occurrence of the
/// complaint; a feature's key is `kind` followed by its parts
/// concatenated. The same complaint gives the same calls in the same order.
fn for_each_feature(input: &Input<'_>, options: &Options, f: impl FnMut(u8, &[&str], f64)) {
    for_each_prepared_feature(&Prepared::normalized(input), options, f);
}

/// [`for_each_feature`] of a prepared complaint (segmented here, field by
/// field, if it was not).
fn for_each_prepared_feature(
    prepared: &Prepared<'_>,
    options: &Options,
    mut f: impl FnMut(u8, &[&str], f64),
) {
    for (part, weight) in [
        (prepared.title(), options.title_weight),
        (prepared.text(), 1.0),
        (prepared.product(), 1.0),
        (prepared.location(), 1.0),
    ] {
        let field = part.normalized();
        if field.is_empty() {
            continue;
        }
        if options.words || options.english_bigrams {
            let segmented;
            let part = if part.is_segmented() {
                part
            } else {
                let mut copy = part.clone();
                copy.segment();
                segmented = copy;
                &segmented
            };
            let mut previous: Option<&str> = None;
            for word in part.words() {
                let latin = !word.chars().any(text::is_han);
                if options.words {
                    f(WORD, &[word], weight);
                }
                if options.english_bigrams && latin {
                    if let Some(p) = previous {
                        f(PAIR, &[p, " ", word], weight);
                    }
                    previous = Some(word);
                } else {
                    previous = None;
                }
            }
        }
        if options.han_bigrams || options.han_unigrams {
            let mut previous: Option<usize> = None;
            for (i, c) in field.char_indices() {
                if !text::is_han(c) {
                    previous = None;
                    continue;
                }
                let end = i + c.len_utf8();
                if options.han_unigrams
                    && let Some(single) = field.get(i..end)
                {
                    f(CHAR, &[single], weight);
                }
                if options.han_bigrams
                    && let Some(start) = previous
                    && let Some(bigram) = field.get(start..end)
                {
                    f(BIGRAM, &[bigram], weight);
                }
                previous = Some(i);
            }
        }
    }
    if options.hint {
        let hint = prepared.hint();
        if !hint.is_empty() {
            f(HINT, &[hint], options.title_weight);
        }
    }
}

/// FNV-1a over a feature key's bytes, finished with a strong mix, so that
/// the key can be hashed piecewise without building the string.
#[derive(Clone, Copy)]
struct KeyHash(u64);

impl KeyHash {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    fn finish(self) -> u64 {
        // splitmix64's finalizer.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn key_hash(key: &[u8]) -> u64 {
    let mut h = KeyHash::new();
    h.bytes(key);
    h.finish()
}

/// The hash map's hasher for keys that are already well-mixed hashes.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::load_jsonl;

    fn labeled(name: &str) -> Vec<Sample> {
        let path = format!(
            "{}/../../policies/testdata/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        load_jsonl(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Known features of a complaint, once each at their highest weight,
    /// sorted by id: by sorting, as first written.
    fn features_by_sorting(model: &NaiveBayes, input: &Input<'_>) -> Vec<(u32, f64)> {
        let mut features = Vec::new();
        for_each_feature(input, &model.options, |kind, parts, weight| {
            let mut h = KeyHash::new();
            h.byte(kind);
            for p in parts {
                h.bytes(p.as_bytes());
            }
            if let Some(&id) = model.index.get(&h.finish()) {
                features.push((id, weight));
            }
        });
        features.sort_unstable_by(|a: &(u32, f64), b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        features.dedup_by_key(|f| f.0);
        features
    }

    #[test]
    fn features_are_marked_once_at_their_highest_weight() {
        let model =
            NaiveBayes::train(&labeled("classify-train.jsonl"), &Options::default()).unwrap();
        let mut titled = 0;
        for sample in labeled("classify.jsonl") {
            // The title repeated in the text: the same features at both
            // weights, the title's must win.
            let text = format!("{} {}", sample.title, sample.text);
            let input = Input {
                text: &text,
                category_hint: "物流",
                ..sample.input()
            };
            let want = features_by_sorting(&model, &input);
            let got = model.posterior(&input);
            assert_eq!(got.features, want, "{}", sample.id);
            titled += usize::from(want.iter().any(|f| f.1 == model.options.title_weight));
        }
        assert!(titled > 100, "{titled}");
    }

    #[test]
    fn explanations_do_not_depend_on_the_partner_table() {
        let model =
            NaiveBayes::train(&labeled("classify-train.jsonl"), &Options::default()).unwrap();
        let partners = model
            .partner
            .as_ref()
            .expect("two features at most per name");
        // Words and bigrams (or characters) share names: the table is used.
        assert!(partners.iter().filter(|&&p| p != NO_PARTNER).count() > 100);
        let sorting = NaiveBayes {
            partner: None,
            ..model.clone()
        };
        let k = model.codes().len();
        for sample in labeled("classify.jsonl").iter().step_by(3) {
            let posterior = model.posterior(&sample.input());
            for (winner, rival) in [(0, 1), (k - 1, 0), (2, 5), (3, 3)] {
                for limit in [0, 1, 3, 50] {
                    assert_eq!(
                        model.contributions(&posterior, winner, rival, limit),
                        sorting.contributions(&posterior, winner, rival, limit),
                        "{} {winner} {rival} {limit}",
                        sample.id
                    );
                }
            }
        }
    }

    #[test]
    fn a_name_of_three_features_turns_the_partner_table_off() {
        assert_eq!(partners(&[0, 1, 0], 2), Some(vec![2, NO_PARTNER, 0]));
        assert_eq!(partners(&[0, 0, 0], 1), None);
        assert_eq!(partners(&[5], 2), None); // a name index out of range
        assert_eq!(partners(&[], 0), Some(vec![]));
    }
}
