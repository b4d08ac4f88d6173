"""Standalone Lambda handlers (state machine tasks, queue consumers, schedules). Each is thin:
parse the event, call a service from chalicelib, return a dict."""
