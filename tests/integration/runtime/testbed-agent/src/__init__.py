"""Testbed agent."""
