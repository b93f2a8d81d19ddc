"""Shared plumbing for the Kaseum services (one copy, used by all)."""
