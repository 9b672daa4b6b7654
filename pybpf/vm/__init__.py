"""The execution engines: the interpreter (translation to Python) and, later, the LLVM JIT.

Place in the pipeline: the last stage. The runtime (`pybpf.object`) prepares each linked,
verified program once as an `Interpreter` and runs it per call; `run_program` runs a raw
program in one call (the conformance suite, the CLI).
"""

from pybpf.vm.codegen import (
    FUNC_PTR_TAG,
    HANDLERS,
    MAX_CALL_FRAMES,
    STACK_SIZE,
    ReplaceFrame,
    func_pointer,
)
from pybpf.vm.interpreter import (
    DEFAULT_BUDGET,
    Execution,
    HelperFn,
    Interpreter,
    Resolver,
    RunOutcome,
    RunState,
    TraceFn,
    current_run,
    run_program,
    shared_arena,
)

__all__ = [
    "DEFAULT_BUDGET",
    "FUNC_PTR_TAG",
    "HANDLERS",
    "MAX_CALL_FRAMES",
    "STACK_SIZE",
    "Execution",
    "HelperFn",
    "Interpreter",
    "ReplaceFrame",
    "Resolver",
    "RunOutcome",
    "RunState",
    "TraceFn",
    "current_run",
    "func_pointer",
    "run_program",
    "shared_arena",
]
