"""Cinema e-tickets: cinemas, halls and seat maps, seat locks, ticket codes checked at the venue's kiosk."""
