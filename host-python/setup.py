"""Build hook: packages the shared SQL of the checkout with the host.

The catalogue's schema (`catalogue.sql`) and the store's statements
(`host_store.sql`) live in `migrations/shared/`, beside the Rust code that
they must match. A wheel built from a checkout carries copies of them, so
that an installed host does not depend on where it was installed from.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHARED = Path(__file__).resolve().parent.parent / "migrations" / "shared"
FILES = ("catalogue.sql", "host_store.sql")


class BuildWithSharedSql(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "skillsmith_host" / "sql"
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            source = SHARED / name
            if not source.is_file():
                raise SystemExit(
                    f"{source} is missing: build skillsmith-host from a Skillsmith checkout"
                )
            shutil.copyfile(source, target / name)


setup(cmdclass={"build_py": BuildWithSharedSql})
