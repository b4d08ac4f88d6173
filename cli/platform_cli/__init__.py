"""The ``platform`` command line: a thin client of the platform's HTTPS API.

It imports no server code (nothing from ``chalicelib``, ``localcloud``, ``functions`` or ``app.py``):
it reads and writes the ``~/.micro/platform.env`` dotenv file (:mod:`cli.platform_cli.config`) and micro v3's
``~/.micro/config.json`` (:mod:`cli.platform_cli.micro_config`), and speaks HTTP with ``requests``
(:mod:`cli.platform_cli.client`). The commands live in :mod:`cli.platform_cli.commands`, the parser and entry point in
:mod:`cli.platform_cli.main`; the exit codes are documented in :mod:`cli.platform_cli.errors`.
"""

__version__ = "0.1.0"
