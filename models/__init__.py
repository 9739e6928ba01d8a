"""Keras 3 model builders shared by every task."""
