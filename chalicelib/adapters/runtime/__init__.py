"""Runtime adapters: implementations of ``RuntimePort``.

- ``micro.MicroRuntime``: micro v3's runtime service of a cluster, through its API gateway.
- ``local.LocalRuntime``: the local stage's runtime, each deployed service version a local process
  behind a small reverse proxy per namespace (``proxy.NamespaceProxy``); ``local`` is a package (its
  processes, state files and metering in modules of their own), ``local_accounts`` its
  ``RuntimeAuthPort``.

Import them from their modules; this package imports nothing on its own so that importing it stays
cheap."""
