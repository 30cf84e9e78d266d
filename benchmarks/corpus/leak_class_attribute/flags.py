"""Feature flags held as class attributes."""


class Flags:
    dark_mode = False
    beta = False

    @classmethod
    def enable(cls, name):
        setattr(cls, name, True)


def theme(flags):
    return "dark" if flags.dark_mode else "light"
