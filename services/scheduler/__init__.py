"""Jobs, routing, RQ queues and the queue worker."""
