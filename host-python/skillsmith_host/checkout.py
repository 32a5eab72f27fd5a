"""Where the host finds the files it shares with the Rust code.

The component is `target/skillsmith-sync.wasm` of a Skillsmith checkout,
byte for byte the one the Rust hosts embed; the catalogue's schema and the
store's statements are in the checkout's `migrations/shared/`. Run from a
checkout (installed or not), the host finds the checkout by walking up from
its own directory and from the working directory to a directory that holds
`target/skillsmith-sync.wasm` and `wit/world.wit`.

An installed package carries copies of the two SQL files (`setup.py` puts
them in `skillsmith_host/sql/`); they are preferred, so that an installed
host keeps working with the schema it was built against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from .errors import ComponentNotFound, HostError

BUILD_IT = "run scripts/build-component.sh in the checkout, or pass --component PATH"

COMPONENT = Path("target") / "skillsmith-sync.wasm"
WORLD = Path("wit") / "world.wit"
SHARED_SQL = Path("migrations") / "shared"
PACKAGED_SQL = Path(__file__).resolve().parent / "sql"


def _ancestors(start: Path) -> Iterator[Path]:
    start = start.resolve()
    yield start
    yield from start.parents


def find_checkout(cwd: Optional[Path] = None) -> Optional[Path]:
    """The nearest Skillsmith checkout above this package or `cwd`, if any."""
    starts = [Path(__file__).resolve().parent, cwd or Path.cwd()]
    for start in starts:
        for directory in _ancestors(start):
            if (directory / COMPONENT).is_file() and (directory / WORLD).is_file():
                return directory
    return None


def find_checkout_root(cwd: Optional[Path] = None) -> Optional[Path]:
    """Like :func:`find_checkout`, but also a checkout whose component is not built yet."""
    for start in (Path(__file__).resolve().parent, cwd or Path.cwd()):
        for directory in _ancestors(start):
            if (directory / WORLD).is_file() and (directory / SHARED_SQL).is_dir():
                return directory
    return None


def component_path(explicit: Optional[Path] = None) -> Path:
    """The component to load: `explicit` if given, else the checkout's."""
    if explicit is not None:
        if explicit.is_dir():
            raise ComponentNotFound(
                f"the sync component {explicit} is a directory, not a .wasm file",
                action="pass --component with the path of a .wasm file",
            )
        if not explicit.exists():
            raise ComponentNotFound(
                f"the sync component {explicit} does not exist",
                action="pass --component with the path of a .wasm file, or build one with "
                "scripts/build-component.sh",
            )
        return explicit
    found = find_checkout()
    if found is not None:
        return found / COMPONENT
    root = find_checkout_root()
    if root is not None:
        raise ComponentNotFound(
            f"the sync component {root / COMPONENT} has not been built; run "
            f"scripts/build-component.sh in {root} (it needs `rustup target add wasm32-wasip2`)",
            action=BUILD_IT,
        )
    raise ComponentNotFound(
        "no sync component found: this is not run from a Skillsmith checkout (no "
        f"{COMPONENT} under a directory with {WORLD}); pass --component PATH, or build it "
        "with scripts/build-component.sh in a checkout",
        action=BUILD_IT,
    )


def shared_sql(name: str) -> str:
    """The text of `migrations/shared/<name>`: the packaged copy, else the checkout's."""
    packaged = PACKAGED_SQL / name
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    root = find_checkout_root()
    if root is not None and (root / SHARED_SQL / name).is_file():
        return (root / SHARED_SQL / name).read_text(encoding="utf-8")
    raise HostError(
        f"{SHARED_SQL / name} was not found: this host was neither installed from a checkout "
        "nor run inside one; reinstall it with `pip install ./host-python` from a Skillsmith checkout"
    )
