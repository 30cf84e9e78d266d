"""Topic subscribers held by a process-wide broker (no loop objects: plain state)."""


class Broker:
    def __init__(self):
        self.subscribers = {}

    async def subscribe(self, topic, who):
        self.subscribers.setdefault(topic, set()).add(who)

    async def fanout(self, topic):
        return len(self.subscribers.get(topic, ()))


BROKER = Broker()
