"""Tourism enforcement (旅游通): officers' field app, complaint work orders, route replay, evidence."""
