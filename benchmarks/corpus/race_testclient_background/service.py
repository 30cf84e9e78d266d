"""An endpoint that schedules its side effect as a task and answers at once."""
import asyncio

from fastapi import FastAPI

app = FastAPI()
SENT = []
_tasks = set()


async def _send_mail(to):
    await asyncio.sleep(0.002)
    SENT.append(to)


@app.post("/invite/{to}")
async def invite(to: str):
    task = asyncio.get_running_loop().create_task(_send_mail(to))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"queued": to}
