//! The schema definitions scimbridge serves (RFC 7643 §3.1, §4.1-§4.3, §8.7.1): static data,
//! written with a small builder whose defaults are those of RFC 7643 §2.2.

use super::*;

// --- builder: RFC 7643 §2.2 defaults, then chained setters ------------------------------------

/// An attribute with the defaults of RFC 7643 §2.2: single-valued, optional, case-insensitive,
/// readWrite, returned by default, not unique.
fn attr(name: &'static str, attr_type: AttrType) -> AttributeDef {
    AttributeDef {
        name,
        attr_type,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        description: "",
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: Vec::new(),
    }
}

fn string(name: &'static str) -> AttributeDef {
    attr(name, AttrType::String)
}

fn boolean(name: &'static str) -> AttributeDef {
    attr(name, AttrType::Boolean)
}

fn date_time(name: &'static str) -> AttributeDef {
    attr(name, AttrType::DateTime)
}

fn reference(name: &'static str, types: &'static [&'static str]) -> AttributeDef {
    AttributeDef { reference_types: types, ..attr(name, AttrType::Reference) }
}

fn complex(name: &'static str, sub_attributes: Vec<AttributeDef>) -> AttributeDef {
    AttributeDef { sub_attributes, ..attr(name, AttrType::Complex) }
}

impl AttributeDef {
    fn desc(self, description: &'static str) -> Self {
        AttributeDef { description, ..self }
    }

    fn multi(self) -> Self {
        AttributeDef { multi_valued: true, ..self }
    }

    fn mandatory(self) -> Self {
        AttributeDef { required: true, ..self }
    }

    fn exact(self) -> Self {
        AttributeDef { case_exact: true, ..self }
    }

    fn unique(self) -> Self {
        AttributeDef { uniqueness: Uniqueness::Server, ..self }
    }

    fn canonical(self, canonical_values: &'static [&'static str]) -> Self {
        AttributeDef { canonical_values, ..self }
    }

    fn returns(self, returned: Returned) -> Self {
        AttributeDef { returned, ..self }
    }

    fn mutable_as(self, mutability: Mutability) -> Self {
        AttributeDef { mutability, ..self }
    }

    /// readOnly, for the attribute and all its sub-attributes (RFC 7643 §2.2: a readOnly
    /// complex attribute cannot have writable parts).
    fn read_only(self) -> Self {
        let sub_attributes = self.sub_attributes.into_iter().map(AttributeDef::read_only).collect();
        AttributeDef { mutability: Mutability::ReadOnly, sub_attributes, ..self }
    }
}

/// The `value`/`display`/`type`/`primary` shape of RFC 7643 §2.4 shared by most multi-valued
/// User attributes.
fn multi_complex(
    name: &'static str,
    value: AttributeDef,
    type_values: &'static [&'static str],
) -> AttributeDef {
    complex(
        name,
        vec![
            value,
            string("display").desc("A human-readable name, primarily used for display purposes."),
            string("type").canonical(type_values).desc("A label indicating the value's function."),
            boolean("primary")
                .desc("Whether this is the primary value; 'true' appears at most once."),
        ],
    )
    .multi()
}

// --- common attributes (RFC 7643 §3.1) ---------------------------------------------------------

fn common_attributes() -> Vec<AttributeDef> {
    vec![
        string("id")
            .exact()
            .unique()
            .mutable_as(Mutability::ReadOnly)
            .returns(Returned::Always)
            .desc("Unique identifier for the resource, assigned by the service provider."),
        string("externalId")
            .exact()
            .desc("Identifier for the resource as defined by the provisioning client."),
        meta_attribute(),
    ]
}

fn meta_attribute() -> AttributeDef {
    complex(
        "meta",
        vec![
            string("resourceType").exact().desc("The name of the resource type."),
            date_time("created").desc("When the resource was added to the service provider."),
            date_time("lastModified").desc("When the resource was last updated."),
            reference("location", &["uri"]).exact().desc("The URI of the resource."),
            string("version").exact().desc("The version (entity tag) of the resource."),
        ],
    )
    .read_only()
    .desc("Resource metadata, assigned by the service provider.")
}

// --- User (RFC 7643 §4.1) ----------------------------------------------------------------------

pub(super) fn build_user_schema() -> SchemaDef {
    let mut attributes = common_attributes();
    attributes.extend([
        string("userName")
            .mandatory()
            .unique()
            .desc("Unique identifier for the User, used to authenticate. REQUIRED."),
        name_attribute(),
        string("displayName").desc("The name of the User, suitable for display."),
        string("nickName").desc("The casual way to address the User."),
        reference("profileUrl", &["external"]).desc("URL of the User's online profile."),
        string("title").desc("The User's title, such as \"Vice President\"."),
        string("userType").desc("The relationship between the organization and the User."),
        string("preferredLanguage").desc("The User's preferred language, e.g. 'en-US'."),
        string("locale").desc("The User's default location for localization, e.g. 'en-US'."),
        string("timezone").desc("The User's time zone, e.g. 'America/Los_Angeles'."),
        boolean("active").desc("The User's administrative status."),
        string("password")
            .mutable_as(Mutability::WriteOnly)
            .returns(Returned::Never)
            .desc("The User's cleartext password. Accepted, never stored or returned."),
        multi_complex(
            "emails",
            string("value").desc("Email address of the User."),
            &["work", "home", "other"],
        )
        .desc("Email addresses of the User."),
        multi_complex(
            "phoneNumbers",
            string("value").desc("Phone number of the User."),
            &["work", "home", "mobile", "fax", "pager", "other"],
        )
        .desc("Phone numbers of the User."),
        multi_complex(
            "ims",
            string("value").desc("Instant messaging address of the User."),
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        )
        .desc("Instant messaging addresses of the User."),
        multi_complex(
            "photos",
            reference("value", &["external"]).desc("URL of a photo of the User."),
            &["photo", "thumbnail"],
        )
        .desc("URLs of photos of the User."),
        addresses_attribute(),
        groups_attribute(),
        multi_complex("entitlements", string("value").desc("The value of an entitlement."), &[])
            .desc("Entitlements of the User."),
        multi_complex("roles", string("value").desc("The value of a role."), &[])
            .desc("Roles of the User."),
        multi_complex(
            "x509Certificates",
            attr("value", AttrType::Binary).desc("The value of an X.509 certificate (base64)."),
            &[],
        )
        .desc("Certificates issued to the User."),
    ]);
    SchemaDef { id: USER_URN, name: "User", description: "User Account", attributes }
}

fn name_attribute() -> AttributeDef {
    complex(
        "name",
        vec![
            string("formatted").desc("The full name, formatted for display."),
            string("familyName").desc("The family (last) name."),
            string("givenName").desc("The given (first) name."),
            string("middleName").desc("The middle name(s)."),
            string("honorificPrefix").desc("The honorific prefix(es), e.g. 'Ms.'."),
            string("honorificSuffix").desc("The honorific suffix(es), e.g. 'III'."),
        ],
    )
    .desc("The components of the User's real name.")
}

/// RFC 7643 §4.1.2 lists `primary` for addresses (the §8.7.1 JSON omits it, but the §8.2
/// example and every IdP send it).
fn addresses_attribute() -> AttributeDef {
    complex(
        "addresses",
        vec![
            string("formatted").desc("The full mailing address, formatted for display."),
            string("streetAddress").desc("The full street address component."),
            string("locality").desc("The city or locality component."),
            string("region").desc("The state or region component."),
            string("postalCode").desc("The zip code or postal code component."),
            string("country").desc("The country name component."),
            string("type")
                .canonical(&["work", "home", "other"])
                .desc("A label indicating the address's function."),
            boolean("primary")
                .desc("Whether this is the primary address; 'true' appears at most once."),
        ],
    )
    .multi()
    .desc("Physical mailing addresses of the User.")
}

/// Derived from group membership, so readOnly (RFC 7643 §4.1.2). `value` is a resource id,
/// hence caseExact like `id`.
fn groups_attribute() -> AttributeDef {
    complex(
        "groups",
        vec![
            string("value").exact().desc("The id of the Group."),
            reference("$ref", &["User", "Group"]).exact().desc("The URI of the Group."),
            string("display").desc("A human-readable name of the Group."),
            string("type")
                .canonical(&["direct", "indirect"])
                .desc("How the membership arises: 'direct' or 'indirect'."),
        ],
    )
    .multi()
    .read_only()
    .desc("The groups the User belongs to.")
}

// --- Group (RFC 7643 §4.2) ---------------------------------------------------------------------

pub(super) fn build_group_schema() -> SchemaDef {
    let mut attributes = common_attributes();
    attributes.extend([
        string("displayName").mandatory().desc("A human-readable name for the Group. REQUIRED."),
        members_attribute(),
    ]);
    SchemaDef { id: GROUP_URN, name: "Group", description: "Group", attributes }
}

/// Members per RFC 7643 §8.7.1 (value, $ref and type immutable), plus `display`, which clients
/// send (§4.2) and scimbridge derives from the member, hence readOnly. `display` is returned only
/// on request (`attributes=members.display`): no IdP reads it, it costs a join per member, and
/// a member read back by default then equals the member as sent (`{value, $ref, type}`), which
/// scim2-tester's PATCH checks compare exactly.
fn members_attribute() -> AttributeDef {
    let immutable = Mutability::Immutable;
    complex(
        "members",
        vec![
            string("value").exact().mutable_as(immutable).desc("The id of the member."),
            reference("$ref", &["User", "Group"])
                .exact()
                .mutable_as(immutable)
                .desc("The URI of the member resource."),
            string("type")
                .canonical(&["User", "Group"])
                .mutable_as(immutable)
                .desc("The type of the member: 'User' or 'Group'."),
            string("display")
                .mutable_as(Mutability::ReadOnly)
                .returns(Returned::Request)
                .desc("A human-readable name of the member, returned only when requested."),
        ],
    )
    .multi()
    .desc("The members of the Group.")
}

// --- Enterprise User (RFC 7643 §4.3) ------------------------------------------------------------

pub(super) fn build_enterprise_user_schema() -> SchemaDef {
    let attributes = vec![
        string("employeeNumber").desc("Identifier assigned to the person by the organization."),
        string("costCenter").desc("The name of a cost center."),
        string("organization").desc("The name of an organization."),
        string("division").desc("The name of a division."),
        string("department").desc("The name of a department."),
        complex(
            "manager",
            vec![
                string("value").exact().desc("The id of the manager's User resource."),
                reference("$ref", &["User"]).exact().desc("The URI of the manager's User."),
                string("displayName")
                    .mutable_as(Mutability::ReadOnly)
                    .desc("The manager's displayName. READ-ONLY."),
            ],
        )
        .desc("The User's manager."),
    ];
    SchemaDef {
        id: ENTERPRISE_USER_URN,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attributes,
    }
}
