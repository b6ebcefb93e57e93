#!/usr/bin/env python3
"""Removes from the image's Python venv what no role of the image uses (docs/benchmarks.md,
"Image size by layer"). Run once in the Dockerfile's python stage, after pip install; prints what it
removed and how much.

Removed:
- every `tests` directory inside a package (numpy, pandas, pyarrow, pyspark, ...): the packages'
  own test suites, which nothing imports at run time (`pyspark.testing`, the user-facing helpers,
  is a different directory and stays);
- pyarrow's C++ headers and sources (`include/`, `src/`, `*.pyx`, `*.pxd`): only for compiling
  extensions against pyarrow;
- native code for other systems: DLLs, macOS libraries and Windows executables anywhere in the
  venv (debugpy ships all of them), netty's per-platform jars for another OS or CPU, and RocksDB's
  JNI libraries for other platforms inside `rocksdbjni-*.jar` (14 of them, 70 MB in one jar; the
  loader picks `linux64` or `linux-aarch64` on this image's glibc).
Kept: everything a role runs (the jars' classes, pip, jedi/debugpy's Linux parts, babel's locale
data). Signed jars are never rewritten.

Usage: slim-venv.py VENV
"""
import os
import platform
import re
import shutil
import sys
import zipfile

FOREIGN_SUFFIXES = (".dll", ".dylib", ".jnilib", ".exe", ".pdb")
# Netty's classifier and RocksDB's library name for this machine's CPU.
NETTY_ARCH = {"x86_64": "x86_64", "aarch64": "aarch_64"}
ROCKSDB_KEEP = {
    "x86_64": ("librocksdbjni-linux64.so", "librocksdbjni-linux64-musl.so"),
    "aarch64": ("librocksdbjni-linux-aarch64.so", "librocksdbjni-linux-aarch64-musl.so"),
}
NETTY_NATIVE = re.compile(r"^netty-.*-(linux|osx|windows)-([a-z0-9_]+)\.jar$")


def tree_size(path):
    if os.path.isfile(path) or os.path.islink(path):
        return os.lstat(path).st_size
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(path) for f in fs)


class Slimmer:
    def __init__(self, venv):
        self.venv = venv
        self.saved = {}

    def remove(self, path, why):
        size = tree_size(path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
        self.saved[why] = self.saved.get(why, 0) + size

    def run(self, machine):
        site = [os.path.join(d, "site-packages") for d in _lib_dirs(self.venv)]
        for root in site:
            for d, dirs, files in os.walk(root):
                for name in list(dirs):
                    # A package's test suite: `tests` below a package (a directory with
                    # __init__.py or any .py), never a top-level distribution named tests.
                    if name == "tests" and d != root:
                        self.remove(os.path.join(d, name), "package test suites")
                        dirs.remove(name)
                for name in files:
                    if name.endswith(FOREIGN_SUFFIXES):
                        self.remove(os.path.join(d, name), "Windows/macOS binaries")
            arrow = os.path.join(root, "pyarrow")
            for sub in ("include", "src"):
                if os.path.isdir(os.path.join(arrow, sub)):
                    self.remove(os.path.join(arrow, sub), "pyarrow C++ headers and sources")
            if os.path.isdir(arrow):
                for name in os.listdir(arrow):
                    if name.endswith((".pyx", ".pxd")):
                        self.remove(os.path.join(arrow, name), "pyarrow C++ headers and sources")
            jars = os.path.join(root, "pyspark", "jars")
            if os.path.isdir(jars):
                self.jars(jars, machine)

    def jars(self, jars, machine):
        for name in sorted(os.listdir(jars)):
            path = os.path.join(jars, name)
            m = NETTY_NATIVE.match(name)
            if m and (m.group(1), m.group(2)) != ("linux", NETTY_ARCH.get(machine)):
                self.remove(path, "native jars for another OS/CPU")
            elif name.startswith("rocksdbjni-") and machine in ROCKSDB_KEEP:
                self.repack(path, lambda e: e.startswith("librocksdbjni-") and e not in ROCKSDB_KEEP[machine])

    def repack(self, path, drop):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if any(n.startswith("META-INF/") and n.endswith((".SF", ".RSA", ".DSA", ".EC")) for n in names):
                return
            if not any(drop(n) for n in names):
                return
            before = os.path.getsize(path)
            tmp = path + ".slim"
            with zipfile.ZipFile(tmp, "w") as out:
                for info in z.infolist():
                    if not drop(info.filename):
                        out.writestr(info, z.read(info.filename), compress_type=info.compress_type)
        os.replace(tmp, path)
        why = "RocksDB JNI libraries for other platforms"
        self.saved[why] = self.saved.get(why, 0) + before - os.path.getsize(path)


def _lib_dirs(venv):
    lib = os.path.join(venv, "lib")
    return [os.path.join(lib, d) for d in sorted(os.listdir(lib)) if d.startswith("python")]


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: slim-venv.py VENV (a directory)")
    slim = Slimmer(sys.argv[1])
    slim.run(platform.machine())
    total = 0
    for why, size in sorted(slim.saved.items(), key=lambda kv: -kv[1]):
        print(f"slim-venv: {size / 1e6:7.1f} MB  {why}")
        total += size
    print(f"slim-venv: {total / 1e6:7.1f} MB  removed in all")


if __name__ == "__main__":
    main()
