"""Configs, pipeline assembly, runners and the `rnnflow` command line."""
