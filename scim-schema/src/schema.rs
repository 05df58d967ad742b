//! Attribute metadata (RFC 7643 §2.2, §7) and the resource schemas scimbridge serves:
//! core User, Group and the Enterprise User extension.
//!
//! The metadata drives validation ([`crate::resource`]), PATCH ([`crate::patch`]), projection
//! ([`crate::projection`]), filter translation (the server's store) and `/Schemas`.

use crate::filter::ast::AttrPath;
use serde_json::{Value, json};
use std::sync::LazyLock;

mod definitions;

use definitions::{build_enterprise_user_schema, build_group_schema, build_user_schema};

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttributeDef {
    /// Canonical spelling (`userName`); lookups are case-insensitive.
    pub name: &'static str,
    pub attr_type: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub description: &'static str,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    /// Empty unless `attr_type` is `Complex`.
    pub sub_attributes: Vec<AttributeDef>,
}

/// One schema (`urn:…:User`, `urn:…:Group`, the enterprise extension).
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: Vec<AttributeDef>,
}

/// The two resource types scimbridge serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

/// Where a resolved attribute lives in a resource's JSON: at the top level (core schema) or
/// under its extension's URN key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedAttr<'a> {
    /// `Some(urn)` when the attribute belongs to an extension schema (its JSON lives under
    /// the URN key); `None` for the core schema.
    pub extension: Option<&'static str>,
    pub attr: &'a AttributeDef,
    /// The sub-attribute, when the path names one.
    pub sub: Option<&'a AttributeDef>,
}

// ---------------------------------------------------------------------------------------------
// The schema definitions (RFC 7643 §3.1, §4, §8.7.1)
// ---------------------------------------------------------------------------------------------

const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The common attributes of RFC 7643 §3.1. They live in the core schemas so that
/// [`ResourceKind::resolve`] finds them, but `/Schemas` leaves them out: RFC 7643 §8.7.1 does
/// not list them, and clients (python scim2-models) add them to every resource themselves.
const COMMON_ATTRIBUTES: [&str; 3] = ["id", "externalId", "meta"];

static USER_SCHEMA: LazyLock<SchemaDef> = LazyLock::new(build_user_schema);
static GROUP_SCHEMA: LazyLock<SchemaDef> = LazyLock::new(build_group_schema);
static ENTERPRISE_USER_SCHEMA: LazyLock<SchemaDef> = LazyLock::new(build_enterprise_user_schema);
static USER_EXTENSIONS: LazyLock<[&'static SchemaDef; 1]> =
    LazyLock::new(|| [enterprise_user_schema()]);

/// `urn:ietf:params:scim:schemas:core:2.0:User` (RFC 7643 §4.1, §8.7.1), plus the common
/// attributes `id`, `externalId` and `meta`.
pub fn user_schema() -> &'static SchemaDef {
    &USER_SCHEMA
}

/// `urn:ietf:params:scim:schemas:core:2.0:Group` (RFC 7643 §4.2, §8.7.1), plus the common
/// attributes.
pub fn group_schema() -> &'static SchemaDef {
    &GROUP_SCHEMA
}

/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` (RFC 7643 §4.3, §8.7.1).
pub fn enterprise_user_schema() -> &'static SchemaDef {
    &ENTERPRISE_USER_SCHEMA
}

impl AttributeDef {
    /// The sub-attribute called `name`, matched case-insensitively (RFC 7643 §2.1).
    pub fn sub_attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The attribute definition as `/Schemas` serves it (RFC 7643 §7).
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "name": self.name,
            "type": self.attr_type.as_str(),
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability.as_str(),
            "returned": self.returned.as_str(),
            "uniqueness": self.uniqueness.as_str(),
        });
        if !self.canonical_values.is_empty() {
            out["canonicalValues"] = json!(self.canonical_values);
        }
        if !self.reference_types.is_empty() {
            out["referenceTypes"] = json!(self.reference_types);
        }
        if self.attr_type == AttrType::Complex {
            let subs: Vec<Value> = self.sub_attributes.iter().map(AttributeDef::to_json).collect();
            out["subAttributes"] = Value::Array(subs);
        }
        out
    }
}

impl SchemaDef {
    /// The attribute called `name`, matched case-insensitively (RFC 7643 §2.1). Finds the
    /// common attributes (`id`, `externalId`, `meta`) in the core schemas too.
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The schema resource served at `/Schemas/{id}` (RFC 7643 §7, §8.7.1).
    pub fn to_json(&self, base_url: &str) -> Value {
        let attributes: Vec<Value> = self
            .attributes
            .iter()
            .filter(|a| !COMMON_ATTRIBUTES.contains(&a.name))
            .map(AttributeDef::to_json)
            .collect();
        json!({
            "schemas": [SCHEMA_URN],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": attributes,
            "meta": {
                "resourceType": "Schema",
                "location": format!("{}/Schemas/{}", base_url.trim_end_matches('/'), self.id),
            },
        })
    }
}

impl ResourceKind {
    /// The resource type's name (`/ResourceTypes`, `meta.resourceType`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The endpoint relative to the SCIM base URL.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "/Users",
            ResourceKind::Group => "/Groups",
        }
    }

    pub fn core_schema(self) -> &'static SchemaDef {
        match self {
            ResourceKind::User => user_schema(),
            ResourceKind::Group => group_schema(),
        }
    }

    /// The extension schemas the resource type allows (none is required).
    pub fn extensions(self) -> &'static [&'static SchemaDef] {
        match self {
            ResourceKind::User => USER_EXTENSIONS.as_slice(),
            ResourceKind::Group => &[],
        }
    }

    /// The extension schema whose URN is `urn` (compared case-insensitively, as URNs are).
    pub fn extension(self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions().iter().copied().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Resolve an attribute path against the core schema (URN = core URN or none), then the
    /// extensions (URN = extension URN; an unqualified name is also looked up in extensions
    /// after the core schema, as clients send `employeeNumber`). None when unknown, or when a
    /// sub-attribute is named on a non-complex attribute or is unknown.
    pub fn resolve(self, path: &AttrPath) -> Option<ResolvedAttr<'static>> {
        let core = self.core_schema();
        match path.urn.as_deref() {
            Some(urn) if urn.eq_ignore_ascii_case(core.id) => resolve_in(core, None, path),
            Some(urn) => {
                let ext = self.extension(urn)?;
                resolve_in(ext, Some(ext.id), path)
            }
            // A name the core schema knows is never looked up again in an extension, so
            // `name.bogus` fails instead of matching something else.
            None if core.attribute(&path.name).is_some() => resolve_in(core, None, path),
            None => self.extensions().iter().find_map(|ext| resolve_in(ext, Some(ext.id), path)),
        }
    }
}

fn resolve_in(
    schema: &'static SchemaDef,
    extension: Option<&'static str>,
    path: &AttrPath,
) -> Option<ResolvedAttr<'static>> {
    let attr = schema.attribute(&path.name)?;
    let sub = match &path.sub_attr {
        Some(name) => Some(attr.sub_attribute(name)?),
        None => None,
    };
    Some(ResolvedAttr { extension, attr, sub })
}

impl AttrType {
    /// The keyword of RFC 7643 §7 (`"dateTime"`, `"complex"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(urn: Option<&str>, name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: urn.map(str::to_owned),
            name: name.to_owned(),
            sub_attr: sub.map(str::to_owned),
        }
    }

    fn names(schema: &SchemaDef) -> Vec<&'static str> {
        schema.attributes.iter().map(|a| a.name).collect()
    }

    #[test]
    fn user_schema_has_every_rfc_7643_attribute() {
        let s = user_schema();
        assert_eq!(s.id, USER_URN);
        assert_eq!(
            names(s),
            [
                "id",
                "externalId",
                "meta",
                "userName",
                "name",
                "displayName",
                "nickName",
                "profileUrl",
                "title",
                "userType",
                "preferredLanguage",
                "locale",
                "timezone",
                "active",
                "password",
                "emails",
                "phoneNumbers",
                "ims",
                "photos",
                "addresses",
                "groups",
                "entitlements",
                "roles",
                "x509Certificates",
            ]
        );
        let name = s.attribute("name").unwrap();
        let subs: Vec<_> = name.sub_attributes.iter().map(|a| a.name).collect();
        assert_eq!(
            subs,
            [
                "formatted",
                "familyName",
                "givenName",
                "middleName",
                "honorificPrefix",
                "honorificSuffix"
            ]
        );
    }

    #[test]
    fn user_characteristics_follow_the_rfc() {
        let s = user_schema();
        let user_name = s.attribute("userName").unwrap();
        assert!(user_name.required && !user_name.case_exact);
        assert_eq!(user_name.uniqueness, Uniqueness::Server);

        let password = s.attribute("password").unwrap();
        assert_eq!(password.mutability, Mutability::WriteOnly);
        assert_eq!(password.returned, Returned::Never);

        let groups = s.attribute("groups").unwrap();
        assert!(groups.multi_valued);
        assert_eq!(groups.mutability, Mutability::ReadOnly);
        for sub in ["value", "$ref", "display", "type"] {
            assert_eq!(
                groups.sub_attribute(sub).unwrap().mutability,
                Mutability::ReadOnly,
                "{sub}"
            );
        }

        let emails = s.attribute("emails").unwrap();
        assert!(emails.multi_valued && emails.attr_type == AttrType::Complex);
        assert!(!emails.sub_attribute("value").unwrap().case_exact);
        assert_eq!(
            emails.sub_attribute("type").unwrap().canonical_values,
            ["work", "home", "other"]
        );
        assert_eq!(emails.sub_attribute("primary").unwrap().attr_type, AttrType::Boolean);
        assert!(s.attribute("addresses").unwrap().sub_attribute("primary").is_some());

        let id = s.attribute("id").unwrap();
        assert!(id.case_exact);
        assert_eq!((id.mutability, id.returned), (Mutability::ReadOnly, Returned::Always));
        let external_id = s.attribute("externalId").unwrap();
        assert!(external_id.case_exact);
        assert_eq!(external_id.mutability, Mutability::ReadWrite);
        let meta = s.attribute("meta").unwrap();
        assert_eq!(meta.mutability, Mutability::ReadOnly);
        assert_eq!(meta.sub_attribute("lastModified").unwrap().attr_type, AttrType::DateTime);
        assert_eq!(meta.sub_attribute("location").unwrap().mutability, Mutability::ReadOnly);

        assert_eq!(s.attribute("active").unwrap().attr_type, AttrType::Boolean);
        assert_eq!(s.attribute("profileUrl").unwrap().reference_types, ["external"]);
        let cert = s.attribute("x509Certificates").unwrap().sub_attribute("value").unwrap();
        assert_eq!(cert.attr_type, AttrType::Binary);
        let photo = s.attribute("photos").unwrap().sub_attribute("value").unwrap();
        assert_eq!(photo.attr_type, AttrType::Reference);
    }

    #[test]
    fn group_and_enterprise_characteristics() {
        let g = group_schema();
        assert_eq!(names(g), ["id", "externalId", "meta", "displayName", "members"]);
        assert!(g.attribute("displayName").unwrap().required);
        let members = g.attribute("members").unwrap();
        assert!(members.multi_valued);
        assert_eq!(members.mutability, Mutability::ReadWrite);
        for sub in ["value", "$ref", "type"] {
            assert_eq!(members.sub_attribute(sub).unwrap().mutability, Mutability::Immutable);
        }
        assert_eq!(members.sub_attribute("type").unwrap().canonical_values, ["User", "Group"]);
        let display = members.sub_attribute("display").unwrap();
        assert_eq!(
            (display.mutability, display.returned),
            (Mutability::ReadOnly, Returned::Request)
        );

        let e = enterprise_user_schema();
        assert_eq!(e.id, ENTERPRISE_USER_URN);
        assert_eq!(
            names(e),
            ["employeeNumber", "costCenter", "organization", "division", "department", "manager"]
        );
        let manager = e.attribute("manager").unwrap();
        assert!(!manager.multi_valued);
        assert_eq!(manager.mutability, Mutability::ReadWrite);
        assert_eq!(manager.sub_attribute("displayName").unwrap().mutability, Mutability::ReadOnly);
        assert_eq!(manager.sub_attribute("$ref").unwrap().reference_types, ["User"]);
    }

    #[test]
    fn lookups_are_case_insensitive_and_return_canonical_names() {
        assert_eq!(user_schema().attribute("USERNAME").unwrap().name, "userName");
        let name = user_schema().attribute("Name").unwrap();
        assert_eq!(name.sub_attribute("GIVENNAME").unwrap().name, "givenName");
        assert!(user_schema().attribute("bogus").is_none());
        assert!(user_schema().attribute("active").unwrap().sub_attribute("value").is_none());
    }

    #[test]
    fn resource_kind_metadata() {
        assert_eq!(ResourceKind::User.name(), "User");
        assert_eq!(ResourceKind::Group.endpoint(), "/Groups");
        assert_eq!(ResourceKind::Group.core_schema().id, GROUP_URN);
        assert_eq!(ResourceKind::User.extensions().len(), 1);
        assert!(ResourceKind::Group.extensions().is_empty());
        let upper = ENTERPRISE_USER_URN.to_uppercase();
        assert_eq!(ResourceKind::User.extension(&upper).unwrap().id, ENTERPRISE_USER_URN);
        assert!(ResourceKind::Group.extension(ENTERPRISE_USER_URN).is_none());
        // Entra's typo is not the extension.
        assert!(
            ResourceKind::User
                .extension("urn:ietf:params:scim:schemas:extension:enterprise:2.0User")
                .is_none()
        );
    }

    #[test]
    fn resolve_core_qualified_and_unqualified() {
        let u = ResourceKind::User;
        let r = u.resolve(&path(None, "username", None)).unwrap();
        assert_eq!((r.extension, r.attr.name, r.sub.map(|s| s.name)), (None, "userName", None));

        let r = u.resolve(&path(Some(USER_URN), "name", Some("FamilyName"))).unwrap();
        assert_eq!((r.extension, r.attr.name, r.sub.unwrap().name), (None, "name", "familyName"));

        let r = u.resolve(&path(None, "meta", Some("lastModified"))).unwrap();
        assert_eq!(r.sub.unwrap().name, "lastModified");
        assert_eq!(u.resolve(&path(None, "ID", None)).unwrap().attr.name, "id");
        assert_eq!(u.resolve(&path(None, "externalid", None)).unwrap().attr.name, "externalId");
    }

    #[test]
    fn resolve_extension_attributes() {
        let u = ResourceKind::User;
        let r = u.resolve(&path(Some(ENTERPRISE_USER_URN), "manager", Some("value"))).unwrap();
        assert_eq!(r.extension, Some(ENTERPRISE_USER_URN));
        assert_eq!((r.attr.name, r.sub.unwrap().name), ("manager", "value"));

        let upper = ENTERPRISE_USER_URN.to_uppercase();
        let r = u.resolve(&path(Some(&upper), "EMPLOYEENUMBER", None)).unwrap();
        assert_eq!((r.extension, r.attr.name), (Some(ENTERPRISE_USER_URN), "employeeNumber"));

        // Unqualified extension names, as clients send them.
        let r = u.resolve(&path(None, "department", None)).unwrap();
        assert_eq!(r.extension, Some(ENTERPRISE_USER_URN));
    }

    #[test]
    fn resolve_rejects_what_does_not_exist() {
        let u = ResourceKind::User;
        assert!(u.resolve(&path(None, "bogus", None)).is_none());
        assert!(u.resolve(&path(None, "userName", Some("x"))).is_none(), "sub on a simple attr");
        assert!(u.resolve(&path(None, "name", Some("bogus"))).is_none());
        // Core attributes are not found under the extension URN, nor the other way round.
        assert!(u.resolve(&path(Some(ENTERPRISE_USER_URN), "userName", None)).is_none());
        assert!(u.resolve(&path(Some(USER_URN), "department", None)).is_none());
        assert!(u.resolve(&path(Some(GROUP_URN), "userName", None)).is_none());
        assert!(ResourceKind::Group.resolve(&path(None, "department", None)).is_none());
        assert!(ResourceKind::Group.resolve(&path(None, "userName", None)).is_none());
        let r = ResourceKind::Group.resolve(&path(None, "members", Some("VALUE"))).unwrap();
        assert_eq!(r.sub.unwrap().name, "value");
    }

    #[test]
    fn schema_json_follows_rfc_7643_section_8_7_1() {
        let json = user_schema().to_json("https://x.example/scim/v2/");
        assert_eq!(json["schemas"], json!([SCHEMA_URN]));
        assert_eq!(json["id"], USER_URN);
        assert_eq!(json["name"], "User");
        assert_eq!(json["description"], "User Account");
        assert_eq!(json["meta"]["resourceType"], "Schema");
        assert_eq!(
            json["meta"]["location"],
            format!("https://x.example/scim/v2/Schemas/{USER_URN}")
        );
        let attrs = json["attributes"].as_array().unwrap();
        let names: Vec<&str> = attrs.iter().map(|a| a["name"].as_str().unwrap()).collect();
        // The common attributes are not part of the schema document (RFC 7643 §8.7.1).
        for common in COMMON_ATTRIBUTES {
            assert!(!names.contains(&common), "{common} must not be listed");
        }
        assert_eq!(names.len(), 21);
        let user_name = &attrs[0];
        assert_eq!(
            *user_name,
            json!({
                "name": "userName", "type": "string", "multiValued": false,
                "description": user_name["description"], "required": true, "caseExact": false,
                "mutability": "readWrite", "returned": "default", "uniqueness": "server",
            })
        );
        let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
        assert_eq!(
            (&password["mutability"], &password["returned"]),
            (&json!("writeOnly"), &json!("never"))
        );
        let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
        assert_eq!(emails["multiValued"], json!(true));
        let email_type = &emails["subAttributes"][2];
        assert_eq!(email_type["name"], "type");
        assert_eq!(email_type["canonicalValues"], json!(["work", "home", "other"]));
        let groups = attrs.iter().find(|a| a["name"] == "groups").unwrap();
        assert_eq!(groups["mutability"], "readOnly");
        assert_eq!(groups["subAttributes"][1]["referenceTypes"], json!(["User", "Group"]));
        assert!(user_name.get("subAttributes").is_none());
        assert!(user_name.get("canonicalValues").is_none());
    }

    #[test]
    fn group_schema_json_members() {
        let json = group_schema().to_json("https://x.example/scim/v2");
        let attrs = json["attributes"].as_array().unwrap();
        let names: Vec<&str> = attrs.iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["displayName", "members"]);
        let subs: Vec<&str> = attrs[1]["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(subs, ["value", "$ref", "type", "display"]);
        assert_eq!(attrs[1]["subAttributes"][0]["mutability"], "immutable");
    }
}
