"""Settings memoised with lru_cache (monkeypatch restores the env, not the cache)."""
import functools
import os


@functools.lru_cache(maxsize=None)
def get_settings():
    return {"region": os.environ.get("CORPUS_REGION", "eu-west-1")}
