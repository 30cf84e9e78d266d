def test_remember_theme(svc):
    svc.store.put("theme", "dark")
    assert svc.store.get("theme") == "dark"


def test_theme_defaults_to_light(svc):
    assert svc.store.get("theme", "light") == "light"


def test_unknown_key_counts_a_lookup(svc):
    svc.store.get("nothing")
    assert svc.store.counters["nothing"] >= 1
