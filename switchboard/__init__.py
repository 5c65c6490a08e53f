"""Switchboard: an inbound-call voice agent on LiveKit Agents.

``IMPORTED_IN`` is the process that imported the package. In a job process it is the
forkserver's, when the worker's preload did its work (``switchboard.worker``); a job
process that had to import everything again itself shows its own pid, and says so in its
``job_started`` event.
"""

import os

IMPORTED_IN = os.getpid()
