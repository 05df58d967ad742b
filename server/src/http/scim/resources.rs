//! `/Users` and `/Groups` (and their `/.search`, and the root `/.search`). Thin: read the
//! request, call [`crate::scim::ResourceService`], render and project the result.

use super::body::read_json;
use super::response::{
    base_url, if_match, list_response, not_modified, resource_response, scim_json,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::scim::compat::detect_from_body;
use crate::scim::list_params::ListParams;
use crate::scim::render::{location, render};
use crate::scim::{Caller, Existing};
use crate::store::{Load, StoredResource};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use scim_schema::ScimError;
use scim_schema::projection::Projection;
use scim_schema::schema::ResourceKind;

type Kind = web::Data<ResourceKind>;
type State = web::Data<AppState>;
type CallerData = web::ReqData<Caller>;
/// The resource id of the route.
type Id = web::Path<String>;
/// The request body, read as JSON by [`read_json`].
type Body = web::Payload;

/// `attributes` / `excludedAttributes` from the query string (accepted on every operation).
fn projection_of(req: &HttpRequest, kind: ResourceKind) -> Result<Projection, ApiError> {
    let params = query_params(req)?;
    Ok(params.projection(kind)?)
}

fn query_params(req: &HttpRequest) -> Result<ListParams, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| ScimError::invalid_value(format!("malformed query string: {e}")))?;
    Ok(ListParams::from_query(&pairs))
}

fn load_for(kind: ResourceKind, p: &Projection) -> Load {
    Load {
        members: kind == ResourceKind::Group && p.includes("members"),
        groups: kind == ResourceKind::User && p.includes("groups"),
    }
}

/// The projected JSON of one resource.
fn shaped(res: &StoredResource, base: &str, p: &Projection) -> serde_json::Value {
    let mut v = render(res, base);
    p.apply(&mut v);
    v
}

/// The JSON body of a write; `auto` mode learns the client from it.
async fn write_body(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    payload: Body,
) -> Result<serde_json::Value, ApiError> {
    let body = read_json(req, payload, state).await?;
    state.detections.observe(caller, || detect_from_body(&body)).await;
    Ok(body)
}

/// What every resource handler starts from: the request, the app, the resource type of the
/// route and the authenticated caller, each extracted as actix extracts it.
pub struct ResourceCall {
    req: HttpRequest,
    state: State,
    kind: ResourceKind,
    caller: CallerData,
}

impl FromRequest for ResourceCall {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let call = || -> Result<Self, Self::Error> {
            Ok(ResourceCall {
                state: State::extract(req).into_inner()?,
                kind: **Kind::extract(req).into_inner()?,
                caller: CallerData::extract(req).into_inner()?,
                req: req.clone(),
            })
        };
        std::future::ready(call())
    }
}

impl ResourceCall {
    /// `attributes` / `excludedAttributes` from the query string.
    fn projection(&self) -> Result<Projection, ApiError> {
        projection_of(&self.req, self.kind)
    }

    async fn write_body(&self, payload: Body) -> Result<serde_json::Value, ApiError> {
        write_body(&self.req, &self.state, &self.caller, payload).await
    }

    fn base_url(&self) -> String {
        base_url(&self.req, &self.state)
    }

    /// The projected resource, with its ETag.
    fn respond(&self, status: StatusCode, res: &StoredResource, p: &Projection) -> HttpResponse {
        resource_response(status, &shaped(res, &self.base_url(), p), &res.etag())
    }
}

pub async fn create(call: ResourceCall, payload: Body) -> Result<HttpResponse, ApiError> {
    let projection = call.projection()?;
    let body = call.write_body(payload).await?;
    let created = call.state.resources.create(&call.caller, call.kind, &body).await?;
    let mut resp = call.respond(StatusCode::CREATED, &created, &projection);
    let location = location(&call.base_url(), call.kind, &created.id);
    if let Ok(loc) = header::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

pub async fn get(call: ResourceCall, id: Id) -> Result<HttpResponse, ApiError> {
    let projection = call.projection()?;
    let resources = &call.state.resources;
    if call.req.headers().contains_key(header::IF_NONE_MATCH) {
        // Answer a revalidation without loading a big group's members.
        let bare = resources.get(&call.caller, call.kind, &id, Load::default()).await?;
        if not_modified(call.req.headers(), bare.version) {
            return Ok(HttpResponse::NotModified()
                .insert_header((header::ETAG, bare.etag()))
                .finish());
        }
    }
    let load = load_for(call.kind, &projection);
    let res = resources.get(&call.caller, call.kind, &id, load).await?;
    Ok(call.respond(StatusCode::OK, &res, &projection))
}

pub async fn replace(call: ResourceCall, id: Id, payload: Body) -> Result<HttpResponse, ApiError> {
    let projection = call.projection()?;
    let body = call.write_body(payload).await?;
    let cond = if_match(call.req.headers());
    let target =
        Existing { kind: call.kind, id: &id, cond: &cond, load: load_for(call.kind, &projection) };
    let res = call.state.resources.replace(&call.caller, target, &body).await?;
    Ok(call.respond(StatusCode::OK, &res, &projection))
}

/// A User PATCH answers 200 with the resource. A Group PATCH answers 204 unless the request
/// names attributes/excludedAttributes, so a change to a 50,000-member group never serialises
/// its members (RFC 7644 §3.5.2 allows either; Entra expects 204).
pub async fn patch(call: ResourceCall, id: Id, payload: Body) -> Result<HttpResponse, ApiError> {
    let projection = call.projection()?;
    let body = call.write_body(payload).await?;
    let respond_with_body = call.kind == ResourceKind::User || projection.has_explicit();
    let load = if respond_with_body { load_for(call.kind, &projection) } else { Load::default() };
    let cond = if_match(call.req.headers());
    let target = Existing { kind: call.kind, id: &id, cond: &cond, load };
    let res = call.state.resources.patch(&call.caller, target, &body).await?;
    if !respond_with_body {
        return Ok(HttpResponse::NoContent().insert_header((header::ETAG, res.etag())).finish());
    }
    Ok(call.respond(StatusCode::OK, &res, &projection))
}

pub async fn delete(call: ResourceCall, id: Id) -> Result<HttpResponse, ApiError> {
    let cond = if_match(call.req.headers());
    call.state.resources.delete(&call.caller, call.kind, &id, &cond).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list(call: ResourceCall) -> Result<HttpResponse, ApiError> {
    let params = query_params(&call.req)?;
    list_page(&call.req, &call.state, &call.caller, &[call.kind], &params).await
}

/// `POST /Users/.search` (RFC 7644 §3.4.3).
pub async fn search(call: ResourceCall, payload: Body) -> Result<HttpResponse, ApiError> {
    let body = read_json(&call.req, payload, &call.state).await?;
    let params = ListParams::from_search_request(&body, &call.caller.tolerances)?;
    list_page(&call.req, &call.state, &call.caller, &[call.kind], &params).await
}

/// `POST /.search`: Users, then Groups, paged as one list.
pub async fn search_all(
    req: HttpRequest,
    state: State,
    caller: CallerData,
    payload: Body,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(&req, payload, &state).await?;
    let params = ListParams::from_search_request(&body, &caller.tolerances)?;
    list_page(&req, &state, &caller, &[ResourceKind::User, ResourceKind::Group], &params).await
}

/// One page over one or more resource types, in that order. With several types, a filter that
/// names an attribute one type lacks simply matches nothing of that type.
async fn list_page(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    kinds: &[ResourceKind],
    params: &ListParams,
) -> Result<HttpResponse, ApiError> {
    let start = params.start_index()?;
    let mut remaining = params.count(state.resources.max_results())?;
    let base = base_url(req, state);
    let mut total = 0;
    let mut skip = start - 1;
    let mut out = Vec::new();
    let mut first_error = None;
    let mut any_ok = false;
    for &kind in kinds {
        let projection = params.projection(kind)?;
        let mut p = params.clone();
        p.start_index = Some((skip + 1).to_string());
        p.count = Some(remaining.to_string());
        let page = match state.resources.list(caller, kind, &p, &projection).await {
            Ok(page) => page,
            Err(e) if kinds.len() > 1 => {
                first_error.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        any_ok = true;
        total += page.total;
        skip = (skip - page.total).max(0);
        remaining -= page.resources.len() as i64;
        out.extend(page.resources.iter().map(|r| shaped(r, &base, &projection)));
    }
    if let (false, Some(e)) = (any_ok, first_error) {
        return Err(e);
    }
    Ok(scim_json(StatusCode::OK, &list_response(total, start, out)))
}
