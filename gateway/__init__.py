"""PAR gateway component."""
