# Multi-stage build: compile in the Rust image, ship only the binary on a slim base.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo ./.cargo
COPY bench ./bench
COPY src ./src
COPY migrations ./migrations
COPY data ./data
RUN cargo build --release --locked --bin litellm

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --create-home litellm
COPY --from=build /src/target/release/litellm /usr/local/bin/litellm
COPY config.example.yaml /app/config.yaml
USER litellm
WORKDIR /app
EXPOSE 4000
# Liveness through the gateway's own public probe (bash's /dev/tcp: no curl in the image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/4000 && printf 'GET /health/liveliness HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q alive <&3"]
ENTRYPOINT ["litellm"]
CMD ["--config", "/app/config.yaml", "--port", "4000", "--host", "0.0.0.0"]
