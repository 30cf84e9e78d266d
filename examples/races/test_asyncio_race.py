import asyncio

from calibrate import burn


def test_ack_arrives_before_heartbeat():
    """The ack needs ~4 ms of CPU and a 12 ms wait; the heartbeat fires at 20 ms."""

    async def scenario():
        inbox: asyncio.Queue[str] = asyncio.Queue()

        async def heartbeat():
            await asyncio.sleep(0.020)
            await inbox.put("pong")

        async def ack():
            burn(4)
            await asyncio.sleep(0.012)
            await inbox.put("subscribed")

        tasks = [asyncio.create_task(heartbeat()), asyncio.create_task(ack())]
        first = await inbox.get()
        await asyncio.gather(*tasks)
        return first

    assert asyncio.run(scenario()) == "subscribed"
