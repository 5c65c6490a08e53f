"""One call, from dispatch to hang-up.

Read it in order: ``flow`` (the whole call), ``participants`` and ``context`` (who is
calling), ``providers``, ``state``, ``events``, ``handlers`` and ``lifecycle`` (what
happens in the room), ``keypad``, ``hangup``, ``faults``, ``shutdown``, ``record``.
"""
