# Thin wrapper over CMake. The two commands of the README:
#   make demo   install what is missing, build, run the main job on the default models and stories260K
#   make test   install what is missing, build release + sanitizer builds, run every test
# Others: make (release build), make sanitize, make fuzz, make bench, make install PREFIX=..., make clean

BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps release sanitize demo test fuzz bench install clean

all: release

deps:
	scripts/install-deps.sh --with-mpi

release: deps
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD)/release -j $(JOBS)

sanitize: deps
	cmake -S . -B $(BUILD)/sanitize -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=ON
	cmake --build $(BUILD)/sanitize -j $(JOBS)

demo: release
	$(BUILD)/release/strata demo --force -o $(BUILD)/demo

test:
	scripts/test.sh

fuzz:
	scripts/fuzz.sh

bench: release
	$(BUILD)/release/bench_formats
	$(BUILD)/release/bench_forward
	$(BUILD)/release/bench_tokenizer
	$(BUILD)/release/bench_quantize
	$(BUILD)/release/bench_gptq
	$(BUILD)/release/bench_convert
	$(BUILD)/release/bench_quantize_once
	$(BUILD)/release/bench_pipeline --shapes 8b
	bench/ranks.sh $(BUILD)/release/strata

install: release
	cmake --install $(BUILD)/release --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
