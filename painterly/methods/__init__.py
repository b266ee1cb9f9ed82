"""Methods: each a frozen config dataclass plus a thin run() over the shared parts."""
