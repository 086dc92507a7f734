"""Platform: typed settings, database and unit of work, outbox, observability, bootstrap."""
