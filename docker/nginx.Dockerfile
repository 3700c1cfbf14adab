# nginx in front of the daed replicas (docker/compose.yaml): Debian's nginx-light on
# debian:bookworm-slim, so every image the compose file needs is built from Debian's
# packages (no registry-only tag). The configuration is docker/nginx.conf, baked in.
#   docker build -f docker/nginx.Dockerfile -t daed-nginx:local docker/
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# curl for the health check; the access log goes to stdout (the container's log).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light curl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && rm -f /etc/nginx/sites-enabled/default \
 && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx.conf /etc/nginx/conf.d/default.conf
EXPOSE 8080
# SIGQUIT: nginx finishes the requests it is serving, then exits.
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
