"""The Redis job model shared by scheduler and worker: keys, changes, store, the watch hub that
follows event streams for a whole process, RQ queue, merge."""
