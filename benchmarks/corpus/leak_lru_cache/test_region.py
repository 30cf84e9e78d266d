from config import get_settings


def test_us_region(monkeypatch):
    monkeypatch.setenv("CORPUS_REGION", "us-east-1")
    assert get_settings()["region"] == "us-east-1"


def test_default_region(settings):
    assert settings["region"] == "eu-west-1"


def test_settings_is_a_dict(settings):
    assert isinstance(settings, dict)
