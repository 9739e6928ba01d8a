"""TFX user modules (preprocessing_fn, run_fn) and custom components, one package per task."""
