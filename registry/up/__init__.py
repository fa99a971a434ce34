"""`par up`: the whole platform on one machine (registry, gateway proxy, eventing on an embedded
Kafka-compatible broker, and the local backend that runs agents on demand), one process tree."""
