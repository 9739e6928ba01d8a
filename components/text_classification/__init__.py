"""Text classification (many-to-one): task, preprocessing_fn, run_fn and export."""
