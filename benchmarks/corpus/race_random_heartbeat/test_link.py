import pytest


@pytest.mark.asyncio
async def test_subscribe_is_acknowledged(link):
    assert await link.subscribe("news") == "subscribed:news"


def test_topics_are_strings():
    assert isinstance("news", str)


@pytest.mark.asyncio
async def test_inbox_starts_empty(link):
    assert link.inbox.empty()
