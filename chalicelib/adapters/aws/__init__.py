"""Adapters over AWS services other than the table (EventBridge, Step Functions, SQS; SES is a
notifier: chalicelib/adapters/notify). Clients are injectable and built only on first use, never at
import time."""
