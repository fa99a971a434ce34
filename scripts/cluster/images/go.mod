// The two small images of scripts/cluster.sh that no module ships: the pod sandbox ("pause") and
// dev.local/par-test/hello, a minimal static HTTP server (the e2e test's Knative Service and the
// cold-start baseline). Standard library only.
module par.test/cluster-images

go 1.24.0
