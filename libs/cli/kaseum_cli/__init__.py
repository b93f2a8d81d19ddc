"""The `kaseum` operator command line."""
