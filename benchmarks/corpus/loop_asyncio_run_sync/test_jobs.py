import asyncio

import pytest

from worker import JOBS


@pytest.fixture
def jobs():
    return JOBS


def test_three_jobs(jobs):
    assert asyncio.run(jobs.run(3)) == [0, 1, 2]


def test_one_job(jobs):
    assert asyncio.run(jobs.run(1)) == [0]


def test_unrelated_run():
    assert asyncio.run(asyncio.sleep(0, result=5)) == 5
