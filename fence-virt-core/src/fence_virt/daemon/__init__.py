"""fence_virtd: the host daemon that joins one listener plugin to one backend plugin."""
