"""The web UI: a dashboard at ``/`` and GraphiQL's page, served from files inside this package."""
