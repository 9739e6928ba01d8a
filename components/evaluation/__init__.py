"""Evaluation: the one TFMA metric scaffold the tasks' metrics use."""
