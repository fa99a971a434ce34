"""The `par` command: the root CLI and `par up`, the whole platform on one machine.

The top of the import order (runtime < gateway, eventing < serving < registry < cli): it wires
the components together and nothing imports it. Each component keeps its own sub-commands
(`runtime.cli`, `gateway.cli`, `eventing.cli`, `registry.commands`); this package only mounts them.
"""
