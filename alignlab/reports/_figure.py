"""The one way a report writes its figure: PNG + PDF beside its data files, as one set."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from alignlab._output import write_together

__all__ = ["versions", "write_figure_set", "write_report"]


def write_figure_set(out: Path, fig: Any, files: Mapping[str, Callable[[Path], Any]], *,
                     stem: str, dpi: int = 150) -> dict[str, Path]:
    """Write ``files`` (``{name: writer}``, e.g. the CSV behind the figure) with ``fig`` as
    ``stem.png`` and ``stem.pdf`` into ``out`` as one set
    (:func:`alignlab._output.write_together`: the old set or the new one, never a mix),
    then close ``fig`` if pyplot manages it. The PDF carries no creation date, so the same
    data give the same bytes. The layout engine (constrained layout: about half the cost
    of a save) runs once, for the PNG; the PDF keeps its positions (figure coordinates,
    the same at any dpi). Returns ``{name: path}``."""
    def png(path: Path) -> None:
        fig.savefig(path, format="png", dpi=dpi)
        fig.set_layout_engine("none")  # the positions just computed stay for the PDF

    try:
        return write_together(out, {
            **files,
            f"{stem}.png": png,
            f"{stem}.pdf": lambda p: fig.savefig(p, format="pdf",
                                                 metadata={"CreationDate": None}),
        }, name="out_dir")
    finally:
        if fig.canvas.manager is not None:  # made by pyplot (a bare Figure needs no closing)
            import matplotlib.pyplot as plt

            plt.close(fig)


def write_report(out: Path, fig: Any, records: Any, settings: Mapping[str, Any], *,
                 stem: str) -> dict[str, Path]:
    """A report's four files as one set (:func:`write_figure_set`): ``stem.csv`` (the
    records), ``stem.json`` (``settings``), ``stem.png`` and ``stem.pdf``. Returns
    ``{'csv' | 'png' | 'pdf' | 'json': path}``."""
    import json

    text = json.dumps(settings, indent=2) + "\n"
    written = write_figure_set(out, fig, {
        f"{stem}.csv": records.to_csv,
        f"{stem}.json": lambda p: p.write_text(text),
    }, stem=stem)
    return {kind: written[f"{stem}.{kind}"] for kind in ("csv", "png", "pdf", "json")}


def versions() -> dict[str, str]:
    """The versions a report's settings record: alignlab, torch, numpy, python."""
    import platform

    import numpy as np
    import torch

    from alignlab import __version__

    return {"alignlab": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}
