import pytest

from client import Client


@pytest.mark.asyncio
async def test_send_hello(registry):
    client = registry.setdefault("client", Client())
    assert await client.send("hello") == "hello"


@pytest.mark.asyncio
async def test_send_bye(registry):
    client = registry.setdefault("client", Client())
    assert await client.send("bye") == "bye"


def test_registry_starts_as_a_dict(registry):
    assert isinstance(registry, dict)
