#!/usr/bin/python3
"""The Debian packages an image needs to run the given ELF binaries: for each shared
library a binary names (readelf's NEEDED entries), the package that owns the file
ldconfig resolves it to on this machine (dpkg -S). Their dependencies come with them
when apt installs them; the image adds only EXTRA_PACKAGES.

Used by deploy/build_image.sh (the packages it installs) and by
//tests/chart:image_test (deploy/Dockerfile must install the same list).

Usage: runtime_packages.py BINARY... ; prints one package a line, sorted. Fails (exit 1)
naming the library when ldconfig or dpkg cannot place one.
"""

import os
import re
import subprocess
import sys

# Not a library of the binaries, but what they read at run time: the zone files of the
# scheduler's cron schedules (TZ=...).
EXTRA_PACKAGES = ["tzdata"]


def _output(argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def needed_sonames(binary):
    """The NEEDED entries of one ELF file, in order."""
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _output(["readelf", "-d", binary]))


def soname_paths():
    """{soname: path} of this machine's x86-64 libraries (the first ldconfig lists)."""
    paths = {}
    for line in _output(["ldconfig", "-p"]).splitlines()[1:]:
        match = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if match and "x86-64" in match.group(2):
            paths.setdefault(match.group(1), match.group(3))
    return paths


def packages_of(paths):
    """{path: the Debian package owning it, or None}, from one dpkg -S. With usrmerge a
    file under /lib is registered under /usr/lib or the other way round: both are asked."""
    candidates = {path: [os.path.realpath(path), "/usr" + path, path] for path in paths}
    asked = sorted({c for cs in candidates.values() for c in cs})
    result = subprocess.run(["dpkg", "-S", *asked], capture_output=True, text=True)
    owner = {}
    for line in result.stdout.splitlines():
        package, path = line.split(": ", 1)
        owner[path] = package.split(":")[0]
    return {path: next((owner[c] for c in cs if c in owner), None) for path, cs in candidates.items()}


def runtime_packages(binaries):
    """The sorted package list for these binaries, plus EXTRA_PACKAGES. Raises
    LookupError naming a library that ldconfig or dpkg cannot place."""
    known = soname_paths()
    needed = sorted({soname for binary in binaries for soname in needed_sonames(binary)})
    unknown = [soname for soname in needed if soname not in known]
    if unknown:
        raise LookupError(f"libraries ldconfig does not know: {unknown}")
    owners = packages_of(known[soname] for soname in needed)
    unowned = [soname for soname in needed if owners[known[soname]] is None]
    if unowned:
        raise LookupError(f"libraries no Debian package owns: {unowned}")
    return sorted({owners[known[soname]] for soname in needed} | set(EXTRA_PACKAGES))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    try:
        print("\n".join(runtime_packages(argv[1:])))
    except (LookupError, subprocess.CalledProcessError) as error:
        sys.exit(f"runtime_packages.py: {error}")


if __name__ == "__main__":
    main(sys.argv)
