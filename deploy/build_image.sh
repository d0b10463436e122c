#!/usr/bin/env bash
# Builds the Cohort image, cohort:<version>-g<revision>, without Docker and without
# pulling anything but Debian packages, and writes it as an OCI archive:
#
#   1. the six binaries, with `bazel build --config=ci` (or taken from --binaries), and
#      the console's front end: `npm ci && npm run build` in a copy of console/web (its
#      lockfile; needs the npm registry), or taken from --assets;
#   2. a base holding only the Debian packages that deploy/runtime_packages.py derives
#      from the binaries' shared libraries: `mmdebstrap --variant=extract` (no dpkg, no
#      apt, no shell), minus documentation, locales and gconv; /var/lib/dpkg/status
#      lists the packages (for image scanners), /etc/passwd the user cohort (10001).
#      Cached as localhost/cohort-base:<hash of the package list and this recipe>;
#   3. `podman build` of deploy/Dockerfile's "image's contents" part on that base
#      (the OCI labels source, revision, version; USER 10001:10001; the front end from
#      the build context console-web, at /usr/share/cohort/console);
#   4. `podman save --format oci-archive`.
#
# The tag is reproducible: <appVersion of charts/cohort/Chart.yaml>-g<12 hex digits of
# HEAD>, with "-dirty" when tracked files differ from HEAD. Prints the tag on stdout
# (everything else goes to stderr).
#
# Usage: deploy/build_image.sh [--binaries=DIR] [--assets=DIR] [--tag=TAG] [--revision=REV]
#                              [--output=FILE.oci.tar | --no-output] [--if-missing]
#   --binaries=DIR  DIR/{broker,scheduler,executor,dev,console}/cohort-* and
#                   DIR/cli/cohortctl as built (bazel-bin/services, or a test's
#                   runfiles); skips Bazel.
#   --assets=DIR    the console's built front end (DIR/index.html); skips npm.
#   --output        default: dist/cohort-<tag>.oci.tar
#   --if-missing    do nothing when cohort:<tag> exists already (tests build once).
# Needs: podman, runc, mmdebstrap, uidmap (podman's runtime: runc with cgroupfs), and
# node/npm unless --assets is given.
set -euo pipefail
cd "$(dirname "$0")/.."

binaries="" assets="" tag="" revision="" output="" save=1 if_missing=0
for arg in "$@"; do
  case "$arg" in
    --binaries=*) binaries="${arg#*=}" ;;
    --assets=*) assets="${arg#*=}" ;;
    --tag=*) tag="${arg#*=}" ;;
    --revision=*) revision="${arg#*=}" ;;
    --output=*) output="${arg#*=}" ;;
    --no-output) save=0 ;;
    --if-missing) if_missing=1 ;;
    *) echo "build_image.sh: unknown argument ${arg%%=*} (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done

log() { echo "build_image.sh: $*" >&2; }
podman() { command podman --runtime=runc --cgroup-manager=cgroupfs "$@"; }

version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/cohort/Chart.yaml)
if [ -z "$revision" ]; then
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
fi
if [ -z "$tag" ]; then
  tag="$version-g${revision:0:12}"
  if ! git diff --quiet HEAD -- 2>/dev/null; then tag="$tag-dirty"; fi
fi
image="localhost/cohort:$tag"
if [ "$if_missing" = 1 ] && podman image exists "$image"; then
  log "$image exists"
  echo "$tag"
  exit 0
fi

# 1. The binaries and the console's front end.
if [ -z "$binaries" ]; then
  targets=(//services/broker:cohort-broker //services/scheduler:cohort-scheduler
    //services/executor:cohort-executor //services/dev:cohort-dev //services/cli:cohortctl
    //services/console:cohort-console)
  bazel build --config=ci "${targets[@]}" >&2
  binaries="$(bazel info --config=ci bazel-bin 2>/dev/null)/services"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/context"
for path in broker/cohort-broker scheduler/cohort-scheduler executor/cohort-executor dev/cohort-dev cli/cohortctl \
    console/cohort-console; do
  mkdir -p "$work/context/$(dirname "$path")"
  cp -L "$binaries/$path" "$work/context/$path"
  chmod 0755 "$work/context/$path"
done

if [ -z "$assets" ]; then
  # A copy of the sources only (no node_modules or dist; symlinks resolved), built
  # from the lockfile.
  mkdir -p "$work/web"
  (cd console/web && find . \( -path ./node_modules -o -path ./dist -o -path ./docs \) -prune -o \( -type f -o -type l \) -print) |
    while read -r f; do
      mkdir -p "$work/web/$(dirname "$f")"
      cp -L "console/web/$f" "$work/web/$f"
    done
  log "building the console's front end (npm ci, npm run build)"
  (cd "$work/web" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build) >&2
  assets="$work/web/dist"
fi
if [ ! -f "$assets/index.html" ]; then
  echo "build_image.sh: the console's front end $assets has no index.html" >&2
  exit 1
fi

# 2. The base.
# (Not a process substitution: its failure would go unseen and leave no packages.)
package_list=$(deploy/runtime_packages.py "$work"/context/*/*)
mapfile -t packages <<<"$package_list"
recipe_hash=$( { printf '%s\n' "${packages[@]}"; sed -n '/^  # --- base recipe/,/^  # --- end of base recipe/p' "$0"; } | sha256sum | cut -c1-16)
base="localhost/cohort-base:$recipe_hash"
if ! podman image exists "$base"; then
  log "making $base from ${#packages[@]} packages: ${packages[*]}"
  # --- base recipe (its text is part of the base's cache key)
  rootfs="$work/rootfs"
  # Files dated 1970 (as Bazel's image rules do): the base depends on its packages only.
  SOURCE_DATE_EPOCH=0 mmdebstrap --quiet --variant=extract --mode=root \
    --include="$(IFS=,; echo "${packages[*]}")" \
    --extract-hook='for deb in "$1"/var/cache/apt/archives/*.deb; do
        dpkg-deb --field "$deb" | sed "/^Package:/a Status: install ok installed"; echo; done > "$1/.status"' \
    bookworm "$rootfs" >&2
  # Package-manager state: only the list of packages (for image scanners).
  rm -rf "$rootfs"/var/lib/dpkg "$rootfs"/var/lib/apt "$rootfs"/var/cache/* "$rootfs"/var/log/* \
    "$rootfs"/etc/apt "$rootfs"/etc/dpkg
  mkdir -p "$rootfs"/var/lib/dpkg
  mv "$rootfs"/.status "$rootfs"/var/lib/dpkg/status
  # Not needed to run: documentation, locales, glibc's charset converters (the binaries
  # never call iconv), and debconf's perl and commands (tzdata's configuration tool).
  rm -rf "$rootfs"/usr/share/{doc,man,info,locale,lintian,bash-completion,gdb,perl5,pixmaps,debconf} \
    "$rootfs"/usr/bin "$rootfs"/usr/sbin "$rootfs"/sbin "$rootfs"/usr/lib/x86_64-linux-gnu/gconv "$rootfs"/etc/debconf.conf
  # The user of the chart's securityContext, its data directory, and ld.so's cache.
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\ncohort:x:10001:10001:cohort:/var/lib/cohort:/usr/sbin/nologin\n' \
    > "$rootfs"/etc/passwd
  printf 'root:x:0:\ncohort:x:10001:\n' > "$rootfs"/etc/group
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$rootfs"/etc/nsswitch.conf
  install -d -m 0755 -o 10001 -g 10001 "$rootfs"/var/lib/cohort
  install -d -m 1777 "$rootfs"/tmp
  ldconfig -r "$rootfs"
  tar --sort=name --mtime=@0 --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
  # --- end of base recipe
  podman import --quiet --change 'USER 10001:10001' "$work/rootfs.tar" "$base" >/dev/null
fi

# 3. The image: deploy/Dockerfile's contents part on the base.
{
  echo "FROM $base"
  sed -n '/^# The image.s contents/,$p' deploy/Dockerfile
} > "$work/Containerfile"
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
source_url=$(git config --get remote.origin.url 2>/dev/null || echo unknown)
podman build --quiet --pull=never -f "$work/Containerfile" --build-context console-web="$assets" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg SOURCE="$source_url" \
  --timestamp "$epoch" \
  -t "$image" "$work/context" >/dev/null
log "built $image ($(podman image inspect --format '{{.Size}}' "$image") bytes unpacked)"

# 4. The archive.
if [ "$save" = 1 ]; then
  output="${output:-dist/cohort-$tag.oci.tar}"
  mkdir -p "$(dirname "$output")"
  rm -f "$output"
  podman save --quiet --format oci-archive -o "$output" "$image"
  log "wrote $output ($(du -h "$output" | cut -f1))"
fi
echo "$tag"
