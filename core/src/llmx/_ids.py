"""Identities of this process, for state shared with other processes."""

from __future__ import annotations

import os
import socket

ORIGIN = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
"""Who this process is, in shared state: ``host:pid:random``."""
