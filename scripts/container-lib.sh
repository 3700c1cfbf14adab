# container-lib.sh — sourced by scripts/container-*: picks the container engine and makes
# podman work on a machine like CI's (root, no systemd, hybrid cgroups, a low nofile limit).
#
#   engine_setup        sets ENGINE (docker or podman) and, for podman, BUILD_ARGS and a
#                       containers.conf of its own (CONTAINERS_CONF, exported)
#
# DAED_ENGINE=docker|podman picks one; otherwise docker when `docker info` answers, else
# podman (installed with apt-get when missing and running as root: podman runc
# containernetworking-plugins golang-github-containernetworking-plugin-dnsname
# podman-compose). DAED_PODMAN_CONF=FILE uses your containers.conf instead of ours.

engine_log() { echo "${PROG:-container}: $*" >&2; }

# podman_conf: a containers.conf for podman 4.3 on a machine without systemd: runc (crun
# refuses the hybrid cgroup v1/v2 layout), cgroupfs, events to a file, and default
# ulimits no higher than this shell's hard limits (podman asks for nofile 1048576, which
# root may not set where the hard limit is lower).
podman_conf() {
    local dir=${XDG_RUNTIME_DIR:-/tmp}/daed-podman-$(id -u) nofile nproc
    mkdir -p "$dir"
    nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
    nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
    cat >"$dir/containers.conf" <<CONF
# written by daed's scripts/container-lib.sh
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    echo "$dir/containers.conf"
}

engine_install_podman() {
    [ "$(id -u)" = 0 ] || { engine_log "no docker or podman; install podman (apt-get install podman runc)"; return 1; }
    engine_log "installing podman (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends podman runc containernetworking-plugins \
        golang-github-containernetworking-plugin-dnsname podman-compose >/dev/null
}

engine_setup() {
    ENGINE=${DAED_ENGINE:-}
    if [ -z "$ENGINE" ]; then
        if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then ENGINE=docker
        elif command -v podman >/dev/null 2>&1; then ENGINE=podman
        else engine_install_podman || return 1; ENGINE=podman
        fi
    fi
    BUILD_ARGS=()
    if [ "$ENGINE" = podman ]; then
        command -v podman >/dev/null 2>&1 || engine_install_podman || return 1
        CONTAINERS_CONF=${DAED_PODMAN_CONF:-$(podman_conf)}
        export CONTAINERS_CONF
        # Docker's image format: the OCI format has no HEALTHCHECK. --pull=never: the base
        # images are local (pulled, or made by scripts/container-base).
        BUILD_ARGS=(--format docker --pull=never)
    fi
    engine_log "engine: $ENGINE ($($ENGINE --version 2>/dev/null | head -1))"
}
