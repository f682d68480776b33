"""Background movers of production data into PostgreSQL: the metric ingester."""
