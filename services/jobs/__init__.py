"""The Redis job model shared by scheduler and worker: keys, changes, store, RQ queue, merge."""
