"""What tests, bench and `make up` share: services on free ports, Redis, the mesh, eval clips."""
