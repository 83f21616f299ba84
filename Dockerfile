# syntax=docker/dockerfile:1
# wolkvox-exporter: a small, non-root image holding only the release binary.
#
#   docker build -t wolkvox-exporter .
#   docker run --rm -p 9798:9798 wolkvox-exporter --demo
#
# Build arguments fill the OCI labels (and REVISION the build-info metric's label):
#   --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%FT%TZ)

ARG RUST_VERSION=1.95

# ---- build ----------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# jemalloc, the exporter's allocator, is built from C sources with make; its build
# settings (hand freed memory back at once) come from .cargo/config.toml.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
COPY .cargo/config.toml .cargo/

# Dependencies first, against placeholder sources: this layer is rebuilt only when
# the manifests or Cargo.lock change, not on every source edit. The manifest does not
# parse without a file for each [[bench]], [[example]] and [[test]] it declares, nor
# without the workspace's member crates, so those get placeholders too (the
# declared targets are never built here).
COPY Cargo.toml Cargo.lock ./
COPY crates/api/Cargo.toml crates/api/
COPY crates/sim/Cargo.toml crates/sim/
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && : > src/lib.rs \
    && for member in crates/*/; do mkdir -p "${member}src" && : > "${member}src/lib.rs"; done \
    && for kind in bench:benches example:examples test:tests; do \
         sed -n "/^\[\[${kind%%:*}\]\]/,/^\[/ s/^name *= *\"\(.*\)\"/\1/p" Cargo.toml \
         | while read -r name; do \
             mkdir -p "${kind#*:}" && echo 'fn main() {}' > "${kind#*:}/$name.rs"; \
           done; \
       done \
    && cargo build --release --locked \
    && rm -rf src crates/*/src

# The project itself. COPY keeps the files' own mtimes, which can be older than the
# placeholder build: touch them so cargo rebuilds the crate instead of reusing it.
COPY src ./src
COPY crates ./crates
# The revision label of wolkvox_exporter_build_info (read at compile time).
ARG REVISION=unknown
ENV WOLKVOX_BUILD_REVISION=${REVISION}
RUN touch src/main.rs src/lib.rs crates/*/src/lib.rs \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/wolkvox-exporter /out/usr/local/bin/wolkvox-exporter \
    && install -d -m 0750 /out/var/lib/wolkvox-exporter /out/etc/wolkvox-exporter

# ---- runtime --------------------------------------------------------------------------
# Distroless: glibc, CA certificates, tzdata, no shell, no package manager; user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="wolkvox-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Wolkvox agent transfer and conference reports (agent_13)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/wolkvox-exporter/wolkvox-exporter" \
      org.opencontainers.image.url="https://github.com/wolkvox-exporter/wolkvox-exporter" \
      org.opencontainers.image.documentation="https://github.com/wolkvox-exporter/wolkvox-exporter#deployment" \
      org.opencontainers.image.vendor="wolkvox-exporter" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY --from=build /out/usr/local/bin/wolkvox-exporter /usr/local/bin/wolkvox-exporter
# Owned by the runtime user so that a fresh named volume inherits a writable directory.
COPY --from=build --chown=65532:65532 /out/var/lib/wolkvox-exporter /var/lib/wolkvox-exporter
COPY --from=build --chown=65532:65532 /out/etc/wolkvox-exporter /etc/wolkvox-exporter

USER 65532:65532
WORKDIR /var/lib/wolkvox-exporter
VOLUME ["/var/lib/wolkvox-exporter"]
EXPOSE 9798

# Configuration, in order of precedence: flags appended to `docker run IMAGE ...`
# (for instance --config.file=/etc/wolkvox-exporter/config.yml on a mounted file),
# then WOLKVOX_* environment variables. The token is best read from a mounted secret:
#   -e WOLKVOX_TOKEN_FILE=/run/secrets/wolkvox_token -v ./token:/run/secrets/wolkvox_token:ro
ENTRYPOINT ["/usr/local/bin/wolkvox-exporter", "--state.path=/var/lib/wolkvox-exporter/state.json"]
CMD ["--web.listen-address=:9798"]
