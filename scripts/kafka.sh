#!/usr/bin/env bash
# Apache Kafka's broker jars from Maven Central, for the tests' real Kafka (tests/support/kafka.py):
# `java -cp '.cache/kafka/lib/*' kafka.Kafka server.properties`. Needs Java 17+ and Maven (Debian
# packages openjdk-17-jre-headless and maven, installed here when missing). Idempotent: a second run
# only checks the stamp.
set -euo pipefail
cd "$(dirname "$0")/.."
pom=scripts/kafka-pom.xml
dest=.cache/kafka
stamp=$dest/.installed
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> Kafka for the tests needs java and mvn; installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
    echo "error: could not install ${need[*]} (java and mvn are required to fetch and run Kafka)" >&2
    exit 1
  fi
fi
if [ -f "$stamp" ] && [ "$stamp" -nt "$pom" ] && ls "$dest"/lib/kafka_2.13-*.jar >/dev/null 2>&1; then
  exit 0
fi
echo "==> fetching Apache Kafka jars (Maven) into $dest/lib"
rm -rf "$dest/lib"
mkdir -p "$dest"
mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$PWD/$dest/lib"
touch "$stamp"
