"""Small helpers several stages share (stdlib + numpy only, so any layer may import them)."""
