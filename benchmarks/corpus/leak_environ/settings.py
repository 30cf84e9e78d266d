"""Settings read from the environment."""
import os


class Settings:
    def __init__(self):
        self.mode = os.environ.get("CORPUS_APP_MODE", "dev")
        self.debug = self.mode == "dev"
