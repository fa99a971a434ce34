"""PAR runtime component."""
