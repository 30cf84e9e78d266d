def test_no_plugins_by_default(registry):
    assert registry.names() == []


def test_module_is_importable(registry):
    assert hasattr(registry, "register")
