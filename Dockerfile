# tierdeck: a multi-stage build to a small runtime image holding the binary and the site.
# Build:  docker build -t tierdeck .
# Run:    docker run -p 127.0.0.1:3000:3000 -v tierdeck-data:/var/lib/tierdeck tierdeck
# (Create the first admin with: docker run -i --rm -v tierdeck-data:/var/lib/tierdeck tierdeck \
#    user add admin --role admin --email you@example.com --password-stdin)
# compose.yaml also builds the `demo` target (git, curl, the demo's traffic generator and its
# team) for a local trial with the AWS emulator and Prometheus.

FROM rust:1.95-bookworm AS build
# Every Rust tool of the build (wasm-bindgen's engine, binaryen's wasm-opt) is a dependency of
# the workspace's `xtask` crate, resolved by Cargo.lock: nothing is `cargo install`ed.
RUN rustup target add wasm32-unknown-unknown
WORKDIR /src
COPY . .
RUN cargo run --release -p xtask --features wasm-opt -- build --release \
 && strip target/release/tierdeck

# libssl3: git2 fetches https remotes through OpenSSL (the AWS SDK and reqwest use rustls).
FROM debian:bookworm-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/tierdeck --create-home tierdeck
ENV TIERDECK_SERVER__LISTEN=0.0.0.0:3000 \
    TIERDECK_SERVER__SITE_ROOT=/usr/local/share/tierdeck/site \
    TIERDECK_DATABASE__PATH=/var/lib/tierdeck/tierdeck.sqlite
WORKDIR /var/lib/tierdeck
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/tierdeck"]
CMD ["serve"]

# The trial's helpers (compose.yaml): scripts/demo-specs needs git and sh, its hook curl,
# Prometheus's history comes from the same generator as scripts/demo's, and the same demo team
# applies the environments once.
FROM build AS demo-build
RUN cargo build --release -p tierdeck-tests --bin demo-traffic --bin demo-team

FROM base AS demo
RUN apt-get update \
 && apt-get install -y --no-install-recommends git curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tierdeck /usr/local/bin/tierdeck
COPY --from=demo-build /src/target/release/demo-traffic /usr/local/bin/demo-traffic
COPY --from=demo-build /src/target/release/demo-team /usr/local/bin/demo-team
USER tierdeck

# The default target: the panel.
FROM base AS runtime
COPY --from=build /src/target/release/tierdeck /usr/local/bin/tierdeck
COPY --from=build /src/target/release/site /usr/local/share/tierdeck/site
USER tierdeck
VOLUME /var/lib/tierdeck
