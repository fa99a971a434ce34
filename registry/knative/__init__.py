"""Knative's object model, as PAR writes it (Knative keeps its `pkg/apis` apart the same way).

The Services, Triggers, Brokers and tenant objects the registry applies or prints
(`manifests`, `tenancy`, `grpc_variant`, `resources`), Knative's names (`naming`), the rules its
admission webhooks enforce (`admission`) and their YAML (`yamlout`). Built from the registry's
spec types (`registry.spec`) and settings (`registry.settings`) only: nothing here imports the
database, auth, API, backends or CLI above it (tests/unit/test_layers.py).
"""
