"""The identity service: accounts, passwords, sessions, roles and organisations."""
