"""A FastAPI app whose event hub captures the loop that served its first request."""
import asyncio

from fastapi import FastAPI


class Hub:
    def __init__(self):
        self.loop = None
        self.events = []

    async def emit(self, name):
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        done = self.loop.create_future()
        self.loop.call_soon(done.set_result, name)
        self.events.append(await done)
        return len(self.events)


HUB = Hub()
app = FastAPI()


@app.post("/events/{name}")
async def post_event(name: str):
    return {"count": await HUB.emit(name)}


@app.get("/health")
async def health():
    return {"ok": True}
