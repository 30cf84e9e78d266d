def test_register_exporter(registry):
    registry.register("exporter")
    assert "exporter" in registry.names()


def test_names_is_a_copy(registry):
    registry.names().append("x")
    assert "x" not in registry.names()
