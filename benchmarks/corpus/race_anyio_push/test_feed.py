import pytest


@pytest.mark.anyio
async def test_quote_comes_first(feed):
    assert await feed.quote("ACME") == "quote:ACME"


@pytest.mark.anyio
async def test_feed_period(feed):
    assert feed.period > 0
