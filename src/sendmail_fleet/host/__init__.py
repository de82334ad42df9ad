"""Helpers that run on the VPSes themselves: standard library only."""
