import asyncio

import pytest

from render import Renderer


@pytest.fixture
def renderer():
    return Renderer()


@pytest.mark.asyncio
async def test_render_within_budget(renderer):
    pages = await asyncio.wait_for(renderer.render(8), timeout=0.080)
    assert len(pages) == 8


@pytest.mark.asyncio
async def test_render_one_page(renderer):
    assert await renderer.render(1) == ["page0"]
