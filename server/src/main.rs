//! The `scimbridge` binary: everything is in the library ([`scimbridge::cli::main`]).

#[tokio::main]
async fn main() {
    std::process::exit(scimbridge::cli::main().await);
}
