"""Unit tests: the domain with in-memory fakes of its ports, no I/O."""
