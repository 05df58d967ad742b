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
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use scim_schema::ScimError;
use scim_schema::projection::Projection;
use scim_schema::schema::ResourceKind;

type Kind = web::Data<ResourceKind>;
type State = web::Data<AppState>;
type CallerData = web::ReqData<Caller>;

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
    payload: web::Payload,
) -> Result<serde_json::Value, ApiError> {
    let body = read_json(req, payload, state).await?;
    state.detections.observe(caller, || detect_from_body(&body)).await;
    Ok(body)
}

pub async fn create(
    req: HttpRequest,
    state: State,
    kind: Kind,
    caller: CallerData,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let projection = projection_of(&req, **kind)?;
    let body = write_body(&req, &state, &caller, payload).await?;
    let created = state.resources.create(&caller, **kind, &body).await?;
    let base = base_url(&req, &state);
    let mut resp = resource_response(
        StatusCode::CREATED,
        &shaped(&created, &base, &projection),
        &created.etag(),
    );
    if let Ok(loc) = header::HeaderValue::from_str(&location(&base, **kind, &created.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

pub async fn get(
    req: HttpRequest,
    state: State,
    kind: Kind,
    caller: CallerData,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let projection = projection_of(&req, **kind)?;
    if req.headers().contains_key(header::IF_NONE_MATCH) {
        // Answer a revalidation without loading a big group's members.
        let bare = state.resources.get(&caller, **kind, &id, Load::default()).await?;
        if not_modified(req.headers(), bare.version) {
            return Ok(HttpResponse::NotModified()
                .insert_header((header::ETAG, bare.etag()))
                .finish());
        }
    }
    let res = state.resources.get(&caller, **kind, &id, load_for(**kind, &projection)).await?;
    let base = base_url(&req, &state);
    Ok(resource_response(StatusCode::OK, &shaped(&res, &base, &projection), &res.etag()))
}

pub async fn replace(
    req: HttpRequest,
    state: State,
    kind: Kind,
    caller: CallerData,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let projection = projection_of(&req, **kind)?;
    let body = write_body(&req, &state, &caller, payload).await?;
    let cond = if_match(req.headers());
    let target =
        Existing { kind: **kind, id: &id, cond: &cond, load: load_for(**kind, &projection) };
    let res = state.resources.replace(&caller, target, &body).await?;
    let base = base_url(&req, &state);
    Ok(resource_response(StatusCode::OK, &shaped(&res, &base, &projection), &res.etag()))
}

/// A User PATCH answers 200 with the resource. A Group PATCH answers 204 unless the request
/// names attributes/excludedAttributes, so a change to a 50,000-member group never serialises
/// its members (RFC 7644 §3.5.2 allows either; Entra expects 204).
pub async fn patch(
    req: HttpRequest,
    state: State,
    kind: Kind,
    caller: CallerData,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let projection = projection_of(&req, **kind)?;
    let body = write_body(&req, &state, &caller, payload).await?;
    let respond_with_body = **kind == ResourceKind::User || projection.has_explicit();
    let load = if respond_with_body { load_for(**kind, &projection) } else { Load::default() };
    let cond = if_match(req.headers());
    let target = Existing { kind: **kind, id: &id, cond: &cond, load };
    let res = state.resources.patch(&caller, target, &body).await?;
    if !respond_with_body {
        return Ok(HttpResponse::NoContent().insert_header((header::ETAG, res.etag())).finish());
    }
    let base = base_url(&req, &state);
    Ok(resource_response(StatusCode::OK, &shaped(&res, &base, &projection), &res.etag()))
}

pub async fn delete(
    req: HttpRequest,
    state: State,
    kind: Kind,
    caller: CallerData,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.resources.delete(&caller, **kind, &id, &if_match(req.headers())).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list(
    req: HttpRequest,
    state: State,
    kind: Kind,
    caller: CallerData,
) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req)?;
    list_page(&req, &state, &caller, &[**kind], &params).await
}

/// `POST /Users/.search` (RFC 7644 §3.4.3).
pub async fn search(
    req: HttpRequest,
    state: State,
    kind: Kind,
    caller: CallerData,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(&req, payload, &state).await?;
    let params = ListParams::from_search_request(&body, &caller.tolerances)?;
    list_page(&req, &state, &caller, &[**kind], &params).await
}

/// `POST /.search`: Users, then Groups, paged as one list.
pub async fn search_all(
    req: HttpRequest,
    state: State,
    caller: CallerData,
    payload: web::Payload,
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
