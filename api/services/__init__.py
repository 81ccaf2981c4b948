"""Commands: load a stream's view, decide with the pure rules, append with the expected version."""
