"""The build's one addition: bottlegen.1, the man page, generated from the command's own
argument parser by argparse-manpage (a build requirement only) and installed with the
package under share/man/man1, so that `man bottlegen` says what `bottlegen --help` says."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MAN_PAGE = "share/man/man1/bottlegen.1"


class ManPageHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        from argparse_manpage.manpage import Manpage

        sys.path.insert(0, self.root)  # bottlegen's parser, from this source tree (it imports no dependency)
        try:
            from bottlegen.cli.commands import build_parser
        finally:
            sys.path.remove(self.root)
        page = Manpage(build_parser())
        page.source = f"bottlegen {self.metadata.version}"
        page.manual = "bottlegen manual"
        out = Path(tempfile.mkdtemp(prefix="bottlegen-man-")) / "bottlegen.1"
        out.write_text(str(page), encoding="utf-8")
        build_data["shared_data"][str(out)] = MAN_PAGE
