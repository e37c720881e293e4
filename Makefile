# Thin wrapper over meson + ninja (STYLE.md section 8). Every target works on a fresh Debian machine as root.
BUILD ?= build
PREFIX ?= /usr/local
MESON_OPTS ?=

.PHONY: all deps build test unit demo install bench clean

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: deps
	@sh scripts/test.sh

unit: build
	meson test -C $(BUILD) --suite unit --suite fuzz --print-errorlogs

demo: deps build
	@sh scripts/demo.sh $(BUILD)

install: build
	mkdir -p $(PREFIX)/bin
	install -m 0755 $(BUILD)/src/daemon/krilld $(BUILD)/src/cli/krill $(BUILD)/src/shim/containerd-shim-krill-v2 $(PREFIX)/bin/

bench: deps build
	@/usr/bin/python3 bench/run.py --build $(BUILD)

clean:
	rm -rf build build-asan
