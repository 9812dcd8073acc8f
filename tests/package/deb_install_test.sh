#!/usr/bin/env bash
# The .deb on this machine: builds it (scripts/package.sh), installs it with dpkg -i +
# apt-get -f install, checks what the package promises, and purges it. Needs root.
# Usage: deb_install_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
SOURCE_DIR=$1
BUILD_DIR=$2
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if [[ $(id -u) -ne 0 ]]; then echo "FAIL: needs root (dpkg -i)"; exit 1; fi
if dpkg-query -W -f='${Status}' bulwark 2>/dev/null | grep -q "install ok installed"; then
  echo "FAIL: a bulwark package is already installed; purge it first"
  exit 1
fi
user_existed=0
getent passwd bulwark >/dev/null && user_existed=1

deb=$("$SOURCE_DIR/scripts/package.sh" "$BUILD_DIR" | grep '/bulwark_[^/]*\.deb$') ||
  { echo "FAIL: scripts/package.sh"; exit 1; }
echo "package: $deb"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libevent libnghttp2 libssl3 libyaml-cpp libprometheus-cpp-core adduser; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib (dpkg-shlibdeps)"
done
[[ "$depends" == *libgrpc* ]] && fail "the proxy package depends on gRPC"

export DEBIAN_FRONTEND=noninteractive
if ! dpkg -i "$deb"; then
  apt-get -f install -y -qq || fail "apt-get -f install"
fi
dpkg-query -W -f='${Status}\n' bulwark | grep -q "install ok installed" || fail "not installed"
files=$(dpkg -L bulwark)

/usr/bin/bulwark check -c /etc/bulwark/bulwark.yaml || fail "bulwark check -c /etc/bulwark/bulwark.yaml"
revision=$(/usr/bin/bulwark version --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["revision"])')
head=$(git -C "$SOURCE_DIR" rev-parse HEAD 2>/dev/null || echo unknown)
[[ "$revision" == "$head" ]] || fail "installed version --json revision $revision, HEAD $head"
getent passwd bulwark | grep -q ':/usr/sbin/nologin$' || fail "no bulwark system user with nologin"
[[ -d /var/log/bulwark ]] || fail "no /var/log/bulwark"
[[ -f /usr/lib/systemd/system/bulwark.service || -f /lib/systemd/system/bulwark.service ]] ||
  fail "no unit installed"
ls /etc/systemd/system/*.wants/bulwark.service 2>/dev/null && fail "the unit is enabled"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' bulwark)
[[ "$conffiles" == *"/etc/bulwark/bulwark.yaml"* ]] || fail "/etc/bulwark/bulwark.yaml is not a conffile"
[[ "$conffiles" == *"/etc/logrotate.d/bulwark"* ]] || fail "/etc/logrotate.d/bulwark is not a conffile"
# The conffile survives an upgrade with local edits: reinstall over an edited file.
echo "# local edit" >>/etc/bulwark/bulwark.yaml
dpkg -i --force-confold "$deb" >/dev/null || fail "reinstall"
grep -q "# local edit" /etc/bulwark/bulwark.yaml || fail "a reinstall overwrote the edited conffile"

dpkg --purge bulwark || fail "dpkg --purge"
dpkg-query -W -f='${Status}' bulwark 2>/dev/null | grep -q installed && fail "still installed"
while read -r path; do
  [[ -f "$path" ]] && fail "left after purge: $path"
done <<<"$files"
[[ -e /etc/bulwark ]] && fail "/etc/bulwark left after purge"
[[ -e /var/log/bulwark ]] && fail "/var/log/bulwark left after purge"
# The system user stays by design (Debian practice); remove the one this test made.
if [[ $user_existed -eq 0 ]] && getent passwd bulwark >/dev/null; then
  deluser --quiet --system bulwark >/dev/null 2>&1 || userdel bulwark
  getent group bulwark >/dev/null && groupdel bulwark
fi

echo "deb_install_test: $failures failure(s)"
[[ $failures -eq 0 ]]
