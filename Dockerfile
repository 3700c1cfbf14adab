# daed container: build on debian:bookworm, run on debian:bookworm-slim with only the runtime
# libraries, as a non-root user, models baked in at /models (mount a volume over /models to
# replace them). daed is PID 1 in exec form: it handles SIGTERM itself (drain, then exit 0)
# and forks nothing, so no init process is needed. scripts/check-deploy verifies that the
# runtime packages below, the base image and the trimmed OpenBLAS provide every shared
# library the built binaries need, and estimates the image size (docs/deploy.md).
# No `# syntax=` line: BuildKit would fetch a frontend image from a registry for it.
# Built and run for real by `make container-test` (Docker, or podman with
# `--format docker`: the OCI format drops HEALTHCHECK).

FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
# Every build dependency, here: `make` runs scripts/deps.sh with DAED_DEPS=build, which
# checks the libraries and the compiler and fails instead of going to the network.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config \
      libmicrohttpd-dev libcjson-dev libpng-dev libopenblas-dev zlib1g-dev \
      libturbojpeg0-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore lets only Makefile, mk/ (its included parts), scripts/deps.sh, include/,
# src/, models/, openapi.yaml, web/ (the browser page), docker/healthcheck and
# docker/trim-openblas in.
COPY . .
# /out is the runtime's file tree: stripped binaries, the shipped models, the API document,
# the browser page (web/, 2.2 MB with the vendored Swagger UI; 0.7 MB with its two large
# files stored as .gz, which daed sends gzip-encoded or inflates: src/serve/web.h).
RUN make -j"$(nproc)" DAED_DEPS=build all \
 && mkdir -p /out/bin /out/models /out/share \
 && for t in build/daed build/dae-model; do \
        if [ -x "$t" ]; then install -m 0755 -s "$t" /out/bin/; fi; \
    done \
 && test -x /out/bin/daed \
 && if ls models/*.safetensors >/dev/null 2>&1; then \
        install -m 0644 models/*.safetensors /out/models/; \
    else echo "note: no models/*.safetensors: the image needs a volume at /models" >&2; fi \
 && if [ -f openapi.yaml ]; then install -m 0644 openapi.yaml /out/share/; fi \
 && if [ -d web ]; then cp -R web /out/share/web && chmod -R a+rX,go-w /out/share/web \
        && gzip -9n /out/share/web/vendor/swagger-ui/swagger-ui-bundle.js \
                    /out/share/web/vendor/swagger-ui/swagger-ui.css; fi \
 && docker/trim-openblas /out/lib /out/bin/* \
 && ls -l /out/bin /out/lib /out/models

FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# OpenBLAS cut down to the four functions daed and dae-model call, built from Debian's
# source of the same version, single precision only (docker/trim-openblas: 2.3 MB instead
# of libopenblas0-pthread's 42 MB plus libgfortran5 and libquadmath0).
COPY --from=build /out/lib/ /usr/local/lib/
# Runtime libraries only; zlib1g, libgnutls30 (libmicrohttpd's) and libc are in the base
# image already. ldconfig makes /usr/local/lib/libopenblas.so.0 known to the loader.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 libpng16-16 libturbojpeg0 \
 && ldconfig \
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
    DAED_OPENAPI=/usr/share/daed/openapi.yaml DAED_WEB_DIR=/usr/share/daed/web \
    DAED_SHUTDOWN_TIMEOUT=20
EXPOSE 8080
# GET /healthz on the local port with bash's /dev/tcp: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/daed-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/daed"]
