"""JAX's persistent compilation cache, switched on for hdsl's programs.

Compiling the sampler is most of a small fit's wall time (tens of seconds on a loaded 2-core CPU). With
the cache on, a second process that fits the same model to data of the same shapes loads the compiled
programs from disk instead of compiling them again.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["enable_compilation_cache", "enable_compilation_cache_from_env", "CACHE_ENV", "default_cache_dir"]

CACHE_ENV = "HDSL_CACHE_DIR"
"""Environment variable naming a cache directory; when set, ``import hdsl`` turns the cache on there."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hdsl/jax`` (``~/.cache/hdsl/jax`` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hdsl" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turn on JAX's persistent compilation cache in ``path`` (created if missing) and return it.

    Every program is cached, however fast it compiled (``jax_persistent_cache_min_compile_time_secs``
    = 0) and however small (``jax_persistent_cache_min_entry_size_bytes`` = -1), because hdsl compiles
    a handful of programs per fit and even the small ones cost a second or more on a busy CPU. Takes
    effect for programs compiled afterwards, also when another directory was in use before. Entries are
    keyed by the program, its input shapes, the JAX version and the device: a model fitted to data
    with another number of rows or levels compiles again. The directory is trusted code: do not point
    it at a folder that others can write to.

    >>> import hdsl
    >>> hdsl.enable_compilation_cache("/tmp/hdsl-cache")   # doctest: +SKIP
    PosixPath('/tmp/hdsl-cache')
    """
    import jax  # here, not at import: `import hdsl` imports this module and no JAX
    from jax.experimental.compilation_cache import compilation_cache as cc

    target = Path(path).expanduser() if path is not None else default_cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    previous = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    if previous != str(target):
        cc.reset_cache()  # JAX opens its cache once per process; make it reopen at the new place
    return target


def enable_compilation_cache_from_env() -> Path | None:
    """Enable the cache in ``$HDSL_CACHE_DIR`` if that variable is set and not empty; else do nothing."""
    path = os.environ.get(CACHE_ENV)
    return enable_compilation_cache(path) if path else None
