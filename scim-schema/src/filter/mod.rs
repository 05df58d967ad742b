//! Filters and attribute paths: syntax tree, nom parser, in-memory evaluation.

pub mod ast;
mod display;
pub mod eval;
pub mod parser;

pub use ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
pub use parser::{parse_attr_path, parse_filter, parse_patch_path};
