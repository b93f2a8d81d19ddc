"""The Flask web gateway: the public JSON API in front of the services."""
