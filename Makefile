# Developer entry points. `make test` is the README's test command; CI runs .ci/run.
PYTHON ?= python3
CLANG  ?= clang-19
BPF_CFLAGS = -target bpf -O2 -g -Wall -Wno-unused-function -I/usr/include/$(shell uname -m)-linux-gnu

FIXTURE_SRC = $(wildcard tests/fixtures/*.c) $(wildcard examples/*.c)
FIXTURE_OBJ = $(FIXTURE_SRC:.c=.o)

.PHONY: install check test fixtures bench

install:
	$(PYTHON) -m pip install -e '.[test]'

check:
	ruff check .
	ruff format --check .

test:
	$(PYTHON) -m pytest

fixtures: $(FIXTURE_OBJ)

%.o: %.c
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

bench:
	$(PYTHON) benchmarks/run.py
