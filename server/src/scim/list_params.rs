//! Query parameters of a list or search (RFC 7644 §3.4.2, §3.4.3): from the URL query or from
//! a SearchRequest body.

use crate::store::{ListQuery, Load};
use scim_schema::filter::{parse_attr_path, parse_filter};
use scim_schema::projection::Projection;
use scim_schema::schema::ResourceKind;
use scim_schema::{ScimError, Tolerances};
use serde_json::Value;

pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The raw parameters, before they are checked against one resource type.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl ListParams {
    /// From `?filter=…&startIndex=…`; parameter names are matched case-insensitively and unknown
    /// ones are ignored (Entra appends `aadOptscim062020` to the URL).
    pub fn from_query(pairs: &[(String, String)]) -> ListParams {
        let mut p = ListParams::default();
        for (k, v) in pairs {
            if let Some(slot) = p.slot(k) {
                *slot = Some(v.clone());
            }
        }
        p
    }

    /// The field a parameter name (any case) sets; None for names that are not ours.
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name.to_ascii_lowercase().as_str() {
            "filter" => &mut self.filter,
            "sortby" => &mut self.sort_by,
            "sortorder" => &mut self.sort_order,
            "startindex" => &mut self.start_index,
            "count" => &mut self.count,
            "attributes" => &mut self.attributes,
            "excludedattributes" => &mut self.excluded_attributes,
            _ => return None,
        })
    }

    /// From a SearchRequest body (`POST …/.search`).
    pub fn from_search_request(body: &Value, tol: &Tolerances) -> Result<ListParams, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
        let schemas_ok = obj.get("schemas").and_then(Value::as_array).is_some_and(|s| {
            s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(SEARCH_REQUEST_URN)))
        });
        if !schemas_ok && !tol.ignore_unknown {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain \"{SEARCH_REQUEST_URN}\""
            )));
        }
        let mut p = ListParams::default();
        for (k, v) in obj {
            let text = match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Array(items) => {
                    Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                }
                Value::Null => None,
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "SearchRequest \"{k}\" has the wrong type"
                    )));
                }
            };
            if let Some(slot) = p.slot(k) {
                *slot = text;
            }
        }
        Ok(p)
    }

    pub fn projection(&self, kind: ResourceKind) -> Result<Projection, ScimError> {
        Projection::parse(kind, self.attributes.as_deref(), self.excluded_attributes.as_deref())
    }

    /// 1-based start; values below 1 count as 1 (RFC 7644 §3.4.2.4).
    pub fn start_index(&self) -> Result<i64, ScimError> {
        Ok(parse_int("startIndex", self.start_index.as_deref())?.unwrap_or(1).max(1))
    }

    /// Negative counts as 0; absent or above the cap is the cap.
    pub fn count(&self, max_results: u32) -> Result<i64, ScimError> {
        let max = i64::from(max_results);
        Ok(parse_int("count", self.count.as_deref())?.unwrap_or(max).clamp(0, max))
    }

    pub fn descending(&self) -> Result<bool, ScimError> {
        match self.sort_order.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("ascending") | Some("") => Ok(false),
            Some("descending") => Ok(true),
            Some(other) => Err(ScimError::invalid_value(format!(
                "sortOrder must be \"ascending\" or \"descending\", not \"{other}\""
            ))),
        }
    }

    /// The store query for one resource type.
    pub fn to_query(
        &self,
        kind: ResourceKind,
        tol: &Tolerances,
        max_results: u32,
        projection: &Projection,
    ) -> Result<ListQuery, ScimError> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(parse_filter(f, tol)?),
        };
        let sort_by = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(
                parse_attr_path(s)
                    .map_err(|e| ScimError::invalid_value(format!("sortBy: {}", e.detail)))?,
            ),
        };
        Ok(ListQuery {
            filter,
            sort_by,
            descending: self.descending()?,
            start_index: self.start_index()?,
            count: self.count(max_results)?,
            load: Load {
                members: kind == ResourceKind::Group && projection.includes("members"),
                groups: kind == ResourceKind::User && projection.includes("groups"),
            },
        })
    }
}

fn parse_int(name: &str, v: Option<&str>) -> Result<Option<i64>, ScimError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            ScimError::invalid_value(format!("{name} must be an integer, not \"{s}\""))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> ListParams {
        let owned: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ListParams::from_query(&owned)
    }

    #[test]
    fn paging_rules() {
        let p = q(&[("startIndex", "0"), ("count", "-5")]);
        assert_eq!(p.start_index().unwrap(), 1);
        assert_eq!(p.count(100).unwrap(), 0);
        assert_eq!(q(&[("COUNT", "5000")]).count(100).unwrap(), 100);
        assert_eq!(q(&[]).count(100).unwrap(), 100);
        assert_eq!(q(&[("count", "x")]).count(100).unwrap_err().status, 400);
    }

    #[test]
    fn search_request_arrays_join() {
        let body = json!({"schemas": [SEARCH_REQUEST_URN], "attributes": ["userName", "emails"], "count": 3});
        let p = ListParams::from_search_request(&body, &Tolerances::strict()).unwrap();
        assert_eq!(p.attributes.as_deref(), Some("userName,emails"));
        assert_eq!(p.count.as_deref(), Some("3"));
    }

    #[test]
    fn search_request_needs_schema_in_strict_mode() {
        let body = json!({"filter": "userName eq \"a\""});
        assert!(ListParams::from_search_request(&body, &Tolerances::strict()).is_err());
        assert!(ListParams::from_search_request(&body, &Tolerances::lenient()).is_ok());
    }
}
