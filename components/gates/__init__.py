"""Gates: schema anomalies and data drift, before anything trains."""
