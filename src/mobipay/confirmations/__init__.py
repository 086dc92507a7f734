"""Secondary confirmation by SMS: an action happens only when the subscriber replies with its code."""
