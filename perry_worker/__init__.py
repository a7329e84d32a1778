"""Perry's helper inside a workspace container.

Standard library only and Python 3.9 compatible: it runs with the image's Debian python3,
copied to /opt/perry/perry_worker and started by /usr/local/bin/perry-worker.
"""

__version__ = "0.1.0"
