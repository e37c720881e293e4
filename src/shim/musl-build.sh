#!/bin/sh
# Builds containerd-shim-krill-v2 as a small static musl binary (issue 5: RSS <= 0.8 MB, USS <= 0.3 MB per
# idle shim). musl-gcc ignores /usr/include, so the only foreign headers it sees are protobuf-c's, through a
# private include dir holding one symlink. Debian's libprotobuf-c.a needs nothing musl lacks (nm -u).
# Usage: musl-build.sh MUSL_GCC OUTPUT PRIVATE_DIR PROTOBUF_C_INCDIR PROTOBUF_C_ARCHIVE GENERATED_C [cflags...] \
#        -- sources...
set -eu
CC=$1
OUT=$2
PRIV=$3
PBC_INC=$4
PBC_A=$5
GENERATED=$6
shift 6
CFLAGS=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        CFLAGS="$CFLAGS $1"
        shift
done
shift
mkdir -p "$PRIV/include"
ln -sfn "$PBC_INC" "$PRIV/include/protobuf-c"
COMMON="-Os -std=gnu11 -D_GNU_SOURCE -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables
        -fno-unwind-tables -fstack-protector-strong -I$PRIV/include $CFLAGS"
# generated code: no warnings (as src/api builds it); --gc-sections keeps only the descriptors the shim uses
# shellcheck disable=SC2086
"$CC" $COMMON -w -c "$GENERATED" -o "$PRIV/api.o"
# shellcheck disable=SC2086
exec "$CC" -static $COMMON -Wall -Wextra -Werror -Wno-missing-field-initializers -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wvla -fno-common -Wl,--gc-sections -Wl,-z,noexecstack \
        "$@" "$PRIV/api.o" "$PBC_A" -o "$OUT"
