"""detect: a Trace -> impacts and roughness. Pure vectorised functions; imports ingest's types only.

    from detect import detect, DetectorParams
    result = detect(trace)              # Detection: impacts, candidates, roughness, signals
"""

from detect.columns import Columns
from detect.params import DETECTOR_VERSION, DetectorParams
from detect.pipeline import Detection, detect

__all__ = ["DETECTOR_VERSION", "Columns", "Detection", "DetectorParams", "detect"]
