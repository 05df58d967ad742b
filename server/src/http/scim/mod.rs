//! SCIM 2.0 endpoints (RFC 7644) under `/scim/v2`. Every endpoint needs a source's bearer
//! token; the middleware turns it into a [`Caller`] in the request extensions.

mod auth;
mod body;
mod bulk;
mod discovery;
mod resources;
mod response;

use crate::error::ApiError;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use scim_schema::schema::ResourceKind;

pub use crate::scim::Caller;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scim/v2")
            .wrap(from_fn(auth::require_source_token))
            .service(resource_type_scope("/Users", ResourceKind::User))
            .service(resource_type_scope("/Groups", ResourceKind::Group))
            .service(
                web::resource("/.search")
                    .post(resources::search_all)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/Bulk")
                    .post(bulk::bulk)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/ServiceProviderConfig")
                    .get(discovery::service_provider_config)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/ResourceTypes")
                    .get(discovery::resource_types)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/ResourceTypes/{name}")
                    .get(discovery::resource_type)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/Schemas")
                    .get(discovery::schemas)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/Schemas/{urn}")
                    .get(discovery::schema)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(web::resource("/Me").to(me))
            .service(web::resource("/Me/{rest:.*}").to(me))
            .default_service(web::to(super::not_found)),
    );
}

fn resource_type_scope(path: &str, kind: ResourceKind) -> actix_web::Scope {
    web::scope(path)
        .app_data(web::Data::new(kind))
        .service(
            web::resource("")
                .get(resources::list)
                .post(resources::create)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/.search")
                .post(resources::search)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/{id}")
                .get(resources::get)
                .put(resources::replace)
                .patch(resources::patch)
                .delete(resources::delete)
                .default_service(web::to(method_not_allowed)),
        )
}

// These answer with `Err` so that the error stays attached to the response for its log line.
async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed(format!(
        "{} is not supported on {}",
        req.method(),
        req.path()
    )))
}

/// `/Me` would need a user behind the token; scimbridge's tokens belong to identity providers.
async fn me() -> Result<HttpResponse, ApiError> {
    Err(ApiError::Scim(scim_schema::ScimError::new(
        501,
        None,
        "/Me is not supported: scimbridge tokens belong to identity providers, not users",
    )))
}
