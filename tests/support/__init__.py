"""Helpers shared by the suites that run the platform as processes (kill -9, soak)."""
