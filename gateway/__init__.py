"""Gateway: REST and WebSocket for players, fanned-out board streams from ranking."""
