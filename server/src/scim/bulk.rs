//! `/Bulk` (RFC 7644 §3.7): operations run one by one in the client's order, each in its own
//! transaction (a Bulk request is not atomic). A `bulkId:x` reference in a path or in data
//! resolves to the id of the resource that the request's POST with bulkId `x` created; when that
//! POST comes later in the request it runs first (RFC 7644 §3.7.2 lets clients order freely).
//! A string that names no bulkId of the request is data, not a reference.

use crate::error::ApiError;
use crate::scim::render::location;
use crate::scim::{Caller, Existing, ResourceService};
use crate::store::{IfMatch, Load};
use scim_schema::ScimError;
use scim_schema::schema::ResourceKind;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

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
    let defined: HashMap<&str, usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.method == "POST")
        .filter_map(|(i, op)| op.bulk_id.as_deref().map(|b| (b, i)))
        .collect();
    let (order, cyclic) = execution_order(&ops, &defined);
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut errors = 0usize;
    for i in order {
        let op = &ops[i];
        let outcome = if cyclic.contains(&i) {
            Err(conflict("the operation's bulkId references form a cycle"))
        } else {
            match resolve_refs(op, &defined, &created) {
                Some((path, data)) => execute(service, caller, op, &path, data.as_ref()).await,
                None => Err(conflict("the operation references a bulkId whose operation failed")),
            }
        };
        results[i] = Some(match outcome {
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
        });
        if fail_on_errors.is_some_and(|limit| errors >= limit) {
            break;
        }
    }
    Ok(json!({
        "schemas": [BULK_RESPONSE_URN],
        "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
    }))
}

fn conflict(detail: &str) -> ApiError {
    ApiError::Scim(ScimError::new(409, None, detail))
}

/// The order to run operations in: the client's, except that a POST another operation refers
/// to runs before it. Operations whose references form a cycle are returned separately.
fn execution_order(
    ops: &[Operation],
    defined: &HashMap<&str, usize>,
) -> (Vec<usize>, HashSet<usize>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    fn visit(
        i: usize,
        ops: &[Operation],
        defined: &HashMap<&str, usize>,
        marks: &mut [Mark],
        order: &mut Vec<usize>,
        cyclic: &mut HashSet<usize>,
    ) {
        match marks[i] {
            Mark::Done => return,
            Mark::Visiting => {
                cyclic.insert(i);
                return;
            }
            Mark::New => {}
        }
        marks[i] = Mark::Visiting;
        for r in references(&ops[i]) {
            if let Some(&j) = defined.get(r.as_str()).filter(|&&j| j != i) {
                visit(j, ops, defined, marks, order, cyclic);
                if cyclic.contains(&j) {
                    cyclic.insert(i);
                }
            }
        }
        marks[i] = Mark::Done;
        order.push(i);
    }
    let mut marks = vec![Mark::New; ops.len()];
    let mut order = Vec::with_capacity(ops.len());
    let mut cyclic = HashSet::new();
    for i in 0..ops.len() {
        visit(i, ops, defined, &mut marks, &mut order, &mut cyclic);
    }
    (order, cyclic)
}

/// Every `bulkId:x` an operation mentions, in its path or anywhere in its data.
fn references(op: &Operation) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.extend(s.strip_prefix("bulkId:").map(str::to_owned)),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out: Vec<String> =
        op.path.split_once("bulkId:").map(|(_, b)| b.to_owned()).into_iter().collect();
    if let Some(d) = &op.data {
        walk(d, &mut out);
    }
    out
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

/// The path and data with every reference replaced by the created id; None when a referenced
/// POST did not create its resource.
fn resolve_refs(
    op: &Operation,
    defined: &HashMap<&str, usize>,
    created: &HashMap<String, String>,
) -> Option<(String, Option<Value>)> {
    let path = match op.path.split_once("bulkId:") {
        Some((prefix, bulk_id)) if defined.contains_key(bulk_id) => {
            format!("{prefix}{}", created.get(bulk_id)?)
        }
        _ => op.path.clone(),
    };
    let data = match &op.data {
        Some(d) => Some(replace_refs(d, defined, created)?),
        None => None,
    };
    Some((path, data))
}

fn replace_refs(
    v: &Value,
    defined: &HashMap<&str, usize>,
    created: &HashMap<String, String>,
) -> Option<Value> {
    Some(match v {
        Value::String(s) => match s.strip_prefix("bulkId:").filter(|b| defined.contains_key(b)) {
            Some(b) => Value::String(created.get(b)?.clone()),
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(
            items.iter().map(|i| replace_refs(i, defined, created)).collect::<Option<Vec<_>>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, val) in map {
                out.insert(k.clone(), replace_refs(val, defined, created)?);
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
            let id = need_id()?;
            let target = Existing { kind, id: &id, cond: &cond, load: Load::default() };
            let r = service.replace(caller, target, need_data()?).await?;
            Ok((200, Some(r.id.clone()), kind, Some(r.etag())))
        }
        "PATCH" => {
            let id = need_id()?;
            let target = Existing { kind, id: &id, cond: &cond, load: Load::default() };
            let r = service.patch(caller, target, need_data()?).await?;
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
    if let ApiError::Internal(inner) = e {
        // The cause chain on one line (the Debug form spreads over many).
        tracing::error!(error = format!("{inner:#}"), "bulk operation failed");
    }
    let err = e.scim_error();
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

    fn op(method: &str, bulk_id: Option<&str>, path: &str, data: Value) -> Operation {
        Operation {
            method: method.into(),
            bulk_id: bulk_id.map(str::to_owned),
            path: path.into(),
            version: None,
            data: Some(data),
        }
    }

    #[test]
    fn references_resolve_only_to_defined_bulk_ids() {
        let g = op(
            "POST",
            Some("g"),
            "/Groups",
            json!({"displayName": "bulkId:not-a-ref", "members": [{"value": "bulkId:u1"}]}),
        );
        let defined: HashMap<&str, usize> = [("u1", 1)].into_iter().collect();
        let mut created = HashMap::new();
        assert!(resolve_refs(&g, &defined, &created).is_none(), "u1 not created yet");
        created.insert("u1".to_string(), "id-1".to_string());
        let (_, data) = resolve_refs(&g, &defined, &created).unwrap();
        let data = data.unwrap();
        assert_eq!(data["members"][0]["value"], "id-1");
        assert_eq!(data["displayName"], "bulkId:not-a-ref", "undefined bulkIds are data");
    }

    #[test]
    fn referenced_posts_run_first_and_cycles_are_found() {
        let ops = vec![
            op("PATCH", None, "/Groups/bulkId:g", json!({})),
            op("POST", Some("u"), "/Users", json!({})),
            op("POST", Some("g"), "/Groups", json!({"members": [{"value": "bulkId:u"}]})),
            op("DELETE", None, "/Users/x", json!(null)),
            op("POST", Some("a"), "/Groups", json!({"members": [{"value": "bulkId:b"}]})),
            op("POST", Some("b"), "/Groups", json!({"members": [{"value": "bulkId:a"}]})),
        ];
        let defined: HashMap<&str, usize> =
            [("u", 1), ("g", 2), ("a", 4), ("b", 5)].into_iter().collect();
        let (order, cyclic) = execution_order(&ops, &defined);
        assert_eq!(order[..4], [1, 2, 0, 3], "dependencies first, otherwise the client's order");
        assert!(cyclic.contains(&4) && cyclic.contains(&5));
    }
}
