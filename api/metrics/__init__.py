"""Metrics: logging points, series, and the live stream."""
