# ernstfall's inventory of a restored file tree. Runs inside the files
# sandbox (no network, no capabilities, an unprivileged user), put there by
# the worker after the restore tool has finished; nothing from the backup
# runs. Names and tool output are data: they are only printed, as JSON.
#
#   python3 -I -S inventory.py walk ROOT
#   python3 -I -S inventory.py manifest ROOT MANIFEST [BASE]
#     (MANIFEST relative to ROOT, or absolute; its paths are relative to its
#     own folder, or to BASE when given)
#
# One JSON array per line on stdout:
#   ["f", path, size, mtime, head, entropy]   a regular file: first 32 bytes
#                                             (hex), Shannon entropy in bits
#                                             per byte of its first 8 KiB
#   ["d", path] / ["l", path] / ["o", path]   a folder / a symbolic link (never
#                                             followed) / anything else
#   ["x", path, error]                        could not be read
#   ["M", path, status]                       manifest: a listed file is
#                                             "ok", "mismatch", "missing",
#                                             "outside" (leaves ROOT) or
#                                             "unreadable"
#   ["m", error]                              the manifest itself is missing
#                                             or unreadable
#   ["e", counts]                             the last line: the work finished
# Paths are relative to ROOT, with "/"; bytes that are not UTF-8 are kept as
# surrogate escapes (JSON \udcXX).
import collections
import hashlib
import json
import math
import os
import stat
import sys

HEAD = 32
SAMPLE = 8192


def out(row):
    sys.stdout.write(json.dumps(row, ensure_ascii=True, separators=(",", ":")))
    sys.stdout.write("\n")


def name(b):
    return os.fsdecode(b)


def entropy(data):
    if not data:
        return 0.0
    n = len(data)
    h = 0.0
    for k in collections.Counter(data).values():
        p = k / n
        h -= p * math.log2(p)
    return round(h, 3)


def walk(root):
    counts = {"f": 0, "d": 0, "l": 0, "o": 0, "x": 0}
    stack = [b""]
    while stack:
        rel = stack.pop()
        path = os.path.join(root, rel) if rel else root
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as e:
            out(["x", name(rel), e.strerror or str(e)])
            counts["x"] += 1
            continue
        for e in entries:
            r = os.path.join(rel, e.name) if rel else e.name
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as err:
                out(["x", name(r), err.strerror or str(err)])
                counts["x"] += 1
                continue
            if stat.S_ISLNK(st.st_mode):
                out(["l", name(r)])
                counts["l"] += 1
            elif stat.S_ISDIR(st.st_mode):
                out(["d", name(r)])
                counts["d"] += 1
                stack.append(r)
            elif stat.S_ISREG(st.st_mode):
                try:
                    fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW)
                    try:
                        data = os.read(fd, SAMPLE)
                    finally:
                        os.close(fd)
                except OSError as err:
                    out(["x", name(r), err.strerror or str(err)])
                    counts["x"] += 1
                    continue
                out(["f", name(r), st.st_size, int(st.st_mtime), data[:HEAD].hex(), entropy(data)])
                counts["f"] += 1
            else:
                out(["o", name(r)])
                counts["o"] += 1
    return counts


def unescape(p):
    # sha256sum writes a line starting with "\" when the name holds "\" or a newline
    res = bytearray()
    i = 0
    while i < len(p):
        if p[i:i + 1] == b"\\" and i + 1 < len(p):
            nxt = p[i + 1:i + 2]
            res += b"\n" if nxt == b"n" else b"\r" if nxt == b"r" else nxt
            i += 2
        else:
            res += p[i:i + 1]
            i += 1
    return bytes(res)


def manifest(root, rel, base=None):
    real_root = os.path.realpath(root)
    mpath = os.path.join(root, rel)
    try:
        with open(mpath, "rb") as fh:
            lines = fh.read().split(b"\n")
    except OSError as e:
        out(["m", e.strerror or str(e)])
        return
    if base is None:
        base = os.path.dirname(mpath)
    for line in lines:
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        escaped = line.startswith(b"\\")
        if escaped:
            line = line[1:]
        digest, sep, listed = line.partition(b" ")
        if not sep or len(digest) != 64 or not listed:
            out(["M", name(line[:200]), "malformed"])
            continue
        listed = listed[1:] if listed[:1] in (b" ", b"*") else listed
        if escaped:
            listed = unescape(listed)
        target = os.path.realpath(os.path.join(base, listed))
        shown = name(os.path.relpath(target, real_root)) if target.startswith(real_root + b"/") else name(listed)
        if not target.startswith(real_root + b"/"):
            out(["M", shown, "outside"])
            continue
        try:
            h = hashlib.sha256()
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except FileNotFoundError:
            out(["M", shown, "missing"])
            continue
        except OSError:
            out(["M", shown, "unreadable"])
            continue
        out(["M", shown, "ok" if h.hexdigest() == digest.decode("ascii", "replace").lower() else "mismatch"])


def main():
    mode, root = sys.argv[1], os.fsencode(sys.argv[2])
    if mode == "walk":
        out(["e", walk(root)])
    elif mode == "manifest":
        manifest(root, os.fsencode(sys.argv[3]), os.fsencode(sys.argv[4]) if len(sys.argv) > 4 else None)
        out(["e", {}])
    else:
        sys.exit("unknown mode")


main()
