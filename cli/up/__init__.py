"""`par up`: the whole platform on one machine (registry, gateway proxy, eventing on an embedded
Kafka-compatible broker, and serving, which runs agents on demand), one process tree."""
