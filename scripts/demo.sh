#!/bin/sh
# make demo: start krilld on a private temp root/state/socket, drive it with krill and Debian's ctr, stop it
# and clean up. Usage: scripts/demo.sh BUILD_DIR
#
# Each step is one `step` line; later issues add theirs (image import, run a container) in demo_steps().
set -eu

BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$(pwd)/$BUILD" ;; esac
SRC=$(cd "$(dirname "$0")/.." && pwd)
KRILLD="$BUILD/src/daemon/krilld"
KRILL="$BUILD/src/cli/krill"
CTR=${CTR:-/usr/bin/ctr}

for b in "$KRILLD" "$KRILL"; do
        [ -x "$b" ] || { echo "demo: $b is not built (run make)" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/krill-demo.XXXXXX)
SOCK="$DIR/krill.sock"
PID=""

cleanup() {
        if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
                kill -TERM "$PID" 2>/dev/null || true
                wait "$PID" 2>/dev/null || true
        fi
        rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then
        say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
        say() { printf '\n== %s\n' "$*"; }
fi

# step DESCRIPTION COMMAND...: prints the command line, runs it, stops the demo if it fails.
step() {
        say "$1"
        shift
        echo "\$ $*" | sed "s|$BUILD/src/[a-z]*/||g; s|$DIR|\$DEMO|g"
        "$@"
}

start_krilld() {
        say "starting krilld (root, state and socket under $DIR)"
        # krilld finds containerd-shim-krill-v2 next to itself (installed) or on PATH (build tree).
        PATH="$BUILD/src/shim:$PATH" "$KRILLD" --root "$DIR/root" --state "$DIR/state" --address "$SOCK" \
                --log-level info 2>"$DIR/krilld.log" &
        PID=$!
        i=0
        until [ -S "$SOCK" ] && "$KRILL" --address "$SOCK" --connect-timeout 1s version >/dev/null 2>&1; do
                if ! kill -0 "$PID" 2>/dev/null; then
                        echo "demo: krilld exited; its log:" >&2
                        cat "$DIR/krilld.log" >&2
                        exit 1
                fi
                i=$((i + 1))
                [ $i -lt 200 ] || { echo "demo: krilld did not come up" >&2; exit 1; }
                sleep 0.05
        done
        echo "krilld is up (pid $PID)"
}

stop_krilld() {
        say "stopping krilld (SIGTERM)"
        kill -TERM "$PID"
        wait "$PID"
        PID=""
        [ ! -e "$SOCK" ] || { echo "demo: the socket was not removed" >&2; exit 1; }
        echo "krilld stopped and removed its socket; its log:"
        sed 's/^/  /' "$DIR/krilld.log"
}

demo_steps() {
        step "krill version" "$KRILL" --address "$SOCK" version
        if [ -x "$CTR" ]; then
                step "Debian's ctr talks to krilld too" "$CTR" --address "$SOCK" version
        fi
        step "create a namespace with labels" "$KRILL" --address "$SOCK" namespaces create demo team=krill
        step "list namespaces" "$KRILL" --address "$SOCK" namespaces ls
        if [ -x "$CTR" ]; then
                step "the same list through ctr" "$CTR" --address "$SOCK" namespaces ls
        fi
        step "what krilld is made of" "$KRILL" --address "$SOCK" plugins ls
        step "remove the namespace" "$KRILL" --address "$SOCK" namespaces rm demo

        say "building a busybox image locally from Debian's busybox-static (no network)"
        /usr/bin/python3 "$SRC/tests/tools/mkimage.py" busybox "$DIR/busybox.tar" \
                --name docker.io/library/busybox:demo >/dev/null
        echo "built $DIR/busybox.tar" | sed "s|$DIR|\$DEMO|g"
        step "import it (content store, metadata, unpack into overlayfs snapshots)" \
                "$KRILL" --address "$SOCK" images import "$DIR/busybox.tar"
        step "list images" "$KRILL" --address "$SOCK" images ls
        # --fifo-dir keeps the stdio FIFOs under the demo dir instead of /run/krill/fifo.
        step "run a container through containerd-shim-krill-v2 and runc" \
                "$KRILL" --address "$SOCK" run --rm --fifo-dir "$DIR/fifo" docker.io/library/busybox:demo hello \
                echo "Hello from a krill container!"
        step "nothing is left running" "$KRILL" --address "$SOCK" containers ls
        step "remove the image" "$KRILL" --address "$SOCK" images rm --sync docker.io/library/busybox:demo
}

start_krilld
demo_steps
stop_krilld
say "demo finished"
