"""DEFAULT_HELPERS: every helper and kfunc pybpf implements, as one immutable HelperSet.

Place in the pipeline: the set the object layer binds for a run unless the user passes their
own (``DEFAULT_HELPERS.with_(my_decl)``), and the set the verifier checks calls against. The
declarations themselves live next to their implementations (:mod:`pybpf.helpers.core`,
:mod:`pybpf.helpers.net`, :mod:`pybpf.helpers.wq`), one each.
"""

from __future__ import annotations

from pybpf.helpers.core import CORE_HELPERS
from pybpf.helpers.decl import HelperSet
from pybpf.helpers.net import NET_HELPERS
from pybpf.helpers.wq import WQ_KFUNCS

DEFAULT_HELPERS: HelperSet = HelperSet(
    helpers=tuple(sorted((*CORE_HELPERS, *NET_HELPERS), key=lambda d: d.id or 0)),
    kfuncs=WQ_KFUNCS,
)
