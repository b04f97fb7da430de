"""Score detections against a simulator's ground truth (``truth.json`` written by ``bump.sim``).

Two questions, two functions, each returning a frozen result with ``to_dict()``:

- :func:`evaluate_defects` — are the *reported defects* (positions) the reportable ones in the truth?
  Greedy one-to-one matching by distance in a local tangent plane (:class:`detect.geo.LocalProjection` around the
  truth's origin): all (detection, reportable defect) pairs within ``radius_m`` are sorted by distance once and taken
  closest first, each detection and each defect at most once. Unmatched detections are false positives, broken down
  by the nearest truth defect within the radius: ``bump`` (speed_bump), ``hump``, ``joint``, ``rail``,
  ``shallow_cover`` / ``shallow_pothole`` (a cover or pothole below the reportable depth), ``other`` (an unknown
  non-reportable type), ``repaired`` (a defect repaired before ``as_of_s``), ``duplicate`` (a reportable defect
  already matched to another detection) or ``none`` (no truth defect near).
- :func:`evaluate_impacts` — are a trip's *detected impacts* (times) the passes over reportable defects?
  The truth lists impacts per wheel (FL/FR/RL/RR). A detector reports one impact per defect pass (front and rear axle
  hits are one pass), so a trip's truth impacts on one defect are grouped into ONE expected pass when consecutive hits
  are at most ``group_s`` (1.5 s) apart. A detection matches a pass when it lies within ``tol_s`` of any wheel hit of
  that pass; matching is greedy one-to-one by that |dt|, smallest first. Unmatched detections are broken down by the
  nearest (in time) truth impact on a non-reportable feature (same names as above), a non-road truth event
  (``event``: phone handling, door slam), a reportable pass already matched (``duplicate``) or ``none``. The count of
  ``kind == "pothole"`` detections on designed / harmless features, divided by the number of passes over such
  features, is the false-pothole rate on features. Reportable passes that no phone could feel are left out of
  recall and precision and listed as ``unscored``: every wheel hit of the pass grazed the defect (the truth's
  ``input_m``, the tyre's drop or rise, under 1 cm) or fell while the phone was handled, re-mounted or not recording
  (truth events ``handling``, ``remount``, ``gap``, +- 0.3 s).

Truth file::

    {"origin": {"lat", "lon"},
     "defects": [{"id", "type", "lat", "lon", "depth_m" | "height_m", "length_m", "width_m", "lateral_offset_m",
                  "direction", "reportable", "repaired_after"?}],
     "impacts": [{"trip_id", "t", "defect_id", "type", "wheel", "speed_mps", "input_m"?}],
     "trips": [{"trip_id", "device_id"}], "events": [{"trip_id", "t", "type", "duration_s"?}],
     "roads"?: [{"road_id", "iso_class", ...}],
     "passes"?: [{"trip_id", "defect_id", "t", "in_lane", "hit", "present", ...}]}

Types: pothole, cover, speed_bump, hump, joint, rail. ``reportable`` is true for potholes >= 3 cm deep and covers
sunk > 2.5 cm; when it is missing it is derived by that rule. Truth impact times are trusted as physical events
(``repaired_after`` only matters to :func:`evaluate_defects` through ``as_of_s``). Trip ids compare as strings.

Malformed files raise :class:`EvaluationInputError` (a :class:`ingest.errors.BumpError` and ``ValueError``) naming
the file, the item and what is wrong.

Modules: :mod:`~bump.evaluate.truth` (:class:`Truth`, :func:`load_truth`, the reportable rule, the false-positive
categories), :mod:`~bump.evaluate.inputs` (:func:`load_defects`, :func:`load_impacts`, checks the truth reader uses),
:mod:`~bump.evaluate.scores` (counts, precision, recall, F1 both scores share), :mod:`~bump.evaluate.defects`,
:mod:`~bump.evaluate.impacts`, :mod:`~bump.evaluate.errors`. Import from ``bump.evaluate``.
"""

from __future__ import annotations

from bump.evaluate.defects import DefectScore, evaluate_defects
from bump.evaluate.errors import EvaluationInputError
from bump.evaluate.impacts import (
    MIN_FELT_M,
    UNOBSERVED_EVENTS,
    UNOBSERVED_MARGIN_S,
    ImpactScore,
    evaluate_impacts,
    group_passes,
)
from bump.evaluate.inputs import load_defects, load_impacts
from bump.evaluate.truth import (
    COVER_MIN_SINK_M,
    DEFECT_FP_CATEGORIES,
    FEATURE_CATEGORIES,
    IMPACT_FP_CATEGORIES,
    POTHOLE_MIN_DEPTH_M,
    Truth,
    load_truth,
)

__all__ = [
    "COVER_MIN_SINK_M",
    "DEFECT_FP_CATEGORIES",
    "FEATURE_CATEGORIES",
    "IMPACT_FP_CATEGORIES",
    "MIN_FELT_M",
    "POTHOLE_MIN_DEPTH_M",
    "UNOBSERVED_EVENTS",
    "UNOBSERVED_MARGIN_S",
    "DefectScore",
    "EvaluationInputError",
    "ImpactScore",
    "Truth",
    "evaluate_defects",
    "evaluate_impacts",
    "group_passes",
    "load_defects",
    "load_impacts",
    "load_truth",
]
