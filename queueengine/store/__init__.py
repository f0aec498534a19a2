"""The Redis store (internal): scripts, keys, connections, pub/sub, argument checks, the Lua library."""
