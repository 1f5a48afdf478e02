//! NATS request/reply on `tousu.intake.<channel>`: body a protobuf
//! `tousu.intake.v1.Submission`, reply a `SubmitReply` once committed.
//!
//! Errors follow the NATS service convention: the reply carries the headers
//! `Nats-Service-Error-Code` (the HTTP status: 400, 413, 503) and
//! `Nats-Service-Error` (the problem detail), with the problem+json body.
//! Replicas share the work through the queue group `tousu-intake`.

use std::sync::Arc;

use async_nats::HeaderMap;
use futures::StreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tousu_domain::Channel;

use crate::grpc;
use crate::store::Intake;

/// Subjects served: `tousu.intake.<channel>`.
pub const SUBJECTS: &str = "tousu.intake.*";
/// Queue group shared by intake replicas.
pub const QUEUE: &str = "tousu-intake";

/// Serves requests until `cancel` fires, then drains the subscription.
pub async fn serve(
    nats: async_nats::Client,
    intake: Arc<Intake>,
    cancel: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut sub = nats.queue_subscribe(SUBJECTS, QUEUE.into()).await?;
    Ok(tokio::spawn(async move {
        let tracker = tokio_util::task::TaskTracker::new();
        loop {
            let msg = tokio::select! {
                m = sub.next() => m,
                _ = cancel.cancelled() => None,
            };
            let Some(msg) = msg else { break };
            let (nats, intake) = (nats.clone(), intake.clone());
            tracker.spawn(async move {
                let Some(reply_to) = msg.reply.clone() else {
                    tracing::warn!(subject = %msg.subject, "intake request without reply subject ignored");
                    return;
                };
                let token = msg.subject.as_str().rsplit('.').next().unwrap_or_default();
                let channel: Option<Channel> = token.parse().ok();
                let result = match channel {
                    None => Err(crate::accept::Rejection::Invalid(vec![
                        tousu_kit::problem::FieldError {
                            field: "subject".into(),
                            message: format!("{token:?} is not a channel"),
                        },
                    ])),
                    Some(c) => grpc::submit(&intake, &msg.payload, Some(c), "nats", false).await,
                };
                let sent = match result {
                    Ok(r) => nats
                        .publish(reply_to, grpc::reply(&r).encode_to_vec().into())
                        .await,
                    Err(r) => {
                        let p = r.problem();
                        let mut headers = HeaderMap::new();
                        headers.insert("Nats-Service-Error-Code", p.status.to_string().as_str());
                        headers.insert("Nats-Service-Error", p.detail.replace(['\r', '\n'], " ").as_str());
                        headers.insert("Content-Type", "application/problem+json");
                        let body = serde_json::to_vec(&p).unwrap_or_default();
                        nats.publish_with_headers(reply_to, headers, body.into()).await
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "intake reply not sent");
                }
            });
        }
        let _ = sub.unsubscribe().await;
        tracker.close();
        tracker.wait().await;
    }))
}
