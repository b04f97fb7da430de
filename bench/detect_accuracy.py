"""Per-trip accuracy of `detect.detect` on simulated scenarios, scored with `bump.evaluate.evaluate_impacts`.

For each scenario and seed (``bump simulate`` output, generated into --workdir when missing) it prints:
- recall of passes over reportable defects (one pass = the front and rear wheels of a trip over one defect),
  overall, by phone rate, by the road's ISO 8608 roughness class, and for passes where the tyre overlapped the
  hole by at least half its width; passes no phone could feel (the tyre grazed the edge and moved < 1 cm, or the
  phone was in a hand, being re-mounted or not recording) are counted apart
  (``bump.evaluate.ImpactScore.unscored``), and the recall over all passes is printed too;
- pothole-kind impacts on clean road per km driven (no truth feature or non-road event near them), and impacts of
  any kind the crews' list shows (``bump.cluster.LISTED_KINDS``: pothole, cover, unknown) there: hits that
  several drivers repeat at one spot become a false defect whatever their kind;
- why the passes missed were: no candidate near them (and how close their characteristic function came to the
  trigger threshold: its peak over the threshold, median over those passes), or the candidates' rejection reasons;
- the trigger ceiling by phone rate, pooled over the seeds of a scenario: the recall the characteristic function
  over its local background (a candidate's ``snr``) would reach with a plain threshold set where clean road
  (``CLEAN_WINDOW_S`` windows at least ``CLEAN_MARGIN_S`` from any truth hit or event) crosses it 0.05, 0.1 and
  0.3 times per km, and the false alarms per km and recall of the weak gate (``confirm_snr``) alone: what the
  statistic allows before the gates, and what the gate costs at each rate (the detector's own recall can exceed
  the ceiling: a one-wheel signature lets a weak event through);
- the share of detected impacts on speed bumps, humps, joints, rail crossings and covers labelled "pothole";
- impacts reported during phone handling, re-mounts and door slams (+- 1 s; a real hit on a road feature then is
  not counted);
- recall and false potholes per km on the same trips decimated to 25, 16.7 (Android's SENSOR_DELAY_UI), 10 and
  5 Hz (lower recall, but not zero).
IRI accuracy is printed by bench/roughness_accuracy.py. Targets (issue 4): recall >= 0.90 at 100-200 Hz and
>= 0.80 at 50 Hz; <= 0.05 false potholes per km; designed features and covers as pothole <= 5 %; no impact from
handling or door slams.

    .venv/bin/python bench/detect_accuracy.py --scenario city hard --seeds 1 2
    .venv/bin/python bench/detect_accuracy.py --scenario arterial --seeds 1 2 --no-low-rates   # 20-28 m/s
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

import ingest
from bump.cluster import LISTED_KINDS
from bump.evaluate import Truth, evaluate_impacts, load_truth
from bump.sim import generate
from bump.sim.phone import slow_phone
from bump.sim.scenario import SCENARIOS
from detect import Detection, DetectorParams, detect

TOL_S = 0.5
GROUP_S = 1.5          # wheel hits of one pass lie this close (evaluate_impacts' group_s)
LOW_RATES_HZ = (25.0, 50.0 / 3.0, 10.0, 5.0)      # every simulated rate (50, 100, 200 Hz) divides into these
FEATURES = ("speed_bump", "hump", "joint", "rail", "cover")


def _at_hit(det: Detection, t_s: float) -> tuple[float, set[str], float]:
    """At a truth wheel hit at ``t_s`` [s]: the peak of the characteristic function over the trigger threshold
    within ``TOL_S`` (>= 1 crosses it), why the candidates there were rejected ("" for an impact), and the peak
    SNR there (``Signals.snr``; -inf outside the grid)."""
    sig = det.signals
    i0, i1 = np.searchsorted(sig.t_s, (t_s - TOL_S, t_s + TOL_S))
    if i1 <= i0:
        peak, snr = float("nan"), -np.inf
    else:
        peak = float(np.max(sig.cf_mps2[i0:i1] / sig.threshold_mps2[i0:i1]))
        snr = float(np.max(sig.snr(slice(i0, i1))))
    near = np.abs(det.candidates["t_s"] - t_s) < TOL_S
    return peak, {str(r) for r in det.candidates["rejected"][near]}, snr


def _why_missed(missed: tuple, at_hits: dict) -> dict[str, float]:
    """Counts of missed passes by cause: no candidate within ``TOL_S`` of any wheel hit of the pass, or the
    candidates' rejection reasons (joined; an accepted impact there was matched to another pass); and the median
    over the passes without a candidate of the characteristic function's peak over the threshold at their hits (how
    far they were from triggering)."""
    causes: dict[str, float] = defaultdict(float, missed=float(len(missed)))
    peaks = []
    for trip, did, t_first in missed:
        hits = [h for h in at_hits[(trip, str(did))] if 0.0 <= h[0] - t_first <= GROUP_S]
        reasons = set().union(*(h[2] for h in hits)) if hits else set()
        if reasons:                         # "": an impact there, matched to another pass of the trip
            causes["missed_rejected_" + "+".join(sorted(r or "impact of another pass" for r in reasons))] += 1
        else:
            causes["missed_no_candidate"] += 1
            peaks.append(max((h[1] for h in hits), default=float("nan")))
    causes["missed_peak_over_threshold"] = float(np.nanmedian(peaks)) if np.isfinite(peaks).any() else float("nan")
    return dict(causes)


def road_classes(truth: Truth) -> dict[str, str]:
    """ISO 8608 roughness class (A smoothest ... H) of each simulated road, by road id: a rougher road lifts the
    local background the characteristic function is compared with, so a hole of the same depth stands out less."""
    return {str(r.get("road_id")): str(r.get("iso_class", "?")) for r in truth.roads}


CLEAN_WINDOW_S = 0.6       # clean road is read in windows this long ...
CLEAN_MARGIN_S = 2.5       # ... at least this far from any truth wheel hit or event, moving, without a gap
CEILING_FA_PER_KM = (0.05, 0.1, 0.3)    # false alarms per km of clean road at which the trigger ceiling is read


def clean_window_peaks(det: Detection, busy_t_s: np.ndarray, min_speed_mps: float) -> tuple[np.ndarray, float]:
    """(peak snr of each clean-road window, km those windows cover): windows of ``CLEAN_WINDOW_S`` with every
    sample valid and at >= ``min_speed_mps``, centred more than ``CLEAN_MARGIN_S`` from every time in
    ``busy_t_s`` [s] (truth wheel hits and events)."""
    sig = det.signals
    w = max(1, round(CLEAN_WINDOW_S * sig.fs_hz))
    m = sig.t_s.size // w
    speed = sig.speed_mps[:m * w].reshape(m, w)
    ok = sig.valid[:m * w].reshape(m, w).all(axis=1) & (np.nan_to_num(speed, nan=0.0).min(axis=1) >= min_speed_mps)
    t_mid = sig.t_s[:m * w].reshape(m, w).mean(axis=1)
    if busy_t_s.size:
        busy = np.sort(busy_t_s)
        k = np.clip(np.searchsorted(busy, t_mid), 1, busy.size) - 1
        near = np.minimum(np.abs(t_mid - busy[k]), np.abs(t_mid - busy[np.minimum(k + 1, busy.size - 1)]))
        ok &= near > CLEAN_MARGIN_S
    peaks = sig.snr(slice(0, m * w)).reshape(m, w).max(axis=1)[ok]
    return peaks, float(np.nansum(speed[ok].mean(axis=1)) * CLEAN_WINDOW_S / 1000.0)


def trigger_ceiling(pass_snr: np.ndarray, clean_peaks: np.ndarray, clean_km: float, gate: float
                    ) -> dict[str, float]:
    """What the detector's statistic allows, before its gates: for each rate in ``CEILING_FA_PER_KM``, the snr
    that clean road exceeds that often per km and the share of passes (their peak snr) above it; and the false
    alarms per km of clean road above ``gate`` (the weak gate) with the share of passes above it."""
    out: dict[str, float] = {}
    if clean_km <= 0.0 or pass_snr.size == 0:
        return out
    ranked = np.sort(clean_peaks)[::-1]
    for fa in CEILING_FA_PER_KM:
        k = int(fa * clean_km)
        thr = float(ranked[k]) if k < ranked.size else 0.0
        out[f"{fa:g}_snr"] = thr
        out[f"{fa:g}_recall"] = float(np.mean(pass_snr > thr))
    out["gate_fa_per_km"] = float(np.count_nonzero(clean_peaks >= gate) / clean_km)
    out["gate_recall"] = float(np.mean(pass_snr >= gate))
    return out


CeilingInputs = dict[float, tuple[np.ndarray, np.ndarray, float]]   # rate: passes' peak snr, clean peaks, clean km


def score_scenario(folder: Path, params: DetectorParams, low_rates: bool
                   ) -> tuple[dict[str, float | str], CeilingInputs]:
    """The scenario's figures, and by phone rate the inputs of :func:`trigger_ceiling` (pooled over seeds)."""
    truth = load_truth(folder / "truth.json")
    defects = {d["id"]: d for d in truth.defects}
    trips = {t["trip_id"]: t for t in truth.trips}
    impacts: dict[str, list[dict]] = {}
    impacts_low: dict[float, dict[str, list[dict]]] = {rate: {} for rate in LOW_RATES_HZ}
    feature_hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    at_hits: dict[tuple[str, str], list[tuple[float, float, set[str], float]]] = defaultdict(list)
    events_reported = 0
    clean: dict[float, list[tuple[np.ndarray, float]]] = defaultdict(list)    # by rate: clean-road window peaks, km
    for path in sorted((folder / "trips").glob("*.json.gz")):
        trace = ingest.read(path)
        det = detect(trace, params)
        rows = [{"t": float(t), "kind": str(k)} for t, k in zip(det.impacts["t_s"], det.impacts["kind"], strict=True)]
        impacts[trace.trip_id] = rows
        t_det = det.impacts["t_s"]
        mine = [i for i in truth.impacts if i["trip_id"] == trace.trip_id]
        for imp in mine:                                                        # loop over the trip's truth hits
            kind = defects[imp["defect_id"]]["type"]
            if kind in FEATURES and not (kind == "cover" and defects[imp["defect_id"]]["reportable"]):
                near = np.flatnonzero(np.abs(t_det - float(imp["t"])) < TOL_S)
                if near.size:
                    feature_hits[kind][0] += 1
                    feature_hits[kind][1] += int(np.any(det.impacts["kind"][near] == "pothole"))
        for imp in (i for i in mine if defects[i["defect_id"]]["reportable"]):
            at_hits[(trace.trip_id, str(imp["defect_id"]))].append((float(imp["t"]), *_at_hit(det, float(imp["t"]))))
        road_t = np.array([float(i["t"]) for i in mine])
        busy = np.concatenate([road_t, [float(e["t"]) for e in truth.events if e["trip_id"] == trace.trip_id]])
        clean[float(trips[trace.trip_id]["fs_hz"])].append(clean_window_peaks(det, busy, params.min_speed_mps))
        on_road = (np.abs(t_det[:, None] - road_t[None, :]) < TOL_S).any(axis=1) if road_t.size else \
            np.zeros(t_det.size, dtype=bool)
        for ev in (e for e in truth.events if e["trip_id"] == trace.trip_id and e["type"] != "gap"):
            t0, t1 = float(ev["t"]) - 1.0, float(ev["t"]) + float(ev.get("duration_s", 0.0)) + 1.0
            events_reported += int(np.count_nonzero((t_det > t0) & (t_det < t1) & ~on_road))
        if low_rates:
            for rate in impacts_low:
                low = detect(slow_phone(trace, rate), params)
                impacts_low[rate][trace.trip_id] = [{"t": float(t), "kind": str(k)} for t, k in
                                                    zip(low.impacts["t_s"], low.impacts["kind"], strict=True)]
    score = evaluate_impacts(truth, impacts, None, tol_s=TOL_S, group_s=GROUP_S)
    # recall by phone rate and by overlap, over the scored passes (matched or missed)
    overlap = {(str(i["trip_id"]), str(i["defect_id"])): max(float(i.get("overlap", 1.0)), 0.0)
               for i in truth.impacts}
    outcomes = [(m[0], str(m[2]), True) for m in score.matches] + [(m[0], str(m[1]), False) for m in score.missed]
    by_rate: dict[float, list[bool]] = defaultdict(list)
    by_road: dict[str, list[bool]] = defaultdict(list)
    wide: list[bool] = []
    road_class = road_classes(truth)
    for trip, did, hit in outcomes:
        by_rate[float(trips[trip]["fs_hz"])].append(hit)
        by_road[road_class.get(str(defects.get(did, {}).get("road_id")), "?")].append(hit)
        if overlap.get((trip, did), 1.0) >= 0.5:
            wide.append(hit)
    out_missed = _why_missed(score.missed, at_hits)
    n_all = score.n_passes + len(score.unscored)
    km = sum(float(t.get("length_m", 0.0)) for t in truth.trips) / 1000.0
    out: dict[str, float | str] = {
        "scenario": folder.name, "passes": score.n_passes, "recall": score.recall,
        "unscored": float(len(score.unscored)),
        "recall_all_passes": (score.tp + sum(u[3] for u in score.unscored)) / n_all if n_all else float("nan"),
        "recall_overlap_ge_half": float(np.mean(wide)) if wide else float("nan"),
        "false_potholes_per_km": score.pothole_fp_by_kind.get("none", 0) / km if km else float("nan"),
        "false_listed_per_km": (sum(1 for f in score.false_positives if f[4] == "none" and f[3] in LISTED_KINDS)
                                / km if km else float("nan")),
        "km": km, "handling_or_door_slam_impacts": float(events_reported), **out_missed,
    }
    ceiling: CeilingInputs = {}
    for rate, hits in sorted(by_rate.items()):
        out[f"recall_{rate:g}Hz"] = float(np.mean(hits))
        scored = np.array([max(h[3] for h in at_hits[(trip, did)]) for trip, did, _ in outcomes
                           if float(trips[trip]["fs_hz"]) == rate])
        peaks = np.concatenate([p for p, _ in clean[rate]]) if clean[rate] else np.empty(0)
        ceiling[rate] = (scored, peaks, sum(k for _, k in clean[rate]))
    for iso, hits in sorted(by_road.items()):
        out[f"road_{iso}_recall"] = float(np.mean(hits))
        out[f"road_{iso}_passes"] = float(len(hits))
    for kind in FEATURES:
        n, pot = feature_hits[kind]
        out[f"{kind}_as_pothole"] = pot / n if n else float("nan")
    if low_rates:
        for rate, imps in impacts_low.items():
            low_score = evaluate_impacts(truth, imps, None, tol_s=1.0)
            out[f"recall_decimated_{rate:.3g}Hz"] = low_score.recall
            out[f"fp_per_km_decimated_{rate:.3g}Hz"] = low_score.pothole_fp_by_kind.get("none", 0) / km
    return out, ceiling


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", nargs="+", default=["city", "hard"], choices=sorted(SCENARIOS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "bump-detect-accuracy"))
    ap.add_argument("--no-low-rates", action="store_true", help="skip the decimated runs (25 Hz and below)")
    ap.add_argument("--params", metavar="JSON", help='DetectorParams fields to change, as a JSON object, e.g. '
                    '\'{"bump_velocity_mps": 0.35}\' (how sensitive the figures are to one rule)')
    args = ap.parse_args()
    try:
        params = DetectorParams.from_dict(json.loads(args.params)) if args.params else DetectorParams()
    except ValueError as exc:                  # bad JSON, or a field out of range (ParamsError names it)
        ap.error(f"--params: {exc}")
    print(f"detector {params.version} ({params.digest()}); impacts matched to truth passes within {TOL_S} s")
    for scenario in args.scenario:
        pooled: dict[float, list[tuple[np.ndarray, np.ndarray, float]]] = defaultdict(list)    # rate: seeds'
        for seed in args.seeds:
            folder = Path(args.workdir) / f"{scenario}-{seed}"
            if not (folder / "truth.json").exists():
                generate(scenario, seed, folder)
            r, ceiling = score_scenario(folder, params, not args.no_low_rates)
            for rate, inputs in ceiling.items():
                pooled[rate].append(inputs)
            rates = "  ".join(f"{k[7:]} {v:.3f}" for k, v in r.items() if k.startswith("recall_") and k[7].isdigit())
            feats = "  ".join(f"{k[:-11]} {v:.3f}" for k, v in r.items() if k.endswith("_as_pothole"))
            print(f"\n{scenario} seed {seed}: {r['passes']} passes over reportable defects a phone could feel "
                  f"(+{r['unscored']:.0f} grazed or while the phone was handled or not recording), {r['km']:.1f} km")
            print(f"  recall {r['recall']:.3f}  (by rate: {rates})  overlap >= 0.5: {r['recall_overlap_ge_half']:.3f}"
                  f"  all passes incl. unfelt: {r['recall_all_passes']:.3f}")
            roads = "  ".join(f"{k[5:-7]} {v:.3f} ({r[k[:-7] + '_passes']:.0f})" for k, v in r.items()
                              if k.startswith("road_") and k.endswith("_recall"))
            print(f"  recall by the road's ISO 8608 class (passes): {roads}")
            rejected = sorted(((k[16:], v) for k, v in r.items() if k.startswith("missed_rejected_")),
                              key=lambda kv: -float(kv[1]))
            why = ", ".join(f"{reason} {n:.0f}" for reason, n in rejected)
            none = r.get("missed_no_candidate", 0.0)
            peak = (f" (their characteristic function peaked at a median {r['missed_peak_over_threshold']:.2f} of "
                    "the trigger threshold)" if none else "")
            print(f"  missed {r['missed']:.0f}: no candidate {none:.0f}{peak}{', rejected: ' + why if why else ''}")
            print(f"  false potholes on clean road: {r['false_potholes_per_km']:.3f} per km; of any kind the crews' "
                  f"list shows ({', '.join(LISTED_KINDS)}): {r['false_listed_per_km']:.3f} per km")
            print(f"  designed features / covers labelled pothole (share of their detected hits): {feats}")
            print(f"  impacts during handling, re-mounts and door slams: {r['handling_or_door_slam_impacts']:.0f}")
            if not args.no_low_rates:
                low = ", ".join(f"{rate:.3g} Hz recall {r[f'recall_decimated_{rate:.3g}Hz']:.3f} "
                                f"({r[f'fp_per_km_decimated_{rate:.3g}Hz']:.3f} false potholes/km)"
                                for rate in LOW_RATES_HZ)
                print(f"  decimated: {low}")
        seeds = " ".join(map(str, args.seeds))
        print(f"\n{scenario}, seeds {seeds} pooled: trigger ceiling (recall of passes at false alarms per km of "
              "clean road, before the gates)")
        for rate, seeds_inputs in sorted(pooled.items()):
            passes, peaks, kms = zip(*seeds_inputs, strict=True)
            km = sum(kms)
            c = trigger_ceiling(np.concatenate(passes), np.concatenate(peaks), km, params.confirm_snr)
            if c:
                at = "  ".join(f"{fa:g}/km: snr {c[f'{fa:g}_snr']:.2f} recall {c[f'{fa:g}_recall']:.3f}"
                               for fa in CEILING_FA_PER_KM)
                print(f"  {rate:g} Hz ({sum(p.size for p in passes)} passes, {km:.0f} km of clean road)  {at};  the "
                      f"weak gate (snr {params.confirm_snr:g}): {c['gate_fa_per_km']:.3f}/km, recall "
                      f"{c['gate_recall']:.3f}")


if __name__ == "__main__":
    main()
