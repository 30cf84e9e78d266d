import os


def test_env_with_monkeypatch(monkeypatch):
    monkeypatch.setenv("CORPUS_STABLE", "1")
    assert os.environ["CORPUS_STABLE"] == "1"


def test_env_absent():
    assert "CORPUS_STABLE" not in os.environ
