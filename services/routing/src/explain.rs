//! Dry runs of the policy engine: `POST /v1/explain` (JSON) and gRPC
//! `tousu.routing.v1.RoutingService/Explain`. The complaint is judged by
//! the policy in force, against the similarity index as it stands, and
//! nothing is stored.

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
        group_size: i64::from(r.group_size.max(1)),
        ..Complaint::default()
    };
    let d = engine
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .explain(&view);
    Ok(reply(&d))
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
    match explain(&engine, &request) {
        Ok(reply) => Json(serde_json::json!({
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
