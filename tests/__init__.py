"""Cross-distribution tests (a package, so its ``conftest`` never shadows another one's)."""
