"""Tests of PyTorch-workflow."""
