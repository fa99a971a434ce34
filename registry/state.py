"""What the registry holds while it runs: settings, database, artifacts, caches, the reconciler."""

from __future__ import annotations

from dataclasses import dataclass, field

from registry.artifacts import ArtifactStore
from registry.auth import KeyCache
from registry.backends.base import DeployBackend
from registry.db import Database
from registry.readcache import ReadCache
from registry.reconciler import Reconciler
from registry.settings import RegistrySettings


@dataclass
class RegistryState:
    settings: RegistrySettings
    db: Database
    store: ArtifactStore
    backend: DeployBackend  # closed by the app; only the reconciler calls it
    keys: KeyCache = field(default_factory=KeyCache)
    reads: ReadCache = field(default_factory=lambda: ReadCache(ttl=1.0))
    reconciler: Reconciler = field(init=False)

    def __post_init__(self) -> None:
        self.reconciler = Reconciler(self.settings, self.db, self.store, self.backend)
