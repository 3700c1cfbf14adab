#!/bin/sh
# deps.sh — install the Debian packages daed builds and tests with, only if missing.
# Used by `make deps` (every build target depends on it). Does nothing when pkg-config
# already finds every library and the test tools are present.
# DAED_DEPS=build (the Dockerfile's build stage): check only what compiling needs and fail,
# naming the packages, instead of installing anything: the Dockerfile's apt line lists them.
set -e

# pkg-config module -> Debian package
mods="libmicrohttpd:libmicrohttpd-dev libcjson:libcjson-dev libpng:libpng-dev
openblas:libopenblas-dev check:check zlib:zlib1g-dev libturbojpeg:libturbojpeg0-dev"
# command -> Debian package (tools the tests use)
cmds="pkg-config:pkg-config curl:curl jq:jq file:file"
[ "${DAED_DEPS:-}" = build ] && mods=$(echo "$mods" | sed 's/ check:check//') && cmds="pkg-config:pkg-config cc:gcc make:make"

missing=""
for m in $mods; do
    mod=${m%%:*}; pkg=${m#*:}
    if ! pkg-config --exists "$mod" 2>/dev/null; then missing="$missing $pkg"; fi
done
for c in $cmds; do
    cmd=${c%%:*}; pkg=${c#*:}
    if ! command -v "$cmd" >/dev/null 2>&1; then missing="$missing $pkg"; fi
done
# Python modules the e2e tests import (Debian's /usr/bin/python3) -> Debian package
[ "${DAED_DEPS:-}" = build ] || for m in yaml:python3-yaml jsonschema:python3-jsonschema; do
    /usr/bin/python3 -c "import ${m%%:*}" 2>/dev/null || missing="$missing ${m#*:}"
done
# pkg-config itself missing makes every module look missing: install it along.
[ -z "$missing" ] && exit 0
if [ "${DAED_DEPS:-}" = build ]; then
    echo "deps: missing build packages:$missing (DAED_DEPS=build installs nothing)" >&2
    exit 1
fi

echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends pkg-config build-essential $missing
