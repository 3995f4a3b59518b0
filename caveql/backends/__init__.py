"""Backends: the embedded local datastack and the real CAVE service, behind one protocol."""
