//! gRPC `tousu.desk.v1.DeskService`: reading cases, and the actions (the
//! same implementation as HTTP, [`Desk::act`]).

use std::sync::Arc;

use prost::Message;
use tonic::{Code, Request, Response, Status};
use tousu_domain::lifecycle::RefusalKind;
use tousu_kit::problem::FieldError;
use tousu_proto::desk::desk_service_server::{DeskService, DeskServiceServer};
use tousu_proto::desk::*;
use uuid::Uuid;

use crate::actions::{self, ActionError, Desk, Input};
use crate::cases::{self, Key};

struct Service(Arc<Desk>);

pub fn routes(desk: Arc<Desk>) -> tonic::service::Routes {
    tonic::service::Routes::new(DeskServiceServer::new(Service(desk)))
}

fn unavailable(e: sqlx::Error) -> Status {
    tracing::error!(error = %e, "case query failed");
    Status::unavailable("database unavailable")
}

/// `google.rpc.Status`, `google.protobuf.Any` and `google.rpc.BadRequest`
/// (googleapis google/rpc/*.proto), for the standard error details that
/// gRPC clients decode (`tonic-types`, grpcurl, `grpc-status-details-bin`).
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RpcStatus {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BadRequest {
        #[prost(message, repeated, tag = "1")]
        pub field_violations: Vec<FieldViolation>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldViolation {
        #[prost(string, tag = "1")]
        pub field: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }

    pub const BAD_REQUEST: &str = "type.googleapis.com/google.rpc.BadRequest";
}

/// INVALID_ARGUMENT with the `field: problem; …` message HTTP gives as
/// problem detail, and a `google.rpc.BadRequest` with one violation per field.
pub fn invalid_argument(errors: &[FieldError]) -> Status {
    let message = actions::field_detail(errors);
    let bad_request = rpc::BadRequest {
        field_violations: errors
            .iter()
            .map(|e| rpc::FieldViolation {
                field: e.field.clone(),
                description: e.message.clone(),
            })
            .collect(),
    };
    let details = rpc::RpcStatus {
        code: Code::InvalidArgument as i32,
        message: message.clone(),
        details: vec![rpc::Any {
            type_url: rpc::BAD_REQUEST.into(),
            value: bad_request.encode_to_vec(),
        }],
    };
    Status::with_details(
        Code::InvalidArgument,
        message,
        details.encode_to_vec().into(),
    )
}

/// The gRPC status of a refused or failed action.
fn action_status(e: ActionError) -> Status {
    match e {
        ActionError::BadId(message) => invalid_argument(&[FieldError {
            field: "id".into(),
            message,
        }]),
        ActionError::Invalid(errors) => invalid_argument(&errors),
        ActionError::NotFound(m) => Status::not_found(m),
        ActionError::Refused(r) => match r.kind() {
            RefusalKind::Conflict => Status::failed_precondition(r.to_string()),
            RefusalKind::Invalid { field } => invalid_argument(&[FieldError {
                field: field.into(),
                message: r.why(),
            }]),
        },
        ActionError::Conflict(m) => Status::failed_precondition(m),
        ActionError::Unavailable(_) => Status::unavailable("database unavailable; nothing changed"),
        ActionError::Internal(m) => Status::internal(m),
    }
}

impl Service {
    async fn act(&self, id: String, actor: String, input: Input) -> Result<Response<Case>, Status> {
        self.0
            .act(actions::Request { id, actor, input })
            .await
            .map(|row| Response::new(row.to_proto()))
            .map_err(action_status)
    }
}

#[tonic::async_trait]
impl DeskService for Service {
    async fn get_complaint(
        &self,
        request: Request<GetComplaintRequest>,
    ) -> Result<Response<Case>, Status> {
        let key = Key::parse(&request.get_ref().id).map_err(|e| {
            invalid_argument(&[FieldError {
                field: "id".into(),
                message: e,
            }])
        })?;
        match cases::get(self.0.pool(), &key).await.map_err(unavailable)? {
            Some(row) => Ok(Response::new(row.to_proto())),
            None => Err(Status::not_found(format!(
                "no complaint {}",
                request.get_ref().id
            ))),
        }
    }

    async fn list_complaints(
        &self,
        request: Request<ListComplaintsRequest>,
    ) -> Result<Response<ListComplaintsResponse>, Status> {
        let r = request.into_inner();
        let limit = match r.page_size {
            0 => 50,
            n @ 1..=500 => i64::from(n),
            _ => return Err(Status::invalid_argument("page_size: must be at most 500")),
        };
        let after = match r.page_token.as_str() {
            "" => None,
            t => Some(Uuid::parse_str(t).map_err(|_| {
                Status::invalid_argument("page_token: not a token from a previous page")
            })?),
        };
        let department = Some(r.department.as_str()).filter(|d| !d.is_empty());
        let status = (r.status != 0).then_some(r.status as i16);
        let rows = cases::list(self.0.pool(), department, status, limit, after)
            .await
            .map_err(unavailable)?;
        let next_page_token = if rows.len() as i64 == limit {
            rows.last().map(|r| r.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListComplaintsResponse {
            cases: rows.iter().map(|r| r.to_proto()).collect(),
            next_page_token,
        }))
    }

    async fn sign_for(&self, r: Request<SignForRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::SignFor { handler: r.handler };
        self.act(r.id, r.actor, input).await
    }

    async fn r#return(&self, r: Request<ReturnRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        self.act(r.id, r.actor, Input::Return { reason: r.reason })
            .await
    }

    async fn transfer(&self, r: Request<TransferRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::Transfer {
            to_department: r.to_department,
            reason: r.reason,
        };
        self.act(r.id, r.actor, input).await
    }

    async fn arbitrate(&self, r: Request<ArbitrateRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::Arbitrate {
            to_department: r.to_department,
            reason: r.reason,
        };
        self.act(r.id, r.actor, input).await
    }

    async fn contact(&self, r: Request<ContactRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        self.act(r.id, r.actor, Input::Contact { note: r.note })
            .await
    }

    async fn pause(&self, r: Request<PauseRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::Pause {
            reason: r.reason,
            note: r.note,
        };
        self.act(r.id, r.actor, input).await
    }

    async fn resume(&self, r: Request<ResumeRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        self.act(r.id, r.actor, Input::Resume).await
    }

    async fn extend(&self, r: Request<ExtendRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::Extend {
            duration: r.duration,
            approver_role: r.approver_role,
            reason: r.reason,
        };
        self.act(r.id, r.actor, input).await
    }

    async fn resolve(&self, r: Request<ResolveRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::Resolve {
            resolution: r.resolution,
        };
        self.act(r.id, r.actor, input).await
    }

    async fn return_visit(&self, r: Request<ReturnVisitRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::ReturnVisit {
            satisfaction: r.satisfaction,
            note: r.note,
        };
        self.act(r.id, r.actor, input).await
    }

    async fn close(&self, r: Request<CloseRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        self.act(r.id, r.actor, Input::Close { reason: r.reason })
            .await
    }

    async fn reopen(&self, r: Request<ReopenRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        self.act(r.id, r.actor, Input::Reopen { reason: r.reason })
            .await
    }

    async fn withdraw(&self, r: Request<WithdrawRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        self.act(r.id, r.actor, Input::Withdraw { reason: r.reason })
            .await
    }

    async fn reject(&self, r: Request<RejectRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        self.act(r.id, r.actor, Input::Reject { reason: r.reason })
            .await
    }

    async fn merge(&self, r: Request<MergeRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::Merge {
            into: r.into,
            reason: r.reason,
        };
        self.act(r.id, r.actor, input).await
    }

    async fn feedback(&self, r: Request<FeedbackRequest>) -> Result<Response<Case>, Status> {
        let r = r.into_inner();
        let input = Input::Feedback {
            satisfaction: r.satisfaction,
            note: r.note,
        };
        self.act(r.id, r.actor, input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_a_bad_request_detail() {
        let s = invalid_argument(&[
            FieldError {
                field: "reason".into(),
                message: "\"x\" is not a pause reason of the policy".into(),
            },
            FieldError {
                field: "actor".into(),
                message: "required".into(),
            },
        ]);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "reason: \"x\" is not a pause reason of the policy; actor: required"
        );
        let status = rpc::RpcStatus::decode(s.details()).unwrap();
        assert_eq!(status.code, Code::InvalidArgument as i32);
        assert_eq!(status.details.len(), 1);
        assert_eq!(status.details[0].type_url, rpc::BAD_REQUEST);
        let br = rpc::BadRequest::decode(status.details[0].value.as_slice()).unwrap();
        let fields: Vec<&str> = br
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["reason", "actor"]);
    }
}
