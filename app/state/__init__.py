"""Shared state links: the durable operator store (``durable``) and token limits on the hot store."""
