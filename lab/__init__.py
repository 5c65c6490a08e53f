"""The local telephony lab: LiveKit server, SIP service, sipp phones and helpers."""
