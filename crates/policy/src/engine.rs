//! One decision per complaint: classification, similarity, grading,
//! routing and hot-topic detection, in that order, with the explanation.
//!
//! The [`Engine`] owns what a routing replica keeps in memory: the policy
//! (shared, replaced on reload), the compiled classifier, the similarity
//! index of the last weeks' complaints and the surge windows. It is not
//! synchronized; routing serializes calls (one decision takes microseconds).
//!
//! A complaint's text is read once per decision: its fields are
//! normalized and segmented into a [`classify::Prepared`] that the keyword
//! classifier, the naive Bayes model and the similarity fingerprint all
//! use (segmentation is the costliest step of either). The index is
//! consulted and updated with borrowed fields, and the rules borrow the
//! classification's category and terms rather than copying them.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::Hit;
use crate::cel::Facts;
use crate::classify::{self, Classification, Classifier};
use crate::schema::{FrequencyClass, Grading, Policy, Routing};
use crate::similar::{self, Assessment, EntryRef, Index};
use crate::surge::{self, Alert, SurgeDetector};

/// What the engine reads of a complaint.
#[derive(Debug, Clone, Default)]
pub struct Complaint<'a> {
    pub id: &'a str,
    pub received_at: Option<OffsetDateTime>,
    pub channel: &'a str,
    pub language: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub product: &'a str,
    pub location: &'a str,
    pub category_hint: &'a str,
    pub demand: &'a str,
    /// Yuan; 0 when none.
    pub amount: f64,
    pub customer_tier: &'a str,
    /// `phone:…`, `email:…`, `wechat:…`, `forum:…` (intake's identity keys).
    pub identity_keys: &'a [String],
    pub anonymous: bool,
    /// Complainants named on a group complaint (0 or 1 for one person).
    pub group_size: i64,
    pub follow_ups: i64,
}

/// The decision on one complaint, with everything that explains it.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub classification: Classification,
    pub grading: Grading,
    pub routing: Routing,
    /// Near-duplicates, repeats and same-person links found in the index.
    pub similar: SimilarSummary,
    /// 高发 / 多发 / 偶发 by the count of similar complaints in the window.
    pub frequency: &'static str,
    /// A surge this complaint completed (emitted once per topic per window).
    pub hot: Option<HotTopic>,
    pub policy_version: String,
    /// Every rule and model step that contributed, in order.
    pub hits: Vec<Hit>,
}

/// The similarity part of a decision.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimilarSummary {
    pub fingerprint: u64,
    pub similar_complainants: usize,
    pub repeat_count: usize,
    pub similar_count: usize,
    pub same_person_count: usize,
    /// Linked complaint ids, most recent first.
    pub linked: Vec<String>,
}

impl From<(u64, Assessment)> for SimilarSummary {
    fn from((fingerprint, a): (u64, Assessment)) -> Self {
        SimilarSummary {
            fingerprint,
            similar_complainants: a.similar_complainants,
            repeat_count: a.repeat_count,
            similar_count: a.similar_count,
            same_person_count: a.same_person_count,
            linked: a.linked,
        }
    }
}

/// A hot topic, as `alert.hot` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct HotTopic {
    pub topic: String,
    pub place: String,
    pub count: usize,
    pub window_secs: i64,
    pub sample_ids: Vec<String>,
}

impl From<Alert> for HotTopic {
    fn from(a: Alert) -> Self {
        HotTopic {
            topic: a.topic,
            place: a.place,
            count: a.count,
            window_secs: a.window.whole_seconds(),
            sample_ids: a.sample_ids,
        }
    }
}

/// The policy engine of one routing replica.
pub struct Engine {
    policy: Arc<Policy>,
    classifier: Classifier,
    index: Index,
    surge: SurgeDetector,
    offset: time::UtcOffset,
}

/// A policy window as a fixed duration (working units approximated by
/// calendar time: windows count complaints, not deadlines).
fn window(d: crate::schema::Duration) -> time::Duration {
    time::Duration::minutes(d.approx_minutes().min(i64::MAX as u64) as i64)
}

/// The classifier of a policy: its taxonomy's keywords, plus the naive
/// Bayes model trained on `classifier_training` when the policy names one.
fn classifier_for(policy: &Policy) -> Result<Classifier, String> {
    if policy.classifier_training.is_empty() {
        Classifier::new(&policy.taxonomy, policy.classify_threshold)
    } else {
        Classifier::with_training(
            &policy.taxonomy,
            policy.classify_threshold,
            &policy.classifier_training,
        )
    }
}

/// The surge detector of a policy's `[hot]` settings.
fn surge_for(policy: &Policy) -> SurgeDetector {
    let per = if policy.hot.per.iter().any(|p| p == "location") {
        surge::Per::TopicAndPlace
    } else {
        surge::Per::Topic
    };
    SurgeDetector::new(
        window(policy.hot.window),
        policy.hot.threshold.max(1) as usize,
        per,
    )
}

impl Engine {
    /// Builds the engine for `policy`; `offset` is the policy's local time
    /// (hour and weekday of receipt for the rules).
    pub fn new(policy: Arc<Policy>, offset: time::UtcOffset) -> Result<Engine, String> {
        let classifier = classifier_for(&policy)?;
        let config = similar::Config {
            window: time::Duration::days(i64::from(policy.similarity.window_days)),
            repeat_window: time::Duration::days(i64::from(policy.similarity.window_days)),
            max_distance: policy.similarity.max_distance,
            context: policy.similarity.same_place,
            ..similar::Config::default()
        };
        let surge = surge_for(&policy);
        Ok(Engine {
            policy,
            classifier,
            index: Index::new(config),
            surge,
            offset,
        })
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Takes up a new policy version (hot reload): the classifier is
    /// rebuilt, the surge windows restart when their settings changed, and
    /// the similarity index — the complaints seen — is kept.
    pub fn set_policy(
        &mut self,
        policy: Arc<Policy>,
        offset: time::UtcOffset,
    ) -> Result<(), String> {
        let classifier = classifier_for(&policy)?;
        if policy.hot != self.policy.hot {
            self.surge = surge_for(&policy);
        }
        self.classifier = classifier;
        self.policy = policy;
        self.offset = offset;
        Ok(())
    }

    /// The similarity index (to load recent complaints at start).
    pub fn index_mut(&mut self) -> &mut Index {
        &mut self.index
    }

    /// Decides on a complaint without remembering it: what `Explain` answers.
    pub fn explain(&self, c: &Complaint<'_>) -> Decision {
        self.evaluate(c).0
    }

    /// Decides on a complaint and remembers it for similarity and surges.
    pub fn decide(&mut self, c: &Complaint<'_>) -> Decision {
        let (mut decision, at) = self.evaluate(c);
        let category = decision.classification.category.as_str();
        self.index
            .insert_ref(&entry(c, at, decision.similar.fingerprint, category));
        let place = c.location.trim();
        if let Some(alert) = self.surge.observe(category, place, c.id, at) {
            decision.hits.push(Hit {
                rule: "hot".into(),
                reason: format!(
                    "{} complaints about {} {} within {} s: hot topic",
                    alert.count,
                    alert.topic,
                    alert.place,
                    alert.window.whole_seconds()
                ),
            });
            decision.hot = Some(alert.into());
        }
        decision
    }

    /// The decision, and the complaint's receipt time (now when it has
    /// none).
    fn evaluate(&self, c: &Complaint<'_>) -> (Decision, OffsetDateTime) {
        let at = c.received_at.unwrap_or_else(OffsetDateTime::now_utc);
        // Normalized and segmented once, for the classifier (keywords and
        // model) and the fingerprint alike.
        let prepared = classify::Prepared::new(&classify::Input {
            title: c.title,
            text: c.description,
            category_hint: c.category_hint,
            product: c.product,
            location: c.location,
        });
        let classification = self.classifier.classify_prepared(&prepared);
        let mut hits = vec![Hit {
            rule: "classifier".into(),
            reason: format!(
                "category {} (confidence {:.2}{}) from {}",
                classification.category,
                classification.confidence,
                if classification.triage {
                    ", below the threshold: triage"
                } else {
                    ""
                },
                if classification.terms.is_empty() {
                    "no matching terms".to_owned()
                } else {
                    classification.terms.join(", ")
                }
            ),
        }];

        // The words of "title description": segmentation never joins
        // words across the space between them, so they are the title's
        // words followed by the description's.
        let fingerprint =
            similar::fingerprint_words(prepared.title().words().chain(prepared.text().words()));
        let assessment =
            self.index
                .assess_ref(&entry(c, at, fingerprint, &classification.category));
        if assessment.similar_count + assessment.same_person_count > 0 {
            hits.push(Hit {
                rule: "similarity".into(),
                reason: format!(
                    "{} similar complaint(s) from {} complainant(s) (this one included) within {} days; {} earlier from the same person on the same issue",
                    assessment.similar_count,
                    assessment.similar_complainants,
                    self.policy.similarity.window_days,
                    assessment.repeat_count
                ),
            });
        }

        let local = at.to_offset(self.offset);
        let mut facts = Facts::new(c.title, c.description);
        facts.channel = c.channel.to_owned();
        facts.language = c.language.to_owned();
        facts.product = c.product.to_owned();
        facts.location = c.location.to_owned();
        facts.category_hint = c.category_hint.to_owned();
        facts.demand = c.demand.to_owned();
        facts.amount = c.amount;
        facts.customer_tier = c.customer_tier.to_owned();
        // Lent to the facts for the rules, and taken back.
        let mut classification = classification;
        facts.category = std::mem::take(&mut classification.category);
        facts.confidence = classification.confidence;
        facts.terms = std::mem::take(&mut classification.terms);
        facts.group_size = c.group_size;
        facts.repeat_count = assessment.repeat_count as i64;
        facts.similar_complainants = assessment.similar_complainants as i64;
        facts.follow_ups = c.follow_ups;
        facts.anonymous = c.anonymous;
        facts.hour = i64::from(local.hour());
        facts.weekday = i64::from(local.weekday().number_from_monday());
        let (grading, routing) = self.policy.decide(&mut facts);
        classification.category = std::mem::take(&mut facts.category);
        classification.terms = std::mem::take(&mut facts.terms);
        hits.extend(grading.hits.iter().cloned());
        hits.extend(routing.hits.iter().cloned());

        let frequency = match self
            .policy
            .frequency
            .class(assessment.similar_count.saturating_add(1) as u32)
        {
            FrequencyClass::High => "高发",
            FrequencyClass::Many => "多发",
            FrequencyClass::Occasional => "偶发",
        };
        let decision = Decision {
            classification,
            grading,
            routing,
            similar: (fingerprint, assessment).into(),
            frequency,
            hot: None,
            policy_version: self.policy.version.clone(),
            hits,
        };
        (decision, at)
    }
}

/// The complaint as the similarity index sees it (product and place
/// trimmed), borrowed.
fn entry<'a>(
    c: &'a Complaint<'a>,
    at: OffsetDateTime,
    fingerprint: u64,
    category: &'a str,
) -> EntryRef<'a> {
    EntryRef {
        id: c.id,
        at,
        identity_keys: c.identity_keys,
        fingerprint,
        category,
        product: c.product.trim(),
        location: c.location.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;

    fn engine() -> Engine {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default.toml");
        let (policy, _) = Policy::load(std::path::Path::new(path)).expect("default.toml loads");
        Engine::new(Arc::new(policy), time::UtcOffset::UTC).expect("engine")
    }

    const COMPLAINTS: &[(&str, &str)] = &[
        (
            "快递三天没到",
            "我的包裹显示已签收，但我根本没收到，快递员电话也打不通。",
        ),
        ("", "电梯坏了一个星期了，物业一直不修，老人只能爬楼。"),
        (
            "Refund refused",
            "The store REFUSED my refund for a broken kettle; the manager hung up on me!",
        ),
        ("Wi-Fi断了", "ＡＰＰ闪退，iPhone14上登录不了😡"),
        ("！！！", ""),
    ];

    #[test]
    fn one_reading_of_the_text_serves_classifier_and_fingerprint() {
        let engine = engine();
        let classifier = classifier_for(engine.policy()).expect("classifier");
        for &(title, description) in COMPLAINTS {
            let c = Complaint {
                id: "q",
                title,
                description,
                product: "快递服务",
                ..Complaint::default()
            };
            let d = engine.explain(&c);
            // As if title and description were segmented together.
            let joined = format!("{title} {description}");
            assert_eq!(
                d.similar.fingerprint,
                similar::fingerprint(&text::tokens(&joined)),
                "{joined}"
            );
            // The classification is the classifier's own, terms and all,
            // though the rules borrowed its category and terms.
            let own = classifier.classify(&classify::Input {
                title,
                text: description,
                product: "快递服务",
                ..classify::Input::default()
            });
            assert_eq!(d.classification, own, "{joined}");
        }
    }

    #[test]
    fn deciding_remembers_what_explaining_does_not() {
        let mut engine = engine();
        let keys = ["phone:+8613800000001".to_owned()];
        let c = Complaint {
            id: "first",
            received_at: Some(OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)),
            title: COMPLAINTS[0].0,
            description: COMPLAINTS[0].1,
            identity_keys: &keys,
            ..Complaint::default()
        };
        let explained = engine.explain(&c);
        assert!(!engine.index_mut().contains("first"));
        let decided = engine.decide(&c);
        assert_eq!(decided.classification, explained.classification);
        assert!(engine.index_mut().contains("first"));
        let again = engine.decide(&Complaint { id: "second", ..c });
        assert_eq!(again.similar.linked, ["first"]);
        assert_eq!(again.similar.same_person_count, 1);
    }
}
