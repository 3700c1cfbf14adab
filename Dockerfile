# syntax=docker/dockerfile:1
# daed container: build on debian:bookworm, run on debian:bookworm-slim with only the runtime
# libraries, as a non-root user, models baked in at /models (mount a volume over /models to
# replace them). daed is PID 1 in exec form: it handles SIGTERM itself (drain, then exit 0)
# and forks nothing, so no init process is needed. scripts/check-deploy verifies that the
# runtime packages below provide every shared library the built binaries need.

FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
# The same packages scripts/deps.sh checks for (curl and check included, so `make` does not
# run apt-get again inside the build).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config curl \
      libmicrohttpd-dev libcjson-dev libpng-dev libopenblas-dev zlib1g-dev \
      libturbojpeg0-dev check \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore lets only Makefile, scripts/deps.sh, include/, src/, models/ and openapi.yaml in.
COPY . .
# /out is the runtime's file tree: stripped binaries, the shipped models, the API document.
RUN make -j"$(nproc)" all \
 && mkdir -p /out/bin /out/models /out/share \
 && for t in build/daed build/dae-model; do \
        if [ -x "$t" ]; then install -m 0755 -s "$t" /out/bin/; fi; \
    done \
 && test -x /out/bin/daed \
 && if ls models/*.safetensors >/dev/null 2>&1; then \
        install -m 0644 models/*.safetensors /out/models/; \
    else echo "note: no models/*.safetensors: the image needs a volume at /models" >&2; fi \
 && if [ -f openapi.yaml ]; then install -m 0644 openapi.yaml /out/share/; fi \
 && ls -l /out/bin /out/models

FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries only. libopenblas0-pthread's LAPACK and reference-BLAS copies (7.5 MB)
# are removed: daed links libopenblas.so.0 alone.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 libpng16-16 libopenblas0-pthread zlib1g libturbojpeg0 \
 && rm -f /usr/lib/*/openblas-pthread/liblapack.so.3 /usr/lib/*/openblas-pthread/libblas.so.3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin daed
# Models first: they change less often than the binary, so their layer stays cached.
COPY --from=build /out/models/ /models/
COPY --from=build /out/share/ /usr/share/daed/
COPY --from=build /out/bin/ /usr/local/bin/
COPY docker/healthcheck /usr/local/bin/daed-healthcheck
# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001
ENV DAED_BIND=0.0.0.0 DAED_PORT=8080 DAED_MODELS=/models \
    DAED_OPENAPI=/usr/share/daed/openapi.yaml DAED_SHUTDOWN_TIMEOUT=20
EXPOSE 8080
# GET /healthz on the local port with bash's /dev/tcp: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/daed-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/daed"]
