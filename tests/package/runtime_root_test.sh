#!/usr/bin/env bash
# The container image's runtime stage without a container engine: a clean Debian bookworm root
# (mmdebstrap, minbase: what debian:bookworm-slim is made of) gets the .deb the way the
# Containerfile installs it (apt-get install ./bulwark_*.deb), then the proxy's integration
# smoke tests run against /usr/bin/bulwark inside that root, as UID 65532 like the image.
# Needs root (chroot, mounts in a private mount namespace).
# Usage: runtime_root_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
SOURCE_DIR=$1
BUILD_DIR=$(cd "$2" && pwd)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if [[ $(id -u) -ne 0 ]]; then echo "FAIL: needs root (chroot)"; exit 1; fi
command -v mmdebstrap >/dev/null ||
  { echo "FAIL: mmdebstrap missing (BULWARK_WITH_PACKAGE_TESTS=1 scripts/install-deps.sh)"; exit 1; }

deb=$("$SOURCE_DIR/scripts/package.sh" "$BUILD_DIR" | grep '/bulwark_[^/]*\.deb$') ||
  { echo "FAIL: scripts/package.sh"; exit 1; }
# Outside /tmp: the tests' config files under /tmp are bind-mounted into the root.
root=$(mktemp -d "$BUILD_DIR/runtime-root.XXXXXX")
trap 'rm -rf --one-file-system "$root"' EXIT
chmod 755 "$root"  # the root directory of the chroot, traversed by UID 65532
# The host's Debian sources (bookworm, -updates, -security): the libraries the package was
# built against are at least as new as those.
sources=/etc/apt/sources.list.d/debian.sources
[[ -f $sources ]] || sources=/etc/apt/sources.list
if ! mmdebstrap --quiet --variant=minbase \
    --customize-hook="copy-in $deb /tmp" \
    --customize-hook="chroot \"\$1\" apt-get install -y --no-install-recommends /tmp/$(basename "$deb")" \
    --customize-hook='chroot "$1" sh -c "rm -f /tmp/*.deb; apt-get clean"' \
    bookworm "$root" "$sources"; then
  echo "FAIL: mmdebstrap"
  exit 1
fi

# What the runtime stage holds: the binary, its libraries, no build tools.
chroot "$root" /usr/bin/bulwark version --json || fail "bulwark version in the root"
missing=$(chroot "$root" ldd /usr/bin/bulwark | grep "not found")
[[ -z "$missing" ]] || fail "unresolved libraries: $missing"
for tool in cc c++ cmake; do
  chroot "$root" sh -c "command -v $tool" >/dev/null && fail "$tool in the runtime root"
done
chroot "$root" /usr/bin/bulwark check -c /etc/bulwark/bulwark.yaml || fail "default config"
echo "runtime root: $(du -sh --one-file-system "$root" | cut -f1)"

# bulwark inside the root as UID 65532, in a private mount namespace with /proc and the host's
# /tmp (where the tests write configs). exec all the way: the pid the test signals is bulwark's.
wrapper="$root.bulwark"
cat >"$wrapper" <<WRAPPER
#!/bin/sh
exec unshare --mount --propagation private /bin/sh -c 'mount --bind /tmp "\$0/tmp" && mount -t proc proc "\$0/proc" && exec chroot --userspec=65532:65532 "\$0" /usr/bin/bulwark "\$@"' "$root" "\$@"
WRAPPER
chmod 755 "$wrapper"
trap 'rm -rf --one-file-system "$root" "$wrapper"' EXIT
"$wrapper" version --json || fail "bulwark through the wrapper"

# The smoke suites: proxying HTTP/1.1 and HTTP/2, errors, admin, reload and drain.
# AccessLogTest is left out: its log file is created by the test (root, 0644) and UID 65532
# cannot write it, which says nothing about the installed binary.
for suite in integration_proxy_test integration_lifecycle_test integration_admin_test; do
  binary="$BUILD_DIR/tests/integration/$suite"
  if ! BULWARK_TEST_BINARY="$wrapper" "$binary" --gtest_brief=1 --gtest_filter='-AccessLogTest.*'; then
    fail "$suite against the installed binary"
  fi
done

echo "runtime_root_test: $failures failure(s)"
[[ $failures -eq 0 ]]
