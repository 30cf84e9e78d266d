import audit


def test_action_is_audited(caplog):
    audit.record("delete")
    assert "audit: delete" in caplog.text


def test_record_returns_none():
    assert audit.record("noop") is None
