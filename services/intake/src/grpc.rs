//! gRPC `tousu.intake.v1.IntakeService/Submit` and NATS request/reply on
//! `tousu.intake.<channel>`: the same validation, dedup and answers as HTTP.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use prost::Message;
use tonic::{Request, Status};
use tousu_channels::{Attachment, Fields, Inbound};
use tousu_domain::Channel;
use tousu_proto::intake::intake_service_server::{IntakeService, IntakeServiceServer};
use tousu_proto::intake::{Submission, SubmitReply};

use crate::accept::{self, Rejection};
use crate::commit::Receipt;
use crate::store::{Intake, Rejected};

struct Service(Arc<Intake>);

pub fn routes(intake: Arc<Intake>) -> tonic::service::Routes {
    tonic::service::Routes::new(IntakeServiceServer::new(Service(intake)))
}

fn opt(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

/// The channel and message of a protobuf submission. `channel` is the
/// subject's channel for NATS (the message's own must agree or be unset).
pub fn inbound(s: Submission, channel: Option<Channel>) -> Result<(Channel, Inbound), Rejection> {
    let own = tousu_bus::channel_from_pb(s.channel);
    let channel = match (channel, own) {
        (Some(subject), Some(own)) if subject != own => {
            return Err(invalid(
                "channel",
                format!("is {own} but the subject names {subject}"),
            ));
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(invalid("channel", "must be set to a known channel")),
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
        group_size: (s.group_size > 0).then(|| s.group_size.to_string()),
    };
    let attachments = s
        .attachments
        .into_iter()
        .map(|u| Attachment {
            filename: u.filename,
            media_type: if u.media_type.is_empty() {
                "application/octet-stream".into()
            } else {
                u.media_type.to_ascii_lowercase()
            },
            data: u.data,
        })
        .collect();
    Ok((
        channel,
        Inbound {
            fields,
            attachments,
            ..Inbound::default()
        },
    ))
}

fn invalid(field: &str, message: impl Into<String>) -> Rejection {
    Rejection::Invalid(vec![tousu_kit::problem::FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

/// Validates and commits a protobuf submission; rejections are quarantined
/// with `transport` (`grpc` or `nats`) so that they can be replayed.
pub async fn submit(
    intake: &Intake,
    raw: &[u8],
    subject_channel: Option<Channel>,
    transport: &str,
    replay: bool,
) -> Result<Receipt, Rejection> {
    let result = match Submission::decode(raw) {
        Err(e) => Err((
            None,
            invalid("body", format!("not a tousu.intake.v1.Submission: {e}")),
        )),
        Ok(s) => match inbound(s, subject_channel) {
            Err(r) => Err((subject_channel, r)),
            Ok((channel, inbound)) => {
                let key = accept::dedup_key(channel, &inbound);
                accept::accept(intake, channel, inbound, key, true)
                    .await
                    .map_err(|r| (Some(channel), r))
            }
        },
    };
    match result {
        Ok(r) => Ok(r),
        Err((_, r @ Rejection::Unavailable(_))) => Err(r),
        Err((channel, r)) => {
            if !replay {
                let p = r.problem();
                intake
                    .quarantine(Rejected {
                        channel,
                        status: p.status,
                        reason: &p.detail,
                        content_type: Some("application/x-protobuf"),
                        body: raw,
                        meta: serde_json::json!({
                            "transport": transport,
                            "channel": channel.map(|c| c.as_str()),
                        }),
                    })
                    .await;
            }
            Err(r)
        }
    }
}

pub fn reply(r: &Receipt) -> SubmitReply {
    SubmitReply {
        id: r.id.to_string(),
        tracking_no: r.tracking_no.clone(),
        status: "received".into(),
        duplicate: r.duplicate,
        follow_up: r.follow_up,
    }
}

fn status(r: Rejection) -> Status {
    match &r {
        Rejection::Invalid(_) => Status::invalid_argument(r.problem().detail),
        Rejection::TooLarge(_) => Status::resource_exhausted(r.problem().detail),
        Rejection::Unavailable(e) => Status::unavailable(e.clone()),
    }
}

/// A quarantined gRPC or NATS submission, replayed (answered as HTTP).
pub async fn replay(intake: &Intake, raw: &[u8]) -> Response {
    match submit(intake, raw, None, "grpc", true).await {
        Ok(r) => crate::http::receipt_response(&r),
        Err(r) => r.problem().into_response(),
    }
}

#[tonic::async_trait]
impl IntakeService for Service {
    async fn submit(
        &self,
        request: Request<Submission>,
    ) -> Result<tonic::Response<SubmitReply>, Status> {
        let raw = request.into_inner().encode_to_vec();
        submit(&self.0, &raw, None, "grpc", false)
            .await
            .map(|r| tonic::Response::new(reply(&r)))
            .map_err(status)
    }
}
