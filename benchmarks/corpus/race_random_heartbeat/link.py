"""A link whose server sends one heartbeat after a random delay (jittered, as real
servers do), racing the reply to a subscription."""
import asyncio
import random


class Link:
    def __init__(self):
        self.inbox = asyncio.Queue()

    async def heartbeat(self):
        await asyncio.sleep(random.uniform(0.0, 0.03))
        await self.inbox.put("ping")

    async def subscribe(self, topic):
        await asyncio.sleep(0.01)  # the server's round trip
        await self.inbox.put(f"subscribed:{topic}")
        return await self.inbox.get()
