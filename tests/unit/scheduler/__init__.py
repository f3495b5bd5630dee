"""Tests of services.scheduler: each rule in well under a second."""
