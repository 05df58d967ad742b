//! `/Bulk` (RFC 7644 §3.7): operations run one by one, each in its own transaction (a Bulk
//! request is not atomic). `bulkId:` references in paths and data resolve to the ids of
//! resources created earlier in the same request; an operation whose reference names a later
//! POST waits for it (several passes), so clients may order operations freely.

use crate::error::ApiError;
use crate::scim::render::location;
use crate::scim::{Caller, ResourceService};
use crate::store::{IfMatch, Load};
use scim_schema::ScimError;
use scim_schema::schema::ResourceKind;
use serde_json::{Value, json};
use std::collections::HashMap;

pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

struct Operation {
    method: String,
    bulk_id: Option<String>,
    path: String,
    version: Option<String>,
    data: Option<Value>,
}

/// Runs a BulkRequest and returns the BulkResponse body.
pub async fn run(
    service: &ResourceService,
    caller: &Caller,
    body: &Value,
    max_operations: u32,
    base: &str,
) -> Result<Value, ApiError> {
    let (ops, fail_on_errors) = parse(body, caller, max_operations)?;
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut errors = 0usize;
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    'passes: while !pending.is_empty() {
        let mut progressed = false;
        let mut still_pending = Vec::new();
        for i in pending {
            let op = &ops[i];
            let Some((path, data)) = resolve_refs(op, &created) else {
                still_pending.push(i);
                continue;
            };
            progressed = true;
            let outcome = execute(service, caller, op, &path, data.as_ref(), base).await;
            let result = match outcome {
                Ok((status, id, kind, version)) => {
                    if let (Some(bulk_id), Some(id)) = (&op.bulk_id, &id) {
                        created.insert(bulk_id.clone(), id.clone());
                    }
                    success(op, status, id.map(|id| location(base, kind, &id)), version)
                }
                Err(e) => {
                    errors += 1;
                    failure(op, &e)
                }
            };
            results[i] = Some(result);
            if fail_on_errors.is_some_and(|limit| errors >= limit) {
                break 'passes;
            }
        }
        if !progressed {
            // What is left references bulkIds that no operation creates (or a cycle).
            for i in still_pending {
                let e = ScimError::new(
                    409,
                    None,
                    "the operation references a bulkId that no other operation in this request created",
                );
                results[i] = Some(failure(&ops[i], &ApiError::Scim(e)));
            }
            break;
        }
        pending = still_pending;
    }
    Ok(json!({
        "schemas": [BULK_RESPONSE_URN],
        "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
    }))
}

fn parse(
    body: &Value,
    caller: &Caller,
    max_operations: u32,
) -> Result<(Vec<Operation>, Option<usize>), ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest must be a JSON object"))?;
    let schemas_ok = obj.get("schemas").and_then(Value::as_array).is_some_and(|s| {
        s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(BULK_REQUEST_URN)))
    });
    if !schemas_ok && !caller.tolerances.ignore_unknown {
        return Err(ScimError::invalid_syntax(format!(
            "schemas must contain \"{BULK_REQUEST_URN}\""
        ))
        .into());
    }
    let fail_on_errors =
        match obj.get("failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                ScimError::invalid_value("failOnErrors must be a positive integer")
            })? as usize),
        };
    let raw_ops = obj
        .get("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest needs an \"Operations\" array"))?;
    if raw_ops.len() > max_operations as usize {
        return Err(ScimError::new(
            413,
            None,
            format!(
                "{} operations exceed the maximum of {max_operations} (bulk.maxOperations)",
                raw_ops.len()
            ),
        )
        .into());
    }
    let mut ops = Vec::with_capacity(raw_ops.len());
    for (i, raw) in raw_ops.iter().enumerate() {
        let field = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        let method = field("method")
            .ok_or_else(|| {
                ScimError::invalid_syntax(format!("Operations[{i}] needs a \"method\""))
            })?
            .to_ascii_uppercase();
        let path = field("path").ok_or_else(|| {
            ScimError::invalid_syntax(format!("Operations[{i}] needs a \"path\""))
        })?;
        let bulk_id = field("bulkId");
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}]: a POST needs a \"bulkId\""
            ))
            .into());
        }
        ops.push(Operation {
            method,
            bulk_id,
            path,
            version: field("version"),
            data: raw.get("data").cloned(),
        });
    }
    Ok((ops, fail_on_errors))
}

/// The path and data with every `bulkId:x` replaced, or None while one is still unknown.
fn resolve_refs(
    op: &Operation,
    created: &HashMap<String, String>,
) -> Option<(String, Option<Value>)> {
    let path = match op.path.split_once("bulkId:") {
        Some((prefix, bulk_id)) => format!("{prefix}{}", created.get(bulk_id)?),
        None => op.path.clone(),
    };
    let data = match &op.data {
        Some(d) => Some(replace_refs(d, created)?),
        None => None,
    };
    Some((path, data))
}

fn replace_refs(v: &Value, created: &HashMap<String, String>) -> Option<Value> {
    Some(match v {
        Value::String(s) => match s.strip_prefix("bulkId:") {
            Some(id) => Value::String(created.get(id)?.clone()),
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(
            items.iter().map(|i| replace_refs(i, created)).collect::<Option<Vec<_>>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, val) in map {
                out.insert(k.clone(), replace_refs(val, created)?);
            }
            Value::Object(out)
        }
        _ => v.clone(),
    })
}

/// `/Users`, `/Groups/{id}`, … → the resource type and the id, if any.
fn target(path: &str) -> Result<(ResourceKind, Option<String>), ScimError> {
    let trimmed = path.trim_matches('/');
    let (collection, id) = match trimmed.split_once('/') {
        Some((c, id)) => (c, Some(id.to_owned())),
        None => (trimmed, None),
    };
    let kind = match collection.to_ascii_lowercase().as_str() {
        "users" => ResourceKind::User,
        "groups" => ResourceKind::Group,
        _ => return Err(ScimError::invalid_path(format!("unknown Bulk path \"{path}\""))),
    };
    Ok((kind, id))
}

type Executed = (u16, Option<String>, ResourceKind, Option<String>);

async fn execute(
    service: &ResourceService,
    caller: &Caller,
    op: &Operation,
    path: &str,
    data: Option<&Value>,
    _base: &str,
) -> Result<Executed, ApiError> {
    let (kind, id) = target(path)?;
    let cond = match &op.version {
        Some(v) => IfMatch::Versions(
            v.trim_start_matches("W/").trim_matches('"').parse().into_iter().collect(),
        ),
        None => IfMatch::None,
    };
    let need_data = || {
        data.ok_or_else(|| {
            ApiError::from(ScimError::invalid_syntax("the operation needs \"data\""))
        })
    };
    let need_id = || {
        id.clone().ok_or_else(|| {
            ApiError::from(ScimError::invalid_path(format!("\"{path}\" names no resource")))
        })
    };
    match op.method.as_str() {
        "POST" => {
            if id.is_some() {
                return Err(ScimError::invalid_path("POST goes to /Users or /Groups").into());
            }
            let r = service.create(caller, kind, need_data()?).await?;
            Ok((201, Some(r.id.clone()), kind, Some(r.etag())))
        }
        "PUT" => {
            let r = service
                .replace(caller, kind, &need_id()?, need_data()?, &cond, Load::default())
                .await?;
            Ok((200, Some(r.id.clone()), kind, Some(r.etag())))
        }
        "PATCH" => {
            let r = service
                .patch(caller, kind, &need_id()?, need_data()?, &cond, Load::default())
                .await?;
            Ok((200, Some(r.id.clone()), kind, Some(r.etag())))
        }
        "DELETE" => {
            service.delete(caller, kind, &need_id()?, &cond).await?;
            Ok((204, None, kind, None))
        }
        other => {
            Err(ScimError::new(405, None, format!("Bulk method \"{other}\" is not supported"))
                .into())
        }
    }
}

fn success(
    op: &Operation,
    status: u16,
    location: Option<String>,
    version: Option<String>,
) -> Value {
    let mut v = json!({ "method": op.method, "status": status.to_string() });
    if let Some(b) = &op.bulk_id {
        v["bulkId"] = json!(b);
    }
    if let Some(l) = location {
        v["location"] = json!(l);
    }
    if let Some(ver) = version {
        v["version"] = json!(ver);
    }
    v
}

fn failure(op: &Operation, e: &ApiError) -> Value {
    let err = match e {
        ApiError::Scim(s) => s.clone(),
        ApiError::Unauthorized(d) => ScimError::new(401, None, d.clone()),
        ApiError::Internal(inner) => {
            tracing::error!(error = ?inner, "bulk operation failed");
            ScimError::new(500, None, "internal error; the server log has the details")
        }
    };
    let mut v =
        json!({ "method": op.method, "status": err.status.to_string(), "response": err.to_json() });
    if let Some(b) = &op.bulk_id {
        v["bulkId"] = json!(b);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_paths() {
        assert_eq!(target("/Users").unwrap(), (ResourceKind::User, None));
        assert_eq!(target("/Groups/abc").unwrap(), (ResourceKind::Group, Some("abc".into())));
        assert!(target("/Foo").is_err());
    }

    #[test]
    fn references_resolve_or_wait() {
        let mut created = HashMap::new();
        let op = Operation {
            method: "POST".into(),
            bulk_id: Some("g".into()),
            path: "/Groups".into(),
            version: None,
            data: Some(json!({"members": [{"value": "bulkId:u1"}]})),
        };
        assert!(resolve_refs(&op, &created).is_none());
        created.insert("u1".to_string(), "id-1".to_string());
        let (_, data) = resolve_refs(&op, &created).unwrap();
        assert_eq!(data.unwrap()["members"][0]["value"], "id-1");
    }
}
