"""`python -m skillsmith_host`: the command line (see `cli.py`)."""

import sys

try:
    from .cli import main
except ModuleNotFoundError as e:
    if e.name != "wasmtime":
        raise
    sys.stderr.write(
        "error: the wasmtime package is not installed in this Python\n"
        "  to fix: pip install ./host-python (it installs wasmtime==50.0.1), or pip install wasmtime==50.0.1\n"
    )
    raise SystemExit(1)

raise SystemExit(main())
