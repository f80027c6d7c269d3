# tierdeck: a multi-stage build to a small runtime image holding the binary and the site.
# Build:  docker build -t tierdeck .
# Run:    docker run -p 3000:3000 -v tierdeck-data:/var/lib/tierdeck tierdeck
# (Create the first admin with: docker run -i --rm -v tierdeck-data:/var/lib/tierdeck tierdeck \
#    user add admin --role admin --email you@example.com --password-stdin)

FROM rust:1.95-bookworm AS build
# The same tools and versions as scripts/setup; wasm-opt for the release wasm (not Debian's
# binaryen, whose output breaks hydration).
RUN rustup target add wasm32-unknown-unknown \
 && cargo install cargo-leptos@0.3.5 --locked \
 && cargo install wasm-bindgen-cli --version 0.2.130 \
 && cargo install wasm-opt --locked
WORKDIR /src
COPY . .
RUN cargo leptos build --release \
 && strip target/release/tierdeck

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/tierdeck --create-home tierdeck
COPY --from=build /src/target/release/tierdeck /usr/local/bin/tierdeck
COPY --from=build /src/target/site /usr/local/share/tierdeck/site
ENV TIERDECK_SERVER__LISTEN=0.0.0.0:3000 \
    TIERDECK_SERVER__SITE_ROOT=/usr/local/share/tierdeck/site \
    TIERDECK_DATABASE__PATH=/var/lib/tierdeck/tierdeck.sqlite
USER tierdeck
WORKDIR /var/lib/tierdeck
VOLUME /var/lib/tierdeck
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/tierdeck"]
CMD ["serve"]
