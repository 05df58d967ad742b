//! The filter and attribute-path syntax tree (RFC 7644 §3.4.2.2, §3.5.2 Figure 7).
//!
//! Parsed by [`super::parser`]; evaluated in memory by [`super::eval`] (inside one resource,
//! for PATCH value paths) and translated into SQL by the server's store.

use std::fmt;

/// `[URI ":"] ATTRNAME *1subAttr`. Names are kept as written; lookups against the schema are
/// case-insensitive (RFC 7643 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN that qualifies the name, without the trailing `:`
    /// (e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`).
    pub urn: Option<String>,
    pub name: String,
    pub sub_attr: Option<String>,
}

impl AttrPath {
    pub fn new(name: impl Into<String>) -> Self {
        AttrPath { urn: None, name: name.into(), sub_attr: None }
    }

    pub fn with_sub(name: impl Into<String>, sub: impl Into<String>) -> Self {
        AttrPath { urn: None, name: name.into(), sub_attr: Some(sub.into()) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

/// `compValue = false / null / true / number / string`.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath compareOp compValue`
    Compare(AttrPath, CompareOp, CompValue),
    /// `attrPath "[" valFilter "]"`: the inner filter's paths are relative to the elements of
    /// the (multi-valued complex) attribute. The outer path never has a sub-attribute.
    /// Entra's `emails[type eq "work"].value eq "x"` is parsed as
    /// `emails[type eq "work" and value eq "x"]`.
    ValuePath(AttrPath, Box<Filter>),
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

/// A PATCH `path`: `attrPath / valuePath [subAttr]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute; `sub_attr` is set for `name.givenName` style paths (no filter).
    pub attr: AttrPath,
    /// The value filter of `emails[type eq "work"]`, relative to the elements.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter: `emails[type eq "work"].value`.
    pub filter_sub_attr: Option<String>,
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Lt => "lt",
            CompareOp::Ge => "ge",
            CompareOp::Le => "le",
        };
        f.write_str(s)
    }
}
