//! `sqlx::migrate!` embeds `migrations/` when the crate compiles; without this, adding a
//! migration file (and no Rust change) would leave a binary without it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
