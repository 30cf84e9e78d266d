"""A renderer doing CPU work in small steps, yielding between them."""
import asyncio

from calibrate import burn


class Renderer:
    async def render(self, pages):
        out = []
        for i in range(pages):
            burn(3)
            await asyncio.sleep(0)
            out.append(f"page{i}")
        return out
