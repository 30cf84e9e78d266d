"""Example FastAPI WebSocket app used by the flakehunt example suite."""
