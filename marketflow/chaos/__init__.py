"""``marketflow chaos``: the whole platform run under faults, then proven (docs/chaos.md).

``run`` drives one run (a private MARKETFLOW_HOME, ``marketflow up`` with a replayable demo
feed, faults on a schedule, a clean stop), ``faults`` the fault actions, ``verify`` what is
proven afterwards, ``procs`` the /proc reading, ``watch`` the dashboard WebSocket client and
``soak`` the resource samples of a long run.
"""
