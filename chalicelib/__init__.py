"""Micro as a Service: all domain and adapter code (Chalice packages app.py, chalicelib/ and vendor/)."""

__version__ = "0.1.0"
