"""Trunks and dispatch rules: telephony.toml, and applying it to a LiveKit server."""
