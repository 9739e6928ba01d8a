"""Serving: validation against the model server, clients, batch scoring, the atomic Pusher."""
