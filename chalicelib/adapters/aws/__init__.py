"""Adapters over AWS services other than the table (EventBridge, SES, SNS). Clients are injectable
and built only on first use, never at import time."""
