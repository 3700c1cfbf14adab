# daed container: build on debian:bookworm, run on debian:bookworm-slim with only the
# runtime libraries, as a non-root user, models baked in at /models (mount a volume over
# /models to replace them). daed is PID 1 in exec form and drains on SIGTERM.

FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config \
      libmicrohttpd-dev libcjson-dev libpng-dev libopenblas-dev zlib1g-dev \
      libturbojpeg0-dev check \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY scripts scripts
COPY include include
COPY src src
RUN make -j"$(nproc)" all

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 libpng16-16 libopenblas0-pthread zlib1g libturbojpeg0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin daed
COPY --from=build /src/build/daed /src/build/dae-model /usr/local/bin/
COPY models/*.safetensors /models/
COPY openapi.yaml /usr/share/daed/openapi.yaml
USER daed
ENV DAED_PORT=8080 DAED_MODELS=/models DAED_OPENAPI=/usr/share/daed/openapi.yaml
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/daed", "--healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/daed"]
