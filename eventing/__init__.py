"""PAR eventing component."""
