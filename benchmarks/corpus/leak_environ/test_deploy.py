import os


def test_prod_mode_disables_debug():
    os.environ["CORPUS_APP_MODE"] = "prod"
    from settings import Settings
    assert not Settings().debug


def test_mode_is_a_string(settings):
    assert isinstance(settings.mode, str)
