#!/bin/sh
# make test: builds (normal and ASan+UBSan), runs every test, and ends with `N passed, N failed[, N skipped]`.
# Unit and fuzz-replay tests run in both builds; integration tests (pytest, real binaries) in the normal one.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
rc=0

setup() { # dir, extra options
        dir=$1
        shift
        if [ ! -f "$dir/build.ninja" ]; then
                meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
        fi
        ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { tail -50 "$dir.ninja.log"; return 1; }
}

mkdir -p build
if ! setup build; then
        echo "build failed"
        echo "0 passed, 1 failed"
        exit 1
fi
if ! setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dintegration=false; then
        echo "asan build failed"
        echo "0 passed, 1 failed"
        exit 1
fi

echo "== unit + fuzz replay (gcc)"
meson test -C build --suite unit --suite fuzz --print-errorlogs --num-processes 2 || rc=1
echo "== unit + fuzz replay (ASan+UBSan)"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --suite unit --suite fuzz --print-errorlogs --num-processes 2 || rc=1

echo "== integration (pytest, real binaries)"
JUNIT="$ROOT/build/pytest-junit.xml"
rm -f "$JUNIT"
KRILL_BUILD="$ROOT/build" /usr/bin/python3 -m pytest -q -rs --junitxml="$JUNIT" tests/integration || {
        r=$?
        # 5 = no tests collected, which is not a failure of the suite
        [ "$r" = 5 ] || rc=1
}

/usr/bin/python3 scripts/summarize.py build/meson-logs/testlog.json build-asan/meson-logs/testlog.json "$JUNIT" || rc=1
exit $rc
