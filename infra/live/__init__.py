"""Live events: the in-process bus (embedded) and, in production, Redis."""
