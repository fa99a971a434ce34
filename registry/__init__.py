"""PAR registry component."""
