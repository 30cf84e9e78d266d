def test_debug_on_in_dev(settings):
    assert settings.debug


def test_env_override_with_monkeypatch(monkeypatch):
    monkeypatch.setenv("CORPUS_APP_MODE", "staging")
    from settings import Settings
    assert Settings().mode == "staging"
