"""Arrives with its issue."""
