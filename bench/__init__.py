"""`make bench` and `make eval`: SayIt measured against the raw engine, accuracy, preset tuning."""
