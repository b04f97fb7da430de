"""A frozen table of equal-length NumPy columns: the detector's result type (like find_peaks' properties).

Always the same columns whatever the input, empty arrays when nothing was found.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Columns:
    """Named 1-D arrays of one length. ``Columns.empty(names)`` when there are no rows."""

    data: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lengths = {k: np.shape(v)[0] for k, v in self.data.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns differ in length: {lengths}")

    @classmethod
    def empty(cls, dtypes: Mapping[str, Any]) -> Columns:
        return cls({k: np.empty(0, dtype=dt) for k, dt in dtypes.items()})

    def __len__(self) -> int:
        return int(np.shape(next(iter(self.data.values())))[0]) if self.data else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def __contains__(self, name: object) -> bool:
        return name in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    @property
    def names(self) -> list[str]:
        return list(self.data)

    def select(self, mask_or_index: np.ndarray) -> Columns:
        return Columns({k: np.asarray(v)[mask_or_index] for k, v in self.data.items()})

    def with_columns(self, **cols: np.ndarray) -> Columns:
        return Columns({**self.data, **cols})

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a dict, NumPy scalars as Python ones (NaN kept: :meth:`to_records` makes it None)."""
        cells = ((k, col[i]) for k, col in self.data.items())
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in cells}

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd  # here, not at the top: the detector and the CLI start without pandas (~0.3 s)

        return pd.DataFrame({k: np.asarray(v) for k, v in self.data.items()})

    def to_records(self, *, decimals: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
        """Rows as plain-Python dicts (NaN and inf -> None), rounding the named columns. A column at a time: a
        float column without a NaN or inf goes to Python floats in one ``tolist``."""
        decimals = decimals or {}
        cols = {}
        for k, v in self.data.items():
            arr = np.asarray(v)
            if arr.dtype.kind == "f":
                arr = np.round(arr, decimals[k]) if k in decimals else arr
                finite = np.isfinite(arr)
                values = arr.tolist()
                cols[k] = values if finite.all() else [x if f else None for x, f in zip(values, finite.tolist(),
                                                                                         strict=True)]
            else:
                cols[k] = arr.tolist()
        return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]
