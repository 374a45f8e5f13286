# syntax=docker/dockerfile:1
# The alertops image: one static-ish binary (glibc) on distroless, run as the nonroot user.
# Every workload uses it: `alertops controller`, `interact`, `consume`, `digest`, `retry`.
#
#   docker build -t alertops:dev .

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
# aws-lc-sys (rustls' crypto provider in the AWS SDK) builds C code with cmake.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cache mounts keep downloaded crates and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin alertops \
    && cp target/release/alertops /alertops

# Debian 12 like the builder, so the binary finds the same glibc; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /alertops /alertops
# 65532:65532 is the distroless "nonroot" user; the chart runs it with a read-only root.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/alertops"]
