"""Ingest: reading the input, its report, the ExampleGens and Transform with the run's facts."""
