//! Each SCIM operation on Users and Groups: validate with `scim_schema`, run one store call
//! (one transaction), hand back the stored resource. Handlers render and project it.

use crate::config::Settings;
use crate::error::ApiError;
use crate::names::normalize_names;
use crate::scim::compat::CompatMode;
use crate::scim::list_params::ListParams;
use crate::store::{
    IfMatch, ListPage, Load, NewResource, PatchPlan, Source, Store, StoreError, StoredResource,
    WriteCtx,
};
use scim_schema::patch::{apply_patch, parse_patch_request};
use scim_schema::projection::Projection;
use scim_schema::resource::normalize_resource;
use scim_schema::schema::ResourceKind;
use scim_schema::{ScimError, ScimType, Tolerances};
use serde_json::Value;
use std::sync::Arc;

/// The authenticated identity source a request acts for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub source: Source,
    pub token_id: uuid::Uuid,
    /// The effective compatibility mode (config, else the stored mode; `auto` resolved).
    pub compat: CompatMode,
    pub tolerances: Tolerances,
    /// Sources whose users and groups this one takes over on create (source migration).
    pub adopt_from: Vec<String>,
}

impl Caller {
    pub fn new(source: Source, token_id: uuid::Uuid, settings: &Settings) -> Caller {
        let compat = CompatMode::effective(&source, settings);
        let adopt_from = settings
            .sources
            .get(source.name.as_str())
            .map(|s| s.adopt_from.clone())
            .unwrap_or_default();
        Caller { source, token_id, compat, tolerances: compat.tolerances(), adopt_from }
    }

    fn write_ctx(&self) -> WriteCtx {
        WriteCtx {
            source_id: self.source.id,
            token_id: Some(self.token_id),
            adopt_from: self.adopt_from.clone(),
        }
    }
}

/// The existing resource a PUT or PATCH writes: which one, the `If-Match` it must meet, and
/// what to load with the result.
#[derive(Debug, Clone, Copy)]
pub struct Existing<'a> {
    pub kind: ResourceKind,
    pub id: &'a str,
    pub cond: &'a IfMatch,
    pub load: Load,
}

impl Existing<'_> {
    /// A store error, with the store's "not found" told as this resource's 404.
    fn error(&self, e: StoreError) -> ApiError {
        not_found(e, self.kind, self.id)
    }
}

pub struct ResourceService {
    store: Arc<dyn Store>,
    max_results: u32,
    max_patch_operations: u32,
}

impl ResourceService {
    pub fn new(store: Arc<dyn Store>, settings: &Settings) -> Self {
        ResourceService {
            store,
            max_results: settings.scim.max_results,
            max_patch_operations: settings.scim.max_patch_operations,
        }
    }

    pub async fn create(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        body: &Value,
    ) -> Result<StoredResource, ApiError> {
        let mut n = normalize_resource(kind, body, &caller.tolerances)?;
        normalize_names(kind, &mut n.doc)?;
        log_ignored(caller, kind, &n.ignored);
        let new = NewResource { doc: n.doc, members: n.members };
        Ok(self.store.create(&caller.write_ctx(), kind, &new).await?)
    }

    pub async fn get(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        load: Load,
    ) -> Result<StoredResource, ApiError> {
        self.store.get(caller.source.id, kind, id, load).await.map_err(|e| not_found(e, kind, id))
    }

    /// PUT: replaces every writable attribute; never creates (RFC 7644 §3.5.1).
    pub async fn replace(
        &self,
        caller: &Caller,
        target: Existing<'_>,
        body: &Value,
    ) -> Result<StoredResource, ApiError> {
        let mut n = normalize_resource(target.kind, body, &caller.tolerances)?;
        normalize_names(target.kind, &mut n.doc)?;
        log_ignored(caller, target.kind, &n.ignored);
        // A PUT without `members` empties the group: PUT replaces the whole resource.
        let members = match target.kind {
            ResourceKind::Group => Some(n.members.unwrap_or_default()),
            ResourceKind::User => None,
        };
        let new = NewResource { doc: n.doc, members };
        let Existing { kind, id, cond, load } = target;
        let ctx = caller.write_ctx();
        self.store.replace(&ctx, kind, id, &new, cond, load).await.map_err(|e| target.error(e))
    }

    pub async fn patch(
        &self,
        caller: &Caller,
        target: Existing<'_>,
        body: &Value,
    ) -> Result<StoredResource, ApiError> {
        let Existing { kind, id, cond, load } = target;
        let tol = caller.tolerances;
        let ops = parse_patch_request(body, &tol)?;
        if ops.len() > self.max_patch_operations as usize {
            // RFC 7644 has no error for this; `tooMany` ("more than the server is willing to
            // process") fits best, and a client can split the request.
            return Err(ScimError::bad_request(
                ScimType::TooMany,
                format!(
                    "a PATCH may carry at most {} operations (scim.max_patch_operations); \
                     this one has {}: split it into several requests",
                    self.max_patch_operations,
                    ops.len()
                ),
            )
            .into());
        }
        let patcher = move |current: &Value| {
            let mut doc = current.clone();
            let outcome = apply_patch(kind, &mut doc, &ops, &tol)?;
            if outcome.doc_changed {
                normalize_names(kind, &mut doc)?;
            }
            if !outcome.ignored.is_empty() {
                tracing::info!(ignored = ?outcome.ignored, "PATCH: ignored attributes");
            }
            Ok(PatchPlan {
                doc: outcome.doc_changed.then_some(doc),
                member_changes: outcome.member_changes,
            })
        };
        let ctx = caller.write_ctx();
        self.store.patch(&ctx, kind, id, cond, &patcher, load).await.map_err(|e| target.error(e))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
    ) -> Result<(), ApiError> {
        self.store
            .delete(&caller.write_ctx(), kind, id, cond)
            .await
            .map_err(|e| not_found(e, kind, id))
    }

    pub async fn list(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        params: &ListParams,
        projection: &Projection,
    ) -> Result<ListPage, ApiError> {
        let query = params.to_query(kind, &caller.tolerances, self.max_results, projection)?;
        Ok(self.store.list(caller.source.id, kind, &query).await?)
    }

    pub fn max_results(&self) -> u32 {
        self.max_results
    }
}

fn not_found(e: StoreError, kind: ResourceKind, id: &str) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(kind.name(), id),
        other => other.into(),
    }
}

fn log_ignored(caller: &Caller, kind: ResourceKind, ignored: &[String]) {
    if !ignored.is_empty() {
        tracing::info!(source = %caller.source.name, resource = kind.name(), ignored = ?ignored,
            "ignored unknown or read-only attributes");
    }
}
