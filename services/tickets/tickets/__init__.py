"""The tickets service: tickets, replies, internal notes and need-to-know access."""
