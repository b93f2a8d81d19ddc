"""Developer tooling for the Kaseum Customer Portal (not shipped with any service)."""
