//! Dry runs of the policy engine: `POST /v1/explain` (JSON) and gRPC
//! `tousu.routing.v1.RoutingService/Explain`. The complaint is judged by
//! the policy in force, against the similarity index as it stands, and
//! nothing is stored.
//!
//! The JSON answer's `handler` says how the handler would be chosen — the
//! strategy, the candidates and the skills asked — but not who: that
//! depends on the round-robin turn and the open cases when the complaint
//! is actually assigned (gRPC: `handler_strategy` only).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;
use tousu_policy::engine::{Complaint, Decision, Engine};
use tousu_proto::routing::routing_service_server::{RoutingService, RoutingServiceServer};
use tousu_proto::routing::{ExplainReply, ExplainRequest};

use crate::handlers::{self, Plan};

const CHANNELS: &[&str] = &["", "phone", "email", "webform", "wechat", "forum", "manual"];

/// The engine shared with the consumer.
pub type Shared = Arc<Mutex<Engine>>;

/// The JSON body of `POST /v1/explain` (the fields of [`ExplainRequest`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Request {
    pub title: String,
    pub description: String,
    pub channel: String,
    pub product: String,
    pub location: String,
    pub category_hint: String,
    pub customer_tier: String,
    pub amount: String,
    pub identity_keys: Vec<String>,
    pub group_size: u32,
}

impl From<ExplainRequest> for Request {
    fn from(r: ExplainRequest) -> Self {
        Request {
            title: r.title,
            description: r.description,
            channel: r.channel,
            product: r.product,
            location: r.location,
            category_hint: r.category_hint,
            customer_tier: r.customer_tier,
            amount: r.amount,
            identity_keys: r.identity_keys,
            group_size: r.group_size,
        }
    }
}

fn invalid(r: &Request) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if r.description.trim().is_empty() {
        errors.push(FieldError {
            field: "description".into(),
            message: "is required and must not be empty".into(),
        });
    }
    if !CHANNELS.contains(&r.channel.as_str()) {
        errors.push(FieldError {
            field: "channel".into(),
            message: "must be phone, email, webform, wechat, forum or manual".into(),
        });
    }
    if !r.amount.trim().is_empty() && r.amount.trim().parse::<f64>().is_err() {
        errors.push(FieldError {
            field: "amount".into(),
            message: "must be a decimal number of yuan".into(),
        });
    }
    errors
}

/// Judges `r` with the engine; field errors when it cannot be judged.
pub fn explain(engine: &Shared, r: &Request) -> Result<ExplainReply, Vec<FieldError>> {
    explain_with_handler(engine, r).map(|(reply, _)| reply)
}

/// Like [`explain`], with the handler plan of the department (`None` when
/// it lists no handlers).
pub fn explain_with_handler(
    engine: &Shared,
    r: &Request,
) -> Result<(ExplainReply, Option<Plan>), Vec<FieldError>> {
    let errors = invalid(r);
    if !errors.is_empty() {
        return Err(errors);
    }
    let chinese = r.description.chars().any(tousu_policy::text::is_han);
    let language = if chinese { "zh" } else { "en" };
    let view = Complaint {
        id: "explain",
        channel: &r.channel,
        language,
        title: &r.title,
        description: &r.description,
        product: &r.product,
        location: &r.location,
        category_hint: &r.category_hint,
        customer_tier: &r.customer_tier,
        amount: r.amount.trim().parse().unwrap_or(0.0),
        identity_keys: &r.identity_keys,
        group_size: i64::from(r.group_size.max(1)).max(crate::group::from_text(&format!(
            "{}。{}",
            r.title, r.description
        ))),
        ..Complaint::default()
    };
    let (d, policy) = {
        let engine = engine.lock().unwrap_or_else(|e| e.into_inner());
        (engine.explain(&view), engine.policy().clone())
    };
    let plan = policy
        .department(d.routing.department.as_str())
        .and_then(|dept| {
            handlers::plan(
                dept,
                d.routing.strategy,
                &d.routing.skills,
                &d.classification.category,
            )
        });
    Ok((reply(&d), plan))
}

fn reply(d: &Decision) -> ExplainReply {
    ExplainReply {
        category: d.classification.category.clone(),
        confidence: d.classification.confidence,
        triage: d.classification.triage,
        matched_terms: d.classification.terms.clone(),
        grade: u32::from(d.grading.grade.get()),
        urgency: d.grading.urgency.as_str().to_owned(),
        flags: d
            .grading
            .flags
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect(),
        frequency: d.frequency.to_owned(),
        department: d.routing.department.to_string(),
        co_departments: d
            .routing
            .co_departments
            .iter()
            .map(ToString::to_string)
            .collect(),
        handler_strategy: d.routing.strategy.to_string(),
        sla: d.routing.sla.clone().unwrap_or_default(),
        similar_complainants: d.similar.similar_complainants as u32,
        repeat_count: d.similar.repeat_count as u32,
        linked: d.similar.linked.clone(),
        rules: crate::hits(d),
        policy_version: d.policy_version.clone(),
    }
}

/// `POST /v1/explain`.
pub fn router(engine: Shared) -> axum::Router {
    axum::Router::new()
        .route("/v1/explain", axum::routing::post(http_explain))
        .with_state(engine)
}

async fn http_explain(
    State(engine): State<Shared>,
    body: Result<Json<Request>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(b) => b,
        Err(e) => {
            let status = e.status();
            let mut p = Problem::validation(vec![FieldError {
                field: "body".into(),
                message: e.body_text(),
            }]);
            if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                p = Problem::new(
                    status,
                    "unsupported-media-type",
                    "Unsupported media type",
                    "send application/json",
                );
            }
            return p.into_response();
        }
    };
    match explain_with_handler(&engine, &request) {
        Ok((reply, plan)) => Json(serde_json::json!({
            "category": reply.category,
            "confidence": reply.confidence,
            "triage": reply.triage,
            "matched_terms": reply.matched_terms,
            "grade": reply.grade,
            "urgency": reply.urgency,
            "flags": reply.flags,
            "frequency": reply.frequency,
            "department": reply.department,
            "co_departments": reply.co_departments,
            "handler_strategy": reply.handler_strategy,
            "handler": handler_json(plan.as_ref(), &reply.handler_strategy),
            "sla": reply.sla,
            "similar_complainants": reply.similar_complainants,
            "repeat_count": reply.repeat_count,
            "linked": reply.linked,
            "rules": reply.rules.iter().map(|r| serde_json::json!({"rule": r.rule, "reason": r.reason})).collect::<Vec<_>>(),
            "policy_version": reply.policy_version,
        }))
        .into_response(),
        Err(errors) => Problem::validation(errors).into_response(),
    }
}

/// The `handler` object of the JSON answer: how the handler would be
/// chosen, and among whom.
pub fn handler_json(plan: Option<&Plan>, strategy: &str) -> serde_json::Value {
    match plan {
        Some(p) => serde_json::json!({
            "strategy": p.strategy.to_string(),
            "candidates": p.candidates,
            "skills": p.required,
            "how": p.note,
            "note": "who exactly depends on the round-robin turn and the open cases when the complaint is assigned; a dry run does not pick",
        }),
        None => serde_json::json!({
            "strategy": strategy,
            "candidates": [],
            "skills": [],
            "how": "the department lists no handlers: nobody is picked",
            "note": "",
        }),
    }
}

struct Service(Shared);

/// gRPC `RoutingService`.
pub fn routes(engine: Shared) -> tonic::service::Routes {
    tonic::service::Routes::new(RoutingServiceServer::new(Service(engine)))
}

#[tonic::async_trait]
impl RoutingService for Service {
    async fn explain(
        &self,
        request: tonic::Request<ExplainRequest>,
    ) -> Result<tonic::Response<ExplainReply>, tonic::Status> {
        let r = Request::from(request.into_inner());
        explain(&self.0, &r)
            .map(tonic::Response::new)
            .map_err(|errors| tonic::Status::invalid_argument(Problem::validation(errors).detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tousu_policy::engine::Engine;

    fn engine() -> Shared {
        let policy = Arc::new(crate::test_policy().clone());
        Arc::new(Mutex::new(
            Engine::new(policy, time::UtcOffset::UTC).expect("engine"),
        ))
    }

    #[test]
    fn explain_says_how_the_handler_would_be_chosen_not_who() {
        let engine = engine();
        let parcel = Request {
            description: "快递一个星期了还没送到，物流信息一直不更新。".into(),
            ..Request::default()
        };
        let (reply, plan) = explain_with_handler(&engine, &parcel).unwrap();
        assert_eq!(reply.department, "logistics");
        assert_eq!(reply.handler_strategy, "round_robin");
        let j = handler_json(plan.as_ref(), &reply.handler_strategy);
        assert_eq!(j["strategy"], "round_robin");
        assert_eq!(j["candidates"], serde_json::json!(["xu.fang", "lin.tao"]));
        assert!(
            j["note"]
                .as_str()
                .unwrap()
                .contains("a dry run does not pick")
        );

        // English asks for an English-speaking handler; the complaint
        // centre (skills) has two.
        let english = Request {
            description: "Hello, I would like to speak with someone about my account, nobody answered my letters.".into(),
            ..Request::default()
        };
        let (reply, plan) = explain_with_handler(&engine, &english).unwrap();
        assert_eq!(reply.department, "service");
        let plan = plan.unwrap();
        assert_eq!(plan.required, ["english"]);
        assert_eq!(plan.candidates, ["liu.yang", "wu.lei"]);
        // A dry run moves no turn: the same answer twice.
        assert_eq!(
            explain_with_handler(&engine, &parcel).unwrap().1,
            explain_with_handler(&engine, &parcel).unwrap().1
        );
        assert!(explain_with_handler(&engine, &Request::default()).is_err());
    }

    #[test]
    fn a_department_without_handlers_is_said_so() {
        let j = handler_json(None, "round_robin");
        assert_eq!(j["strategy"], "round_robin");
        assert_eq!(j["candidates"], serde_json::json!([]));
        assert!(j["how"].as_str().unwrap().contains("no handlers"));
    }
}
