"""``mspwatch demo``: the whole stack on the simulated estate, one module per area on one kit."""
