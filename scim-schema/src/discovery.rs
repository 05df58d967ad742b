//! The discovery documents of RFC 7644 §4 / RFC 7643 §5–7: `/ServiceProviderConfig`,
//! `/ResourceTypes` and `/Schemas`. Every `base_url` is the SCIM base (e.g.
//! `https://idp-bridge.example.com/scim/v2`); a trailing `/` is ignored.

use crate::schema::{ResourceKind, SchemaDef, enterprise_user_schema, group_schema, user_schema};
use serde_json::{Value, json};

pub const SERVICE_PROVIDER_CONFIG_URN: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// The advertised limits (shared/reference/scim-and-idp-clients.md §1.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProviderSettings {
    /// `filter.maxResults`: the page cap.
    pub max_results: u32,
    /// `bulk.maxOperations` (authentik sizes its PATCH batches by it).
    pub bulk_max_operations: u32,
    /// `bulk.maxPayloadSize` in bytes.
    pub bulk_max_payload_size: u64,
    pub documentation_uri: Option<String>,
}

/// `/ServiceProviderConfig` (RFC 7643 §5). Advertises only what scimbridge implements: a
/// truthful `patch.supported` decides whether Entra and authentik PATCH at all.
pub fn service_provider_config(base_url: &str, s: &ServiceProviderSettings) -> Value {
    let mut config = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_URN],
        "patch": { "supported": true },
        "bulk": {
            "supported": true,
            "maxOperations": s.bulk_max_operations,
            "maxPayloadSize": s.bulk_max_payload_size,
        },
        "filter": { "supported": true, "maxResults": s.max_results },
        // AWS Identity Center has no passwords.
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token issued by `scimbridge token create`",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", trim(base_url)),
        },
    });
    if let Some(uri) = &s.documentation_uri {
        config["documentationUri"] = Value::String(uri.clone());
    }
    config
}

/// `/ResourceTypes/{name}` (RFC 7643 §6).
pub fn resource_type(kind: ResourceKind, base_url: &str) -> Value {
    let mut rt = json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": kind.endpoint(),
        "description": kind.core_schema().description,
        "schema": kind.core_schema().id,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{}", trim(base_url), kind.name()),
        },
    });
    // Omitted when empty, as in the RFC 7643 §8.6 Group example.
    let extensions: Vec<Value> = kind
        .extensions()
        .iter()
        .map(|ext| json!({ "schema": ext.id, "required": false }))
        .collect();
    if !extensions.is_empty() {
        rt["schemaExtensions"] = Value::Array(extensions);
    }
    rt
}

/// All resource types, User first.
pub fn resource_types(base_url: &str) -> Vec<Value> {
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .map(|k| resource_type(k, base_url))
        .collect()
}

/// All schemas: User, Group, EnterpriseUser.
pub fn schemas(base_url: &str) -> Vec<Value> {
    all_schemas().iter().map(|s| s.to_json(base_url)).collect()
}

/// `/Schemas/{urn}`; the URN is compared case-insensitively. None → 404.
pub fn schema_by_urn(urn: &str, base_url: &str) -> Option<Value> {
    all_schemas().into_iter().find(|s| s.id.eq_ignore_ascii_case(urn)).map(|s| s.to_json(base_url))
}

fn all_schemas() -> [&'static SchemaDef; 3] {
    [user_schema(), group_schema(), enterprise_user_schema()]
}

fn trim(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_URN, GROUP_URN, USER_URN};

    const BASE: &str = "https://bridge.example.com/scim/v2/";

    fn settings() -> ServiceProviderSettings {
        ServiceProviderSettings {
            max_results: 200,
            bulk_max_operations: 100,
            bulk_max_payload_size: 8 * 1024 * 1024,
            documentation_uri: None,
        }
    }

    #[test]
    fn service_provider_config_advertises_the_implemented_features() {
        let spc = service_provider_config(BASE, &settings());
        assert_eq!(spc["schemas"], json!([SERVICE_PROVIDER_CONFIG_URN]));
        assert_eq!(spc["patch"], json!({"supported": true}));
        assert_eq!(
            spc["bulk"],
            json!({"supported": true, "maxOperations": 100, "maxPayloadSize": 8_388_608})
        );
        assert_eq!(spc["filter"], json!({"supported": true, "maxResults": 200}));
        assert_eq!(spc["changePassword"]["supported"], json!(false));
        assert_eq!(spc["sort"]["supported"], json!(true));
        assert_eq!(spc["etag"]["supported"], json!(true));
        let schemes = spc["authenticationSchemes"].as_array().unwrap();
        assert_eq!(schemes.len(), 1);
        assert_eq!(schemes[0]["type"], "oauthbearertoken");
        assert_eq!(schemes[0]["primary"], json!(true));
        assert!(schemes[0]["name"].is_string() && schemes[0]["description"].is_string());
        assert_eq!(spc["meta"]["resourceType"], "ServiceProviderConfig");
        assert_eq!(
            spc["meta"]["location"],
            "https://bridge.example.com/scim/v2/ServiceProviderConfig"
        );
        assert!(spc.get("documentationUri").is_none());
    }

    #[test]
    fn service_provider_config_documentation_uri_when_set() {
        let s = ServiceProviderSettings {
            documentation_uri: Some("https://docs.example.com".into()),
            ..settings()
        };
        assert_eq!(
            service_provider_config(BASE, &s)["documentationUri"],
            "https://docs.example.com"
        );
    }

    #[test]
    fn user_resource_type_lists_the_enterprise_extension() {
        let rt = resource_type(ResourceKind::User, BASE);
        assert_eq!(rt["schemas"], json!([RESOURCE_TYPE_URN]));
        assert_eq!(rt["id"], "User");
        assert_eq!(rt["name"], "User");
        assert_eq!(rt["endpoint"], "/Users");
        assert_eq!(rt["schema"], USER_URN);
        assert_eq!(
            rt["schemaExtensions"],
            json!([{"schema": ENTERPRISE_USER_URN, "required": false}])
        );
        assert_eq!(rt["meta"]["resourceType"], "ResourceType");
        assert_eq!(rt["meta"]["location"], "https://bridge.example.com/scim/v2/ResourceTypes/User");
    }

    #[test]
    fn group_resource_type_has_no_extensions() {
        let rt = resource_type(ResourceKind::Group, BASE);
        assert_eq!(rt["id"], "Group");
        assert_eq!(rt["endpoint"], "/Groups");
        assert_eq!(rt["schema"], GROUP_URN);
        assert!(rt.get("schemaExtensions").is_none());
        assert_eq!(resource_types(BASE).len(), 2);
        assert_eq!(resource_types(BASE)[1], rt);
    }

    #[test]
    fn schemas_lists_user_group_enterprise() {
        let all = schemas(BASE);
        let ids: Vec<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [USER_URN, GROUP_URN, ENTERPRISE_USER_URN]);
        for s in &all {
            assert_eq!(s["schemas"], json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"]));
            assert_eq!(s["meta"]["resourceType"], "Schema");
            assert_eq!(
                s["meta"]["location"],
                format!("https://bridge.example.com/scim/v2/Schemas/{}", s["id"].as_str().unwrap())
            );
            assert!(s["name"].is_string() && s["description"].is_string());
        }
    }

    #[test]
    fn schema_by_urn_is_case_insensitive_and_none_for_unknown() {
        let s = schema_by_urn(&ENTERPRISE_USER_URN.to_uppercase(), BASE).unwrap();
        assert_eq!(s["id"], ENTERPRISE_USER_URN);
        assert_eq!(s["name"], "EnterpriseUser");
        assert!(
            schema_by_urn("urn:ietf:params:scim:schemas:extension:enterprise:2.0User", BASE)
                .is_none()
        );
        assert!(schema_by_urn("3f1c0b44-3b8e-4c38-9c0f-000000000000", BASE).is_none());
    }

    /// Every attribute definition carries the characteristics RFC 7643 §7 lists, and nested
    /// ones only under complex attributes.
    #[test]
    fn every_attribute_has_the_rfc_7643_section_7_fields() {
        fn check(a: &Value, depth: usize) {
            for key in [
                "name",
                "type",
                "multiValued",
                "description",
                "required",
                "caseExact",
                "mutability",
                "returned",
                "uniqueness",
            ] {
                assert!(a.get(key).is_some(), "{key} missing in {a}");
            }
            let is_complex = a["type"] == "complex";
            assert_eq!(a.get("subAttributes").is_some(), is_complex, "{a}");
            if a["type"] == "reference" {
                assert!(a["referenceTypes"].as_array().is_some_and(|t| !t.is_empty()), "{a}");
            }
            if is_complex {
                assert_eq!(depth, 0, "complex attributes cannot nest (RFC 7643 §2.3.8)");
                for sub in a["subAttributes"].as_array().unwrap() {
                    check(sub, depth + 1);
                }
            }
        }
        for s in schemas(BASE) {
            for a in s["attributes"].as_array().unwrap() {
                check(a, 0);
            }
        }
    }
}
