//! One decision per complaint: classification, similarity, grading,
//! routing and hot-topic detection, in that order, with the explanation.
//!
//! The [`Engine`] owns what a routing replica keeps in memory: the policy
//! (shared, replaced on reload), the compiled classifier, the similarity
//! index of the last weeks' complaints and the surge windows. It is not
//! synchronized; routing serializes calls (one decision takes microseconds).

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::Hit;
use crate::cel::Facts;
use crate::classify::{self, Classification, Classifier};
use crate::schema::{FrequencyClass, Grading, Policy, Routing};
use crate::similar::{self, Assessment, Entry, Index};
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
        let (mut decision, entry) = self.evaluate(c);
        let at = entry.at;
        let category = entry.category.clone();
        let place = c.location.trim().to_owned();
        self.index.insert(entry);
        if let Some(alert) = self.surge.observe(&category, &place, c.id, at) {
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

    fn evaluate(&self, c: &Complaint<'_>) -> (Decision, Entry) {
        let at = c.received_at.unwrap_or_else(OffsetDateTime::now_utc);
        let classification = self.classifier.classify(&classify::Input {
            title: c.title,
            text: c.description,
            category_hint: c.category_hint,
            product: c.product,
            location: c.location,
        });
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

        let mut text = String::with_capacity(c.title.len() + c.description.len() + 1);
        text.push_str(c.title);
        text.push(' ');
        text.push_str(c.description);
        let fingerprint = similar::fingerprint(&crate::text::tokens(&text));
        let entry = Entry {
            id: c.id.to_owned(),
            at,
            identity_keys: c.identity_keys.to_vec(),
            fingerprint,
            category: classification.category.clone(),
            product: c.product.trim().to_owned(),
            location: c.location.trim().to_owned(),
        };
        let assessment = self.index.assess(&entry);
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
        facts.category = classification.category.clone();
        facts.confidence = classification.confidence;
        facts.terms = classification.terms.clone();
        facts.group_size = c.group_size;
        facts.repeat_count = assessment.repeat_count as i64;
        facts.similar_complainants = assessment.similar_complainants as i64;
        facts.follow_ups = c.follow_ups;
        facts.anonymous = c.anonymous;
        facts.hour = i64::from(local.hour());
        facts.weekday = i64::from(local.weekday().number_from_monday());
        let (grading, routing) = self.policy.decide(&mut facts);
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
        (decision, entry)
    }
}
