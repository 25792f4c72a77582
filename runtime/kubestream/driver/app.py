"""Loading an application: a Python file or an importable module, and its build function.

An application defines `build(ssc, args)`. A file's module is registered with
cloudpickle to be pickled by value, so executors need not have the file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

import cloudpickle

from kubestream.errors import ConfigError

BuildFn = Callable[[Any, list[str]], None]


def load_app(spec: str) -> BuildFn:
    """Resolve 'path/to/app.py[:function]' or 'package.module[:function]' (default: build)."""
    target, _, function = spec.partition(":")
    function = function or "build"
    if target.endswith(".py") or os.sep in target:
        module = _load_file(target)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"application {target!r} is neither a .py file nor an importable module ({exc})"
            ) from exc
    fn = getattr(module, function, None)
    if not callable(fn):
        raise ConfigError(
            f"application {target!r} has no function {function!r}: "
            "define build(ssc, args) or name another with APP:FUNCTION"
        )
    return fn  # type: ignore[no-any-return]


def _load_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise ConfigError(f"application file {path!r} does not exist")
    name = "kubestream_app_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"application file {path!r} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return module
