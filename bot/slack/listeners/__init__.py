"""What acks: one module per Slack surface, each with `register(app, …services)`, and the request middleware."""
