"""Optimizations: searches, tuning and their results."""
