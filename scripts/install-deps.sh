#!/usr/bin/env bash
# Installs the Debian bookworm packages bulwark needs, only when something is missing.
# Idempotent: a second run does nothing (no apt-get call) when all packages are present.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libevent-dev libnghttp2-dev libc-ares-dev libssl-dev
  prometheus-cpp-dev libyaml-cpp-dev libgtest-dev libgmock-dev
  node-llhttp libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libre2-dev libhiredis-dev
  libbenchmark-dev libjemalloc-dev
)
# Tools used by tests, the demo and benchmarks: real peers, load generators, plots. The demo
# (scripts/demo.sh, bench/scenarios) needs python3 with python3-yaml and python3-matplotlib, and
# redis-server as the ranking example's feature store.
# The shipping checks (tests/deploy) need promtool (Debian's prometheus package; its server is
# not started), the Kubernetes API models of python3-kubernetes, and systemd-analyze. The
# WebSocket tunnel test runs a real client and server from python3-websockets.
RUNTIME_PACKAGES=(
  curl nghttp2-client wrk python3 python3-yaml python3-matplotlib redis-server procps iproute2
  prometheus python3-kubernetes systemd python3-websockets
)
# The checks .ci/run makes besides the tests: formatting and lint (scripts/format.sh, tidy.sh).
LINT_PACKAGES=(clang-format clang-tidy)
# Packages wanted only for a command that is missing: `kubectl kustomize` renders deploy/k8s.
# Any kubectl will do (a cloud SDK's one may already own /usr/bin/kubectl); else Debian's.
COMMAND_PACKAGES=(kubectl:kubernetes-client)
# bench/compare runs the chaos scenario through haproxy too; bench/scenarios/eaglerank runs seed
# 000's Locust test with gRPC users (python3-grpcio, python3-protobuf for the generated messages).
BENCH_PACKAGES=(haproxy nginx hey apache2-utils python3-locust python3-grpcio python3-protobuf)
# scripts/package.sh (BULWARK_WITH_PACKAGING=1): the .deb needs dpkg-shlibdeps (dpkg-dev) and
# file (CPack's DEB generator runs it on every installed file).
PACKAGING_PACKAGES=(dpkg-dev file)
# `ctest -L package` (BULWARK_WITH_PACKAGE_TESTS=1): a clean bookworm root to install the .deb
# into (mmdebstrap), and podman with runc to build and run deploy/container/Containerfile.
PACKAGE_TEST_PACKAGES=(dpkg-dev file mmdebstrap podman runc)
# scripts/fuzz-smoke.sh and -DBULWARK_FUZZ=ON builds: clang 14 with libFuzzer and the sanitizer
# runtimes (libclang_rt.fuzzer, .asan, .ubsan live in libclang-rt-14-dev).
FUZZ_PACKAGES=(clang libclang-rt-14-dev)

# BULWARK_DEPS=build: the build packages only (the container's build stage runs no tests).
want=("${BUILD_PACKAGES[@]}")
if [[ "${BULWARK_DEPS:-all}" != "build" ]]; then want+=("${RUNTIME_PACKAGES[@]}" "${LINT_PACKAGES[@]}"); fi
if [[ "${BULWARK_WITH_BENCH:-0}" == "1" ]]; then want+=("${BENCH_PACKAGES[@]}"); fi
if [[ "${BULWARK_WITH_PACKAGING:-0}" == "1" ]]; then want+=("${PACKAGING_PACKAGES[@]}"); fi
if [[ "${BULWARK_WITH_PACKAGE_TESTS:-0}" == "1" ]]; then want+=("${PACKAGE_TEST_PACKAGES[@]}"); fi
if [[ "${BULWARK_DEPS:-all}" != "build" ]]; then
  for entry in "${COMMAND_PACKAGES[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || want+=("${entry#*:}")
  done
fi
if [[ "${BULWARK_WITH_FUZZ:-0}" == "1" ]]; then want+=("${FUZZ_PACKAGES[@]}"); fi

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
