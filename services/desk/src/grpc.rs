//! gRPC `tousu.desk.v1.DeskService`.

use sqlx::PgPool;
use tonic::{Request, Response, Status};
use tousu_proto::desk::desk_service_server::{DeskService, DeskServiceServer};
use tousu_proto::desk::{Case, GetComplaintRequest, ListComplaintsRequest, ListComplaintsResponse};
use uuid::Uuid;

use crate::cases::{self, Key};

struct Service(PgPool);

pub fn routes(pool: PgPool) -> tonic::service::Routes {
    tonic::service::Routes::new(DeskServiceServer::new(Service(pool)))
}

fn unavailable(e: sqlx::Error) -> Status {
    tracing::error!(error = %e, "case query failed");
    Status::unavailable("database unavailable")
}

#[tonic::async_trait]
impl DeskService for Service {
    async fn get_complaint(
        &self,
        request: Request<GetComplaintRequest>,
    ) -> Result<Response<Case>, Status> {
        let key = Key::parse(&request.get_ref().id)
            .map_err(|e| Status::invalid_argument(format!("id: {e}")))?;
        match cases::get(&self.0, &key).await.map_err(unavailable)? {
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
        let rows = cases::list(&self.0, department, status, limit, after)
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
}
