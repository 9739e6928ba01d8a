"""Sequence labeling (many-to-many, e.g. NER): CoNLL ingestion and tag schemes so far."""
