"""Perry's helper inside a workspace container.

Standard library only and Python 3.9 compatible: it runs with the image's Debian python3,
copied to /opt/perry/perry_worker and started by /usr/local/bin/perry-worker.
"""

__version__ = "0.1.0"


def source_digest() -> str:
    """A digest of this package's source files.

    The server sends the digest of its own copy with every call; a worker whose source differs
    (a workspace made by an older Perry) says so, and the server copies the current one in.
    """
    import hashlib
    import os

    root = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).replace(os.sep, "/").encode() + b"\0")
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()[:16]
