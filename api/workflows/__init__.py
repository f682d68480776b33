"""Workflows: registered training code."""
