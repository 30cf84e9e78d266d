import pytest


def test_register_exporter(app_store):
    app_store.register("exporter", object())
    assert "exporter" in app_store.PLUGINS


def test_switch_to_fast_mode(app_store):
    app_store.set_flag("mode", "fast")
    assert app_store.FLAGS["mode"] == "fast"


@pytest.mark.parametrize("n", range(12))
def test_admin_pages(n):
    assert n * 2 == n + n
