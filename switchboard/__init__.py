"""Switchboard: an inbound-call voice agent on LiveKit."""
