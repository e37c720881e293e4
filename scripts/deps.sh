#!/bin/sh
# Installs the Debian packages krill needs to build, test, demo and benchmark.
# Idempotent: does nothing when every package is already installed.
set -eu

PKGS="
meson ninja-build pkg-config gcc clang libclang-rt-14-dev
protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
libnghttp2-dev liblmdb-dev libjansson-dev libarchive-dev
libcurl4-openssl-dev libssl-dev libuv1-dev libisal-dev libzstd-dev libcap-dev
libcmocka-dev
golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev golang-github-gogo-googleapis-dev
python3 python3-pytest python3-grpcio python3-protobuf
containerd runc crun busybox-static skopeo umoci docker-registry
iproute2 util-linux procps psmisc e2fsprogs python3-pytest-timeout apache2-utils musl-tools
"

missing=""
for p in $PKGS; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
                missing="$missing $p"
        fi
done

if [ -z "$missing" ]; then
        echo "deps: all packages present"
        exit 0
fi

if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages:$missing (run as root to install)" >&2
        exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# containerd's Debian package starts a system containerd; we never use it
# (tests run private instances), so keep services from being started.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.krill
chmod +x /usr/sbin/policy-rc.d.krill
restore=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
        cp /usr/sbin/policy-rc.d.krill /usr/sbin/policy-rc.d
        restore=1
fi
rc=0
apt-get install -y -qq --no-install-recommends $missing || rc=$?
if [ "$restore" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
rm -f /usr/sbin/policy-rc.d.krill
exit $rc
