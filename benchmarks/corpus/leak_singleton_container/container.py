"""A dependency-injection container with overridable providers (one per process)."""


class Container:
    _instance = None

    def __init__(self):
        self.providers = {"mailer": lambda: "smtp", "clock": lambda: "system"}
        self.overrides = {}

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def override(self, name, factory):
        self.overrides[name] = factory

    def resolve(self, name):
        return self.overrides.get(name, self.providers[name])()
