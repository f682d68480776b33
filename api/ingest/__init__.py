"""The bulk metric ingest endpoint of tracking clients: ``POST /api/runs/{id}/metrics`` with columns."""
