//! Property mappings: what the sync engine makes of a SCIM resource before it goes to AWS. The
//! built-in AWS profile ([`aws_profile`]) shapes users and groups into what the Identity Store
//! accepts.

pub mod aws_profile;
pub mod rules;
