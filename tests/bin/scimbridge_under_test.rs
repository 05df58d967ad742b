//! The end-to-end tests' build of `scimbridge`: the same program as `server/src/main.rs`,
//! built by Cargo for this package, so `cargo test -p scimbridge-e2e` always runs the binary of
//! the code under test (`env!("CARGO_BIN_EXE_scimbridge-under-test")`), never a stale one.

#[tokio::main]
async fn main() {
    std::process::exit(scimbridge::commands::main().await.into());
}
