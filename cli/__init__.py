"""Home of the ``platform`` command line; the code is the :mod:`cli.platform_cli` package.

Nothing is defined here on purpose: ``python-hcl2`` (a dev dependency) installs its own top-level
``cli`` package, which can win the import of ``cli`` over this one (for instance in the editable
install's console script). Every module of the CLI therefore imports only ``cli.platform_cli.*``, which
resolves to this directory in either case.
"""
