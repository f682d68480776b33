"""Job queues: in-process (embedded) and arq on Redis (production)."""
