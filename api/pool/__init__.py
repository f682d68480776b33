"""The executor pool."""
