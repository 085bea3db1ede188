"""Compilation: a validated spec becomes a layer graph (shapes known) and a training plan."""
