"""Matplotlib drawing helpers of :mod:`bump.replay`: the detector's stages on one time axis, and the trip's map.

Functions take the replay's DataFrames (time index: seconds since the trip's first accelerometer sample) and
return a :class:`matplotlib.figure.Figure`. Every artist that marks an event carries a ``gid`` (see the ``GID_*``
constants) so that tests and notebooks can find it: ``[a for a in ax.get_children() if a.get_gid() == GID_IMPACT]``.

Figures are made with pyplot and closed before they are returned: they stay usable (``fig.savefig``, display in a
notebook) without piling up in pyplot's state. matplotlib is imported lazily, so ``import bump`` stays light.
Long traces are drawn through a min/max envelope (:func:`envelope`), which keeps every peak visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

KIND_COLORS: dict[str, str] = {
    "pothole": "#d62728", "speed_bump": "#ff7f0e", "joint": "#1f77b4", "cover": "#9467bd", "rough": "#8c564b",
    "unknown": "#7f7f7f",
}
REJECTED_COLOR = "#b0b0b0"
GID_IMPACT = "impact-marker"         # one per accepted impact (stage figure: on the cf axis; map: one scatter point)
GID_IMPACT_LINE = "impact-line"      # vertical line of an accepted impact, on every stage axis
GID_IMPACT_LABEL = "impact-label"    # text naming the kind of an accepted impact
GID_REJECTED = "rejected-marker"     # one per rejected candidate, greyed, on the cf axis
GID_SCORE = "axle-score"             # the axle-paired score at the threshold's scale, on the cf axis
GID_GAP = "gap"                      # shaded gap in the input (no event can start inside)
GID_TRACK = "track"                  # the GPS track on the map
GID_ROUGHNESS = "roughness"          # track segments coloured by IRI
GID_NO_GPS = "no-gps"                # the notice on the map of a trip without GPS
STAGE_LABELS = ("raw", "oriented", "filtered", "characteristic", "speed")   # one axis each, top to bottom
MAX_POINTS = 20_000                  # per drawn line; more samples are drawn through their min/max envelope


MATPLOTLIB_HINT = "pip install matplotlib (a dependency of bump: `pip install -e .` in the repository installs it)"


def require_matplotlib() -> None:
    """Raise ImportError with the install command when matplotlib cannot be imported."""
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"bump's plots need matplotlib, which cannot be imported ({exc}); {MATPLOTLIB_HINT}",
                          name="matplotlib") from exc


def kind_color(kind: str) -> str:
    return KIND_COLORS.get(str(kind), KIND_COLORS["unknown"])


def envelope(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ~``max_points`` points tracing the min and max of ``y`` per bucket of ``x`` (display only).

    NaN stays NaN where a whole bucket is NaN, so gaps remain visible.
    """
    n = x.size
    if n <= max_points:
        return x, y
    per = int(np.ceil(2 * n / max_points))
    m = n // per
    xb = x[: m * per].reshape(m, per)
    yb = y[: m * per].reshape(m, per)
    all_nan = np.all(np.isnan(yb), axis=1)
    fill = np.where(np.isnan(yb), 0.0, yb)
    lo = np.where(all_nan, np.nan, np.min(np.where(np.isnan(yb), np.inf, fill), axis=1))
    hi = np.where(all_nan, np.nan, np.max(np.where(np.isnan(yb), -np.inf, fill), axis=1))
    xs = np.column_stack([xb[:, 0], xb[:, per // 2]]).ravel()
    ys = np.column_stack([lo, hi]).ravel()
    return np.concatenate([xs, x[m * per:]]), np.concatenate([ys, y[m * per:]])


def _window(frame: pd.DataFrame, start_s: float, end_s: float, pad: int = 1) -> pd.DataFrame:
    """Rows of a time-indexed frame within [start_s, end_s], plus ``pad`` rows either side (lines reach the edges)."""
    t = frame.index.to_numpy()
    i0 = max(int(np.searchsorted(t, start_s, side="left")) - pad, 0)
    i1 = min(int(np.searchsorted(t, end_s, side="right")) + pad, t.size)
    return frame.iloc[i0:i1]


def _line(ax: Axes, frame: pd.DataFrame, column: str, **kw: object) -> None:
    x, y = envelope(frame.index.to_numpy(dtype=float), frame[column].to_numpy(dtype=float))
    ax.plot(x, y, **kw)


def _gap_spans(valid: pd.Series) -> list[tuple[float, float]]:
    """(start, end) seconds of each run of invalid grid samples."""
    bad = ~valid.to_numpy(dtype=bool)
    if not bad.any():
        return []
    edges = np.diff(np.concatenate(([0], bad.astype(np.int8), [0])))
    t = valid.index.to_numpy(dtype=float)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(t[starts].tolist(), t[stops].tolist(), strict=True))


def _in_range(frame: pd.DataFrame, start_s: float, end_s: float) -> pd.DataFrame:
    t = frame.index.to_numpy(dtype=float)
    return frame[(t >= start_s) & (t <= end_s)]


def stage_figure(*, raw: pd.DataFrame, oriented: pd.DataFrame, filtered: pd.DataFrame,
                 characteristic: pd.DataFrame, speed: pd.DataFrame, candidates: pd.DataFrame,
                 impacts: pd.DataFrame, confirm_score: float, start_s: float, end_s: float, title: str = "",
                 figsize: tuple[float, float] = (12.0, 10.0)) -> Figure:
    """Five stacked axes sharing x over [start_s, end_s]: raw |a|, oriented axes, impact and body bands,
    the triggers (log y), speed. The triggers' axis draws the characteristic function with its threshold and the
    axle-paired score at the threshold's scale (``score / confirm_score x threshold``): each trigger fires where
    its line crosses the threshold's. Accepted impacts: a line on every axis, a marker at the cf peak and the kind
    written above it; rejected candidates: grey marker and reason.
    """
    require_matplotlib()
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    fig, axes = plt.subplots(len(STAGE_LABELS), 1, sharex=True, figsize=figsize, constrained_layout=True)
    plt.close(fig)
    ax_raw, ax_ori, ax_filt, ax_cf, ax_v = axes
    for ax, label in zip(axes, STAGE_LABELS, strict=True):
        ax.set_label(label)

    raw_w = _window(raw, start_s, end_s)
    _line(ax_raw, raw_w, "norm_mps2", color="0.35", lw=0.7, label="|a| phone")
    ax_raw.set_ylabel("raw |a| [m/s²]")

    ori_w = _window(oriented, start_s, end_s)
    _line(ax_ori, ori_w, "a_up_mps2", color="C0", lw=0.8, label="up")
    _line(ax_ori, ori_w, "a_forward_mps2", color="C1", lw=0.6, alpha=0.7, label="forward")
    _line(ax_ori, ori_w, "a_left_mps2", color="C2", lw=0.6, alpha=0.7, label="left")
    ax_ori.set_ylabel("oriented [m/s²]")

    filt_w = _window(filtered, start_s, end_s)
    _line(ax_filt, filt_w, "a_impact_mps2", color="C0", lw=0.8, label="impact band")
    _line(ax_filt, filt_w, "a_body_mps2", color="C3", lw=1.4, label="body band")
    ax_filt.set_ylabel("filtered up [m/s²]")

    cf_w = _window(characteristic, start_s, end_s)
    positive = cf_w.where(cf_w > 0)            # zeros (gaps) are not drawn on the log axis
    _line(ax_cf, positive, "cf_mps2", color="k", lw=0.8, label="cf")
    _line(ax_cf, positive, "threshold_mps2", color="C3", lw=1.0, ls="--", label="threshold")
    _line(ax_cf, positive, "background_mps2", color="0.5", lw=0.8, ls=":", label="background")
    scaled = (positive["score"] / confirm_score * positive["threshold_mps2"]).to_frame("score_at_threshold")
    _line(ax_cf, scaled, "score_at_threshold", color="C4", lw=0.8, alpha=0.8, label="axle score (at threshold)",
          gid=GID_SCORE)
    if np.isfinite(positive["cf_mps2"].to_numpy(dtype=float)).any():
        ax_cf.set_yscale("log")
    ax_cf.set_ylabel("cf [m/s² RMS]")

    v_w = _window(speed, start_s, end_s)
    _line(ax_v, v_w, "speed_mps", color="C2", lw=1.0, label="GPS speed")
    ax_v.set_ylabel("speed [m/s]")
    ax_v.set_xlabel("time since trip start [s]")
    if not np.isfinite(v_w["speed_mps"].to_numpy(dtype=float)).any():
        ax_v.text(0.5, 0.5, "no GPS speed", transform=ax_v.transAxes, ha="center", va="center", color="0.4")

    for t0, t1 in _gap_spans(_window(oriented["valid"].to_frame(), start_s, end_s)["valid"]):
        for ax in axes:
            ax.axvspan(t0, t1, color="0.85", alpha=0.6, lw=0, gid=GID_GAP)

    top = blended_transform_factory(ax_cf.transData, ax_cf.transAxes)
    rejected = _in_range(candidates[candidates["rejected"] != ""], start_s, end_s)
    for t, row in rejected.iterrows():                                  # loop over events
        ax_cf.axvline(t, color=REJECTED_COLOR, lw=0.8, ls="--")
        ax_cf.plot([row["t_peak_trip_s"]], [row["cf_peak_mps2"]], "x", color=REJECTED_COLOR, ms=7,
                   gid=GID_REJECTED)
        ax_cf.text(t, 0.02, str(row["rejected"]), transform=top, rotation=90, fontsize=7, color=REJECTED_COLOR,
                   ha="right", va="bottom")
    for t, row in _in_range(impacts, start_s, end_s).iterrows():         # loop over events
        color = kind_color(row["kind"])
        for ax in axes:
            ax.axvline(t, color=color, lw=1.0, alpha=0.8, gid=GID_IMPACT_LINE)
        ax_cf.plot([row["t_peak_trip_s"]], [row["cf_peak_mps2"]], "v", color=color, ms=8, mec="k", mew=0.5,
                   gid=GID_IMPACT)
        ax_cf.text(t, 0.98, f" {row['kind']} {row['severity']:.1f}", transform=top, fontsize=8, color=color,
                   ha="left", va="top", gid=GID_IMPACT_LABEL)

    for ax in axes:
        ax.grid(True, lw=0.3, alpha=0.5)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)   # off the data
    ax_v.set_xlim(start_s, end_s)
    if title:
        fig.suptitle(title)
    return fig


def _segment_values(t_s: np.ndarray, win_start_s: np.ndarray, win_end_s: np.ndarray,
                    value: np.ndarray) -> np.ndarray:
    """Value of the window holding the midpoint of each segment between consecutive times ``t_s`` (NaN if none)."""
    mid = 0.5 * (t_s[:-1] + t_s[1:])
    if win_start_s.size == 0:
        return np.full(mid.size, np.nan)
    k = np.searchsorted(win_start_s, mid, side="right") - 1
    kc = np.clip(k, 0, win_start_s.size - 1)
    inside = (k >= 0) & (mid <= win_end_s[kc])
    return np.where(inside, value[kc], np.nan)


def map_figure(*, gps: pd.DataFrame, impacts: pd.DataFrame, roughness: pd.DataFrame, show_roughness: bool = True,
               title: str = "", figsize: tuple[float, float] = (8.0, 8.0)) -> Figure:
    """The GPS track in local metres (east, north of the first fix; equal aspect), impacts coloured by kind with a
    legend, and track segments coloured by the IRI of their roughness window (``show_roughness``). A trip
    without GPS gets an empty map saying so.
    """
    require_matplotlib()
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    plt.close(fig)
    ax.set_label("map")
    if title:
        ax.set_title(title)
    if gps.empty:
        ax.text(0.5, 0.5, "no GPS in this trip: nothing to map", transform=ax.transAxes, ha="center",
                va="center", color="0.3", gid=GID_NO_GPS)
        ax.set_axis_off()
        return fig

    east, north = gps["east_m"].to_numpy(dtype=float), gps["north_m"].to_numpy(dtype=float)
    ax.plot(east, north, color="0.6", lw=1.0, gid=GID_TRACK, label="track", zorder=1)
    ax.plot(east[:1], north[:1], "o", color="0.2", ms=6, label="start", zorder=2)

    iri = roughness["iri_m_per_km"].to_numpy(dtype=float) if "iri_m_per_km" in roughness else np.empty(0)
    if show_roughness and np.isfinite(iri).any() and east.size >= 2:
        seg_iri = _segment_values(gps.index.to_numpy(dtype=float), roughness.index.to_numpy(dtype=float),
                                  roughness["t_end_trip_s"].to_numpy(dtype=float), iri)
        ok = np.isfinite(seg_iri)
        pts = np.column_stack([east, north])
        segs = np.stack([pts[:-1], pts[1:]], axis=1)[ok]
        lc = LineCollection(segs, cmap="RdYlGn_r", linewidths=4.0, gid=GID_ROUGHNESS, zorder=1.5)
        lc.set_array(seg_iri[ok])
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, label="IRI [m/km]", shrink=0.7)

    placed = impacts[np.isfinite(impacts["east_m"].to_numpy(dtype=float))] if len(impacts) else impacts
    for kind, group in placed.groupby("kind", sort=True) if len(placed) else ():    # loop over kinds
        ax.scatter(group["east_m"], group["north_m"], s=60, color=kind_color(kind), edgecolors="k",
                   linewidths=0.6, label=f"{kind} ({len(group)})", gid=GID_IMPACT, zorder=3)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("east [m]")
    ax.set_ylabel("north [m]")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(loc="best", fontsize=8)
    return fig
