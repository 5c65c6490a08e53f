"""Console mode (``agent.py console``): one run is one call, so the console ends with it.

The framework's console keeps its prompt open after the job has ended, where typing then
does nothing; ending the process as Ctrl+C would (its own signal handling runs the
shutdown) tells the user the call is over instead.
"""

from __future__ import annotations

import logging
import signal
import threading

logger = logging.getLogger("switchboard.call")


def leave_console(why: str) -> None:
    """End the console process: the call it ran is over (its record is written)."""
    logger.info("console: the call is over (%s); leaving the console", why)
    # To the main thread, which waits in a read of the terminal: a signal raised on this
    # (the job's) thread would reach it only after the next key press.
    main = threading.main_thread().ident
    if main is not None:
        signal.pthread_kill(main, signal.SIGTERM)
