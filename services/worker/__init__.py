"""The queue worker beside each transcriber: its RQ worker, chunk task and queue-node launcher."""
