"""The dispatch guardian (`switchboard guardian`): no caller stranded without an agent.

Reading order: config (the environment), room (what the server says of a room, as plain
values), decisions (pure: what to do), dispatcher (doing it), reconcile (the loop),
webhook (the receiver), main (wiring).
"""
