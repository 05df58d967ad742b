# syntax=docker/dockerfile:1
# The scimbridge container image: a static-ish Rust binary on distroless (glibc, CA certificates,
# no shell), running as the non-root user 65532.
#
#   docker build -t scimbridge:0.1.0 .
#   docker run --rm -p 8080:8080 scimbridge:0.1.0          # SQLite in /var/lib/scimbridge
#
# docs/deploy.md ("Building the image") has more, e.g. pushing it for the Helm chart.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src

# Dependencies first, built against stub sources: this layer is reused until Cargo.toml or
# Cargo.lock change, so a source change rebuilds only the workspace's own crates.
COPY Cargo.toml Cargo.lock ./
COPY scim-schema/Cargo.toml scim-schema/
COPY server/Cargo.toml server/
COPY tests/Cargo.toml tests/
RUN mkdir -p scim-schema/src server/src \
 && touch scim-schema/src/lib.rs server/src/lib.rs tests/main.rs \
 && echo 'fn main() {}' > server/src/main.rs \
 && cargo build --release --locked -p scimbridge

COPY . .
# The sources may be older than the stubs' build: touch them so cargo rebuilds the real crates.
RUN touch scim-schema/src/lib.rs server/src/lib.rs server/src/main.rs \
 && cargo build --release --locked -p scimbridge \
 && install -D -m 0755 target/release/scimbridge /out/scimbridge \
 && install -d -o 65532 -g 65532 /out/data

# glibc from Debian 12, like the builder: the binary links it dynamically.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="scimbridge" \
      org.opencontainers.image.description="SCIM 2.0 bridge into AWS IAM Identity Center" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/scimbridge /usr/local/bin/scimbridge
# The working directory holds the default SQLite file (sqlite://scimbridge.db); the Helm chart
# mounts its volume here too.
COPY --from=builder --chown=65532:65532 /out/data /var/lib/scimbridge
WORKDIR /var/lib/scimbridge
USER 65532:65532
ENV SCIMBRIDGE_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["scimbridge"]
CMD ["serve"]
