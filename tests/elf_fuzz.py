"""The seeded fuzz driver for ELF objects, shared by the loader and corpus fuzz tests.

Place in the test suite: `test_fuzz_loader.py` (loader fixtures) and `test_corpus.py` (corpus
objects) each bring their own mutator; this module draws the cases from one seed (which object,
then the mutator's choices, from the same `random.Random`), loads every mutated blob with
`load_spec` under a time limit and tallies how each load ended. Success and `BpfError` are the
only acceptable endings: any other exception, or a hang, propagates to fail the test.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pybpf.errors import BpfError
from pybpf.loader import load_spec

Mutator = Callable[[random.Random, bytes], tuple[str, bytes]]


class Hang(Exception):
    """A load ran past its time limit: the loader must be bounded on any input."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise Hang(f"load did not finish in {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def mutations(
    originals: dict[str, bytes], mutate: Mutator, cases: int, seed: int
) -> Iterator[tuple[str, str, bytes]]:
    """The seeded cases: (object name, what the mutator did, the mutated bytes)."""
    objects = list(originals.items())
    rng = random.Random(seed)
    for _ in range(cases):
        name, original = objects[rng.randrange(len(objects))]
        how, blob = mutate(rng, original)
        yield name, how, blob


def run_fuzz(
    originals: dict[str, bytes], mutate: Mutator, *, cases: int, seed: int, case_seconds: float
) -> dict[str, int]:
    """Load every seeded case; returns how many ended which way ("loaded" or the BpfError
    class name)."""
    outcomes: dict[str, int] = {}
    for case, (name, how, blob) in enumerate(mutations(originals, mutate, cases, seed)):
        # shown by pytest when a case fails: any exception but BpfError propagates
        print(f"case {case}: {how} of {name}")
        try:
            with time_limit(case_seconds):
                load_spec(blob, name="fuzz")
            outcome = "loaded"
        except BpfError as e:
            outcome = type(e).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
