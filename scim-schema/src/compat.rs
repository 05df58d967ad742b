//! Which deviations from RFC 7643/7644 a request may carry (see
//! `shared/reference/scim-and-idp-clients.md` §2.6). Each compatibility mode of a source maps to
//! one set of tolerances; `strict` turns them all off.

/// Named tolerances, each on where some identity provider needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerances {
    /// PATCH `op` in any case (`Replace`, Entra).
    pub op_any_case: bool,
    /// Booleans sent as strings (`"False"`, Entra).
    pub bool_strings: bool,
    /// Dotted (`name.givenName`) and URN-qualified keys in a no-path PATCH value (Entra).
    pub dotted_patch_keys: bool,
    /// `remove` on `members` with a value array removes only those members (Entra, authentik).
    pub remove_member_values: bool,
    /// A filtered `add`/`replace` path that matches nothing creates the element (Entra).
    pub filtered_path_creates: bool,
    /// `manager` as a plain string or an array (Entra).
    pub manager_any_shape: bool,
    /// Unquoted filter values: `externalId eq jyoung` (Entra, authentik).
    pub unquoted_filter_values: bool,
    /// `emails[type eq "work"].value eq "x"` as a filter (Entra); not in RFC 7644 Figure 1.
    pub value_path_sub_attr_filter: bool,
    /// An empty PATCH `Operations` list is a no-op (Microsoft SCIM Validator).
    pub empty_operations: bool,
    /// Unknown attributes and schema URNs are dropped (and logged) instead of rejected.
    pub ignore_unknown: bool,
    /// A single value where an array is expected is taken as a one-element array.
    pub single_value_as_array: bool,
}

impl Tolerances {
    /// Plain RFC behaviour.
    pub const fn strict() -> Self {
        Tolerances {
            op_any_case: false,
            bool_strings: false,
            dotted_patch_keys: false,
            remove_member_values: false,
            filtered_path_creates: false,
            manager_any_shape: false,
            unquoted_filter_values: false,
            value_path_sub_attr_filter: false,
            empty_operations: false,
            ignore_unknown: false,
            single_value_as_array: false,
        }
    }

    /// Everything every known client needs (the `generic` mode).
    pub const fn lenient() -> Self {
        Tolerances {
            op_any_case: true,
            bool_strings: true,
            dotted_patch_keys: true,
            remove_member_values: true,
            filtered_path_creates: true,
            manager_any_shape: true,
            unquoted_filter_values: true,
            value_path_sub_attr_filter: true,
            empty_operations: true,
            ignore_unknown: true,
            single_value_as_array: true,
        }
    }
}

impl Default for Tolerances {
    fn default() -> Self {
        Self::lenient()
    }
}
