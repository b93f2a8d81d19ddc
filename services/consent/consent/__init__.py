"""The consent service: marketing preferences, cookie choices, the consent ledger, communications."""
