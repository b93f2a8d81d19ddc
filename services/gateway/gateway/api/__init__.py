"""Blueprints of the public JSON API (API.md)."""
