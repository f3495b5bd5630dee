"""Developer commands behind make: the local mesh (`make up`), the demo, generated code and docs."""
