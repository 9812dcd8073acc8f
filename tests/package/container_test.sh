#!/usr/bin/env bash
# deploy/container/Containerfile built and run with podman: the image reports the commit it was
# built from, runs as 65532 with `bulwark run` as entrypoint and no HEALTHCHECK, proxies a
# request to a loopback upstream, and drains to exit 0 on `podman stop`. Needs root and podman.
# Usage: container_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
SOURCE_DIR=$(cd "$1" && pwd)
BUILD_DIR=$(cd "$2" && pwd)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if [[ $(id -u) -ne 0 ]]; then echo "FAIL: needs root"; exit 1; fi
command -v podman >/dev/null ||
  { echo "FAIL: podman missing (BULWARK_WITH_PACKAGE_TESTS=1 scripts/install-deps.sh)"; exit 1; }

# This sandbox has no CAP_SYS_RESOURCE (podman's default ulimits cannot be applied) and a hybrid
# cgroup layout crun refuses; runc and no default ulimits work. Both are harmless elsewhere.
export CONTAINERS_CONF="$BUILD_DIR/containers-test.conf"
printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF"
podman=(podman --runtime runc)

# No container registry is reachable from this machine, only Debian's mirror: the base images
# the Containerfile names are made from that archive when absent (minbase, which is what
# debian:bookworm-slim is built from).
if ! "${podman[@]}" image exists docker.io/library/debian:bookworm-slim; then
  sources=/etc/apt/sources.list.d/debian.sources
  [[ -f $sources ]] || sources=/etc/apt/sources.list
  mmdebstrap --quiet --variant=minbase bookworm - "$sources" |
    "${podman[@]}" import - docker.io/library/debian:bookworm-slim >/dev/null ||
    { echo "FAIL: making the bookworm base image"; exit 1; }
fi
"${podman[@]}" image exists docker.io/library/debian:bookworm ||
  "${podman[@]}" tag docker.io/library/debian:bookworm-slim docker.io/library/debian:bookworm

image=localhost/bulwark:test
revision=$(git -C "$SOURCE_DIR" rev-parse HEAD)
if ! "${podman[@]}" build --pull=never --network=host -f "$SOURCE_DIR/deploy/container/Containerfile" \
    --build-arg BULWARK_GIT_REVISION="$revision" -t "$image" "$SOURCE_DIR"; then
  echo "FAIL: podman build"
  exit 1
fi

reported=$("${podman[@]}" run --rm --entrypoint bulwark "$image" version --json)
echo "version: $reported"
[[ "$reported" == *"\"revision\":\"$revision\""* ]] || fail "image reports $reported, HEAD is $revision"
[[ $("${podman[@]}" image inspect --format '{{.Config.User}}' "$image") == 65532:65532 ]] ||
  fail "image user is not 65532:65532"
[[ $("${podman[@]}" image inspect --format '{{json .Config.Entrypoint}}' "$image") == '["bulwark","run"]' ]] ||
  fail "entrypoint is not [bulwark, run]"
[[ $("${podman[@]}" image inspect --format '{{.Config.Healthcheck}}' "$image") == "<nil>" ]] ||
  fail "the image has a HEALTHCHECK"
"${podman[@]}" run --rm --entrypoint /bin/sh "$image" -c 'command -v c++ cmake' && fail "build tools in the runtime image"

# A request through the container to an upstream on the host's loopback (host network).
work=$(mktemp -d)
echo "served by the upstream" >"$work/hello.txt"
upstream_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work" "$upstream_port" >/dev/null 2>&1 &
upstream_pid=$!
for _ in $(seq 1 100); do
  curl -sf --max-time 1 "http://127.0.0.1:$upstream_port/hello.txt" >/dev/null && break
  sleep 0.1
done
cat >"$work/bulwark.yaml" <<YAML
apiVersion: bulwark.dev/v1alpha1
kind: ProxyConfig
metadata: {name: container-test}
admin: {address: 127.0.0.1:0}
runtime: {concurrency: 1, drain: {minDuration: 0s, timeout: 5s}}
listeners:
- {name: public, address: 127.0.0.1:0, protocol: http1}
upstreams:
- name: app
  protocol: http1
  endpoints: {static: [{address: "127.0.0.1:$upstream_port"}]}
routes:
- {name: all, match: {path: {prefix: /}}, upstream: app}
YAML
chmod 644 "$work/bulwark.yaml"
chmod 755 "$work"
name=bulwark-container-test-$$
"${podman[@]}" run -d --name "$name" --network=host -v "$work/bulwark.yaml:/etc/bulwark/bulwark.yaml:ro" "$image" >/dev/null ||
  fail "podman run"
port=""
for _ in $(seq 1 100); do
  port=$("${podman[@]}" logs "$name" 2>&1 | sed -n 's/^listener public listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p')
  [[ -n "$port" ]] && break
  sleep 0.1
done
if [[ -z "$port" ]]; then
  fail "no listener announced: $("${podman[@]}" logs "$name" 2>&1)"
else
  body=$(curl -s --max-time 5 "http://127.0.0.1:$port/hello.txt")
  [[ "$body" == "served by the upstream" ]] || fail "proxied request returned: $body"
fi
"${podman[@]}" stop -t 20 "$name" >/dev/null
code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$name")
[[ "$code" == 0 ]] || fail "exit code after podman stop (SIGTERM drain): $code"
"${podman[@]}" rm -f "$name" >/dev/null
kill "$upstream_pid"
rm -rf "$work"

echo "container_test: $failures failure(s)"
[[ $failures -eq 0 ]]
