"""Child side: a run's failure reports parse each source file once, not once a failure.

To show a traceback entry pytest finds where its statement ends by parsing the entry's
whole file (``_pytest._code.source.getstatementrange_ast``), and it keeps that parse
only while formatting one failure. A run whose tests fail through the same files (the
test module, a library's client, asyncio's event loop) parsed them again for every
failure: measured with ``benchmarks/bench_evidence.py``, about 8% of a warm run of the
example and 7% of one of freezegun in a shuffled order. :func:`share_parses` keeps the
parse of each source text, and each answer, for the rest of the run: the answer is a
function of the text, the line and ``assertion`` alone, so every report is the same.
"""

from __future__ import annotations

import sys
from typing import Any

#: sources and answers kept at most; then the memo starts again (memory stays bounded)
MAX_KEPT = 512


#: the modules that call pytest's function by their own global name
CALLERS = ("_pytest._code.code", "_pytest._code.source")


def share_parses() -> bool:
    """Wrap the function pytest's traceback entries call (under each name it is called
    by), once a process; whether it is (False where this pytest has no such function)."""
    code = sys.modules.get(CALLERS[0])
    original = getattr(code, "getstatementrange_ast", None)
    if original is None or not callable(original):
        return False
    if getattr(original, "flakehunt_shared", False):
        return True
    memo: dict[Any, Any] = {}

    def getstatementrange_ast(lineno: int, source: Any, assertion: bool = False,
                              astnode: Any = None) -> Any:
        if astnode is not None:  # pytest's own cache of this failure: as it was
            return original(lineno, source, assertion=assertion, astnode=astnode)
        text = str(source)
        key = (text, lineno, assertion)
        got = memo.get(key)
        if got is None:
            if len(memo) >= MAX_KEPT:
                memo.clear()
            got = original(lineno, source, assertion=assertion, astnode=memo.get(text))
            memo[text] = got[0]
            memo[key] = got
        return got

    getstatementrange_ast.flakehunt_shared = True  # type: ignore[attr-defined]
    for name in CALLERS:
        module = sys.modules.get(name)
        if getattr(module, "getstatementrange_ast", None) is original:
            module.getstatementrange_ast = getstatementrange_ast  # type: ignore[union-attr]
    return True
