"""flakehunt.tracebacks: each source parsed once a run, every answer as pytest's own."""

from __future__ import annotations

import sys
import types

import pytest

from flakehunt import tracebacks


@pytest.fixture
def fake_code(monkeypatch):
    """A stand-in for ``_pytest._code.code`` whose function records its calls."""
    calls = []

    def getstatementrange_ast(lineno, source, assertion=False, astnode=None):
        calls.append((lineno, str(source), astnode))
        return (astnode or f"ast of {source}", lineno, lineno + 1)

    module = types.ModuleType("_pytest._code.code")
    module.getstatementrange_ast = getstatementrange_ast
    monkeypatch.setitem(sys.modules, "_pytest._code.code", module)
    return module, calls


def test_each_source_is_parsed_once_and_each_answer_kept(fake_code):
    module, calls = fake_code
    assert tracebacks.share_parses()
    shared = module.getstatementrange_ast
    assert tracebacks.share_parses() and module.getstatementrange_ast is shared  # once
    first = shared(3, "x = 1\n")
    assert shared(3, "x = 1\n") is first
    assert shared(5, "x = 1\n") == ("ast of x = 1\n", 5, 6)
    assert shared(3, "y = 2\n") == ("ast of y = 2\n", 3, 4)
    # parsed once per text: the second line of the same text got the kept tree
    assert calls == [(3, "x = 1\n", None), (5, "x = 1\n", "ast of x = 1\n"),
                     (3, "y = 2\n", None)]
    # a tree pytest already holds for this failure goes through as it was
    assert shared(7, "x = 1\n", astnode="its own") == ("its own", 7, 8)


def test_the_memo_stays_bounded(fake_code, monkeypatch):
    module, calls = fake_code
    monkeypatch.setattr(tracebacks, "MAX_KEPT", 4)
    tracebacks.share_parses()
    for i in range(10):
        module.getstatementrange_ast(1, f"v = {i}\n")
    module.getstatementrange_ast(1, "v = 9\n")  # kept since the last clear
    assert len(calls) == 10
    module.getstatementrange_ast(1, "v = 0\n")  # dropped by a clear: parsed again
    assert len(calls) == 11


def test_a_pytest_without_the_function_is_left_alone(monkeypatch):
    monkeypatch.setitem(sys.modules, "_pytest._code.code", types.ModuleType("other"))
    assert not tracebacks.share_parses()
