# syntax=docker/dockerfile:1
# One image for every role of callmesh: the Deployment picks it with `callmesh serve <role>`,
# the migrations Job runs `callmesh migrate`. Build: `docker build -t callmesh .`

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# The whole workspace: every member's manifest and targets (benches and tests included) must be
# there for cargo to load it, and proto/ for the build script (protox: no system protoc).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p callmesh \
    && install -D -m 0755 target/release/callmesh /out/callmesh

FROM debian:${DEBIAN_RELEASE}-slim
# CA roots for the providers' APIs (TLS through rustls, verified against the system store).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 callmesh \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/callmesh \
        --shell /usr/sbin/nologin callmesh \
    && install -d -o 10001 -g 10001 /var/lib/callmesh
COPY --from=builder /out/callmesh /usr/local/bin/callmesh
ENV CALLMESH_DATA_DIR=/var/lib/callmesh \
    LOG_FORMAT=json
WORKDIR /var/lib/callmesh
USER 10001:10001
EXPOSE 8080 50051 50052 50053 50054 50055
ENTRYPOINT ["callmesh"]
# Without arguments: the whole mesh in one container on SQLite, as `make run` does.
CMD ["up"]
