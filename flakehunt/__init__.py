"""flakehunt: hunt flaky pytest tests and say why.

Kept import-light: the pytest plugin (flakehunt.plugin) is loaded in every
pytest process where flakehunt is installed.
"""

__version__ = "0.1.0"
