"""`make bench` and `make eval`: SayIt measured against the raw engine, accuracy, preset tuning;
`make load` and `make crowd`: callers and open streams against the mesh `make up` runs."""
