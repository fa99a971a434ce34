"""Deploy backends: where agents run. The interface is `registry.backends.base.DeployBackend`."""
