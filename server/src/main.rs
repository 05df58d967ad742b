//! The `scimbridge` binary: everything is in the library ([`scimbridge::commands::main`]).

#[tokio::main]
async fn main() {
    std::process::exit(scimbridge::commands::main().await.into());
}
