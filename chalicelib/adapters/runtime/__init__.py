"""Runtime adapters: implementations of ``RuntimePort`` that run services for real.

``local.LocalRuntime`` runs each deployed service version as a local process behind a small reverse
proxy per namespace (the local stage). Import it from ``chalicelib.adapters.runtime.local``; this
package imports nothing on its own so that importing it stays cheap."""
