//! gRPC `tousu.intake.v1.IntakeService/Submit`: the same validation and
//! dedup as HTTP.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tousu_domain::Channel;
use tousu_proto::intake::intake_service_server::{IntakeService, IntakeServiceServer};
use tousu_proto::intake::{Submission, SubmitReply};
use tousu_proto::v1 as pb;

use crate::store::Intake;
use crate::submission::{self, Fields};

struct Service(Arc<Intake>);

pub fn routes(intake: Arc<Intake>) -> tonic::service::Routes {
    tonic::service::Routes::new(IntakeServiceServer::new(Service(intake)))
}

fn channel(c: i32) -> Option<Channel> {
    match pb::Channel::try_from(c).ok()? {
        pb::Channel::Unspecified => None,
        pb::Channel::Phone => Some(Channel::Phone),
        pb::Channel::Email => Some(Channel::Email),
        pb::Channel::Webform => Some(Channel::WebForm),
        pb::Channel::Wechat => Some(Channel::WeChat),
        pb::Channel::Forum => Some(Channel::Forum),
        pb::Channel::Manual => Some(Channel::Manual),
    }
}

fn opt(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

/// `field: message; field: message` — what `InvalidArgument` carries.
fn invalid(errors: &[tousu_kit::problem::FieldError]) -> Status {
    let detail = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    Status::invalid_argument(detail)
}

#[tonic::async_trait]
impl IntakeService for Service {
    async fn submit(&self, request: Request<Submission>) -> Result<Response<SubmitReply>, Status> {
        let s = request.into_inner();
        let raw = prost::Message::encode_to_vec(&s);
        let Some(channel) = channel(s.channel) else {
            return Err(Status::invalid_argument(
                "channel: must be set to a known channel",
            ));
        };
        let occurred_at = s
            .occurred_at
            .as_ref()
            .and_then(tousu_bus::from_timestamp)
            .map(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            });
        let fields = Fields {
            channel_message_id: opt(s.channel_message_id),
            title: opt(s.title),
            description: opt(s.description),
            name: opt(s.name),
            phone: opt(s.phone),
            email: opt(s.email),
            wechat_openid: opt(s.wechat_openid),
            forum_username: opt(s.forum_username),
            anonymous: s.anonymous,
            product: opt(s.product),
            location: opt(s.location),
            occurred_at,
            amount: opt(s.amount),
            demand: opt(s.demand),
            category_hint: opt(s.category_hint),
            customer_tier: opt(s.customer_tier),
        };
        let valid = match submission::validate(channel, fields) {
            Ok(v) => v,
            Err(errors) => {
                let status = invalid(&errors);
                self.0
                    .quarantine(channel, status.message(), Some("application/grpc"), &raw)
                    .await;
                return Err(status);
            }
        };
        let key =
            opt(valid.channel_message_id.clone()).map(|id| format!("{}:{id}", channel.as_str()));
        match self.0.submit(valid, key).await {
            Ok(r) => Ok(Response::new(SubmitReply {
                id: r.id.to_string(),
                tracking_no: r.tracking_no,
                status: "received".into(),
                duplicate: r.duplicate,
            })),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }
}
