"""Secrets the shipped configuration files name but never hold.

``telephony.toml`` names the environment variable of each SIP password
(``auth_password_env``) instead of holding it. They are no settings of the worker, so
no settings part declares them; this list puts them in ``.env.example`` and the
reference beside the settings, and a test keeps it equal to what the shipped file names.
"""

from __future__ import annotations

FILE_SECRETS: tuple[tuple[str, str], ...] = (
    (
        "SIP_OUTBOUND_PASSWORD",
        "telephony.toml: the SIP password of the outbound trunk (its auth_password_env); "
        "`switchboard provision` needs it, `--dry-run` does not",
    ),
)
