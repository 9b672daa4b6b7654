# Developer entry points. `make test` is the README's test command; CI runs .ci/run.
PYTHON ?= python3
CLANG  ?= clang-19
# Objects must not depend on where the checkout lives, so that tests/test_fixtures_fresh.py
# can rebuild them anywhere and compare bytes: source paths are recorded relative.
BPF_CFLAGS = -target bpf -O2 -g -Wall -Wno-unused-function \
             -I/usr/include/$(shell uname -m)-linux-gnu \
             -ffile-prefix-map=$(CURDIR)=. -fdebug-compilation-dir=.
# A source may ask for more flags with a line `// build: FLAGS` (e.g. -mcpu=v4).
extra_flags = $(shell sed -n 's|^// build: ||p' $(1))

FIXTURE_SRC = $(wildcard tests/fixtures/*.c) $(wildcard tests/kernel/*.c) \
              $(wildcard tests/corpus/*.c) $(wildcard examples/*.c)
FIXTURE_OBJ = $(FIXTURE_SRC:.c=.o)

.PHONY: install check test fixtures bench bpf-cflags

install:
	$(PYTHON) -m pip install -e '.[test]'

check:
	ruff check .
	ruff format --check .

test:
	$(PYTHON) -m pytest

fixtures: $(FIXTURE_OBJ)

%.o: %.c
	$(CLANG) $(BPF_CFLAGS) $(call extra_flags,$<) -c $< -o $@

# What tests/test_fixtures_fresh.py compiles with.
bpf-cflags:
	@echo $(CLANG) $(BPF_CFLAGS)

bench:
	$(PYTHON) benchmarks/run.py
