import pytest


@pytest.mark.parametrize("topic", ["news", "sport", "weather", "traffic", "markets", "tech"])
def test_topic_names_are_lowercase(topic):
    assert topic == topic.lower()
