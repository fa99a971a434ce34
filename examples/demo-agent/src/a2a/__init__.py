"""Demo agent package."""
