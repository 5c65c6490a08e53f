"""Who the agent may dial, and what a dialled leg's outcome means to the caller: pure decisions."""
