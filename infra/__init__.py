"""Adapters that implement the domain's ports: storage, live events, job queues, settings and wiring."""
