"""Shared test set-up: `import cift` first, so fastreid is patched before any test imports it."""
import cift  # noqa: F401
