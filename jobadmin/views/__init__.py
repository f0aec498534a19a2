"""Dashboard views: pages (GET), actions (POST), the JSON API and Prometheus metrics."""
