"""Status rules (single-device rule, confirmation, likely_repaired, crews' decisions, history) and priority."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_store import DAY_S, POTHOLE, T0_S, add_trip, fake_detection, store  # noqa: F401  (fixture)

from bump import lifecycle, pipeline, views
from bump.cluster import DefectParams
from bump.lifecycle import InvalidStatusError, Replay, evaluate_status, replay_passes, status_timeline
from bump.priority import priority
from bump.store import StoreError

P = DefectParams()


def _status(store) -> str:  # noqa: F811
    d = store.all_defects()
    assert len(d) == 1
    return str(d["status"][0])


def _confirmed(store) -> None:  # noqa: F811
    for k, dev in enumerate(["a", "b", "c"]):
        add_trip(store, f"hit{k}", dev, T0_S + k * DAY_S, [POTHOLE])
    assert _status(store) == "confirmed"


# ----------------------------------------------------------------------------------------- the timeline alone


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80), rate=st.sampled_from([0.1, 0.3, 0.6]),
       start=st.sampled_from([None, "confirmed", "repaired"]))
def test_a_replay_resumed_pass_by_pass_is_the_whole_replay(seed, n, rate, start) -> None:
    rng = np.random.default_rng(seed)
    t = T0_S + np.arange(n) * 3600.0
    trip = np.array([f"t{k:03d}" for k in range(n)])
    dev = np.array([f"d{k}" for k in rng.integers(0, 5, n)])
    hit = rng.random(n) < np.where(np.arange(n) < n // 2, rate, rate / 3)     # fewer hits later: streaks of misses
    cuts = rng.integers(1, max(n, 2), rng.integers(0, 8))
    crew = (start, T0_S - 1.0) if start else (None, None)
    whole, whole_state = replay_passes(t, trip, dev, hit, P, start=start, crew=crew)
    assert whole == status_timeline(t, trip, dev, hit, P, start=start)
    resumed, state = [], None
    bounds = [0, *sorted({int(c) for c in cuts if c < n}), n]
    for a, b in itertools.pairwise(bounds):
        if state is not None:
            assert state.resumes(t[a], trip[a], crew, P)
        out, state = replay_passes(t[a:b], trip[a:b], dev[a:b], hit[a:b], P, start=start, resume=state, crew=crew)
        state = Replay.from_json(state.to_json())              # through the database
        resumed += out
    assert resumed == whole and state == whole_state
    # a pass before the last one replayed, other rules or another crew decision cannot resume it
    assert not state.resumes(t[-1], trip[-1], crew, P)
    assert not state.resumes(t[-1] + 1.0, "z", crew, DefectParams(confirm_devices=4))
    assert not state.resumes(t[-1] + 1.0, "z", ("dismissed", T0_S), P)


@pytest.mark.parametrize("n", [1, 3, 32, 33, 200])          # a few passes are ordered in Python, many by NumPy
def test_passes_are_replayed_by_time_then_trip_as_one_lexsort_orders_them(n: int) -> None:
    rng = np.random.default_rng(n)
    t = T0_S + rng.integers(0, max(n // 3, 1), n) * 60.0       # many equal times: the trip id decides
    trip = np.array([f"t{k}" for k in rng.integers(0, max(n // 2, 1), n)])   # equal (time, trip): given order
    dev = np.array([f"d{k}" for k in range(n)])
    hit = rng.random(n) < 0.5
    order = np.lexsort((trip, t))
    want = list(zip(t[order].tolist(), trip[order].tolist(), dev[order].tolist(), hit[order].tolist(), strict=True))
    assert lifecycle._time_ordered(t, trip, dev, hit) == want
    assert lifecycle._time_ordered(t.tolist(), trip.tolist(), dev.tolist(), hit.astype(int).tolist()) == want
    # lists or arrays, one replay
    as_lists = replay_passes(t.tolist(), trip.tolist(), dev.tolist(), hit.tolist(), P)
    assert as_lists == replay_passes(t, trip, dev, hit, P)


def test_a_pass_without_a_time_is_ordered_as_numpy_orders_it() -> None:
    t, trip = np.array([T0_S + 5.0, np.nan, T0_S]), np.array(["a", "b", "c"])
    got = lifecycle._time_ordered(t, trip, np.array(["x", "y", "z"]), np.array([1, 0, 1]))
    assert [r[1] for r in got] == ["c", "a", "b"]                               # NaN last


def test_a_replay_made_fast_is_the_dataclass_made_by_hand() -> None:
    fields = dict(state="confirmed", devices=("a", "b"), n_pass=7, n_hit=3, n_clean=2, clean_devices=("c",),
                  last=(T0_S, "t9"), crew=("repaired", T0_S - 5.0), params=P.digest())
    fast, slow = lifecycle._replay(**fields), Replay(**fields)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert Replay.from_json(slow.to_json()) == slow and fast.to_json() == slow.to_json()
    with pytest.raises(AttributeError):                    # frozen still
        fast.n_pass = 8  # type: ignore[misc]


def test_timeline_does_not_depend_on_upload_order() -> None:
    rng = np.random.default_rng(0)
    t = T0_S + np.arange(12) * DAY_S
    trip = np.array([f"t{k}" for k in range(12)])
    dev = np.array(["a", "b", "a", "c", "b", "a", "b", "c", "a", "b", "c", "a"])
    hit = np.array([1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    ref = status_timeline(t, trip, dev, hit, P)
    for _ in range(5):
        p = rng.permutation(12)
        assert status_timeline(t[p], trip[p], dev[p], hit[p], P) == ref
    assert [tr.to_status for tr in ref] == ["candidate", "confirmed", "likely_repaired"]
    assert ref[1].t_s == t[3]                      # the third device's hit confirms
    assert ref[2].t_s == t[9]                      # the fifth clean pass after the last hit (from >= 2 devices)


def test_one_device_never_confirms() -> None:
    n = 20
    res = evaluate_status(T0_S + np.arange(n) * DAY_S, np.array([f"t{k}" for k in range(n)]), np.full(n, "a"),
                          np.ones(n, bool), P)
    assert res.status == "candidate"
    with pytest.raises(ValueError, match="one device"):
        DefectParams(confirm_devices=1)


def test_clean_passes_from_one_device_do_not_repair() -> None:
    t = T0_S + np.arange(9) * DAY_S
    trip = np.array([f"t{k}" for k in range(9)])
    dev = np.array(["a", "b", "c", "d", "d", "d", "d", "d", "d"])
    hit = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    assert evaluate_status(t, trip, dev, hit, P).status == "confirmed"
    dev[-1] = "e"
    assert evaluate_status(t, trip, dev, hit, P).status == "likely_repaired"


def test_a_rarely_hit_pothole_needs_a_longer_clean_streak_to_look_repaired() -> None:
    # hit on 3 of the 15 passes after its first hit (the wheels often miss a narrow pothole), then clean passes
    pattern = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1] + [0] * 25
    n = len(pattern)
    t, trip = T0_S + np.arange(n) * DAY_S, np.array([f"t{k}" for k in range(n)])
    dev = np.array(["abcde"[k % 5] for k in range(n)])
    hit = np.array(pattern, dtype=bool)
    needed = int(np.ceil(np.log(P.repaired_miss_prob) / np.log(1 - 3 / 15)))            # 21 at 20 %
    assert needed > P.repaired_traversals
    for clean in (P.repaired_traversals, needed - 1):         # 5 or 20 misses in a row: still there, just missed
        assert evaluate_status(t[:16 + clean], trip[:16 + clean], dev[:16 + clean], hit[:16 + clean],
                               P).status == "confirmed"
    res = evaluate_status(t[:16 + needed], trip[:16 + needed], dev[:16 + needed], hit[:16 + needed], P)
    assert res.status == "likely_repaired" and "20%" in res.transitions[-1].reason


def test_sparse_false_hits_on_a_busy_road_do_not_confirm() -> None:
    n = 40                                          # 3 devices' hits among 40 passes: background, not a defect
    hit = np.zeros(n, bool)
    hit[[0, 15, 30]] = True
    dev = np.array([f"d{k % 7}" for k in range(n)])
    res = evaluate_status(T0_S + np.arange(n) * 3600.0, np.array([f"t{k}" for k in range(n)]), dev, hit, P)
    assert res.status == "candidate"


# ------------------------------------------------------------------------------------------- through ingest


def test_twenty_hits_from_one_device_stay_candidate(store) -> None:  # noqa: F811
    for k in range(20):
        add_trip(store, f"t{k}", "only-phone", T0_S + k * DAY_S, [POTHOLE])
    assert _status(store) == "candidate"
    d = store.all_defects()
    assert int(d["n_hits"][0]) == 20 and int(d["n_devices"][0]) == 1
    assert [h["to_status"] for h in store.history(int(d["defect_id"][0]))] == ["candidate"]


def test_confirmed_then_likely_repaired_then_hit_again(store) -> None:  # noqa: F811
    _confirmed(store)
    did = int(store.all_defects()["defect_id"][0])
    for k in range(4):
        add_trip(store, f"clean{k}", ["d", "e"][k % 2], T0_S + (5 + k) * DAY_S, [])
    assert _status(store) == "confirmed"            # four clean passes are not enough
    s = add_trip(store, "clean4", "d", T0_S + 9 * DAY_S, [])
    assert _status(store) == "likely_repaired"
    assert s.status_changes == ((did, "confirmed", "likely_repaired"),)
    add_trip(store, "again", "f", T0_S + 10 * DAY_S, [POTHOLE])
    assert _status(store) == "confirmed"
    hist = store.history(did)
    assert [(h["from_status"], h["to_status"]) for h in hist] == [
        (None, "candidate"), ("candidate", "confirmed"), ("confirmed", "likely_repaired"),
        ("likely_repaired", "confirmed")]
    assert all(h["reason"] and h["actor"] == "system" for h in hist)
    assert hist[2]["t_s"] == pytest.approx(store.all_defects()["last_traversal_s"][0] - DAY_S, abs=60.0)


def test_crew_repaired_dismissed_and_reopen(store) -> None:  # noqa: F811
    _confirmed(store)
    did = int(store.all_defects()["defect_id"][0])
    rec = views.set_status(store, did, "repaired", reason="patched, order 17", actor="crew 3",
                              at_s=T0_S + 5 * DAY_S, clock=lambda: T0_S + 5 * DAY_S)
    assert rec["status"] == "repaired" and rec["history"][-1]["by"] == "crew 3"
    assert views.list_defects(store).defects == []                # hidden from the default list
    assert views.list_defects(store, status="repaired").defects[0]["id"] == did
    add_trip(store, "clean", "d", T0_S + 6 * DAY_S, [])
    assert _status(store) == "repaired"
    add_trip(store, "after", "e", T0_S + 7 * DAY_S, [POTHOLE])          # broke again
    assert _status(store) == "candidate"
    assert store.history(did)[-1]["reason"].startswith("hit again after the repair")

    views.set_status(store, did, "dismissed", reason="a drain grate, by design", at_s=T0_S + 8 * DAY_S)
    for k, dev in enumerate(["f", "g", "h"]):
        add_trip(store, f"more{k}", dev, T0_S + (9 + k) * DAY_S, [POTHOLE])
    assert _status(store) == "dismissed" and len(store.all_defects()) == 1   # its hits still join it
    views.set_status(store, did, "reopen", reason="grate replaced by a pothole", at_s=T0_S + 20 * DAY_S)
    assert _status(store) == "confirmed"
    tos = [h["to_status"] for h in store.history(did)]
    assert "repaired" in tos and "dismissed" in tos and "reopened" in tos
    # the data's status holds from the reopen on (once dated back to when the replay first confirmed it, which
    # put the history out of time order and hid the defect from a since= query)
    assert float(store.all_defects()["status_since_s"][0]) == T0_S + 20 * DAY_S
    hist = store.history(did)
    assert [h["t_s"] for h in hist] == sorted(h["t_s"] for h in hist)
    assert (hist[-1]["from_status"], hist[-1]["to_status"], hist[-1]["t_s"]) == ("reopened", "confirmed",
                                                                                T0_S + 20 * DAY_S)
    assert (hist[-2]["from_status"], hist[-2]["to_status"]) == ("dismissed", "reopened")      # reads on


def test_history_does_not_depend_on_the_order_trips_arrive(tmp_path) -> None:
    """Trips uploaded late: the automatic history is the replay's (once the first upload's dates stayed)."""
    from bump.store import Store

    trips = [(f"t{k}", dev, T0_S + k * DAY_S) for k, dev in enumerate(["a", "b", "a", "c", "d"])]
    timelines = []
    for name, order in (("in-order", trips), ("reversed", trips[::-1]), ("shuffled", [trips[k] for k in
                                                                                       (3, 0, 4, 1, 2)])):
        with Store.open(tmp_path / f"{name}.db") as s:
            for trip, dev, t0 in order:
                add_trip(s, trip, dev, t0, [POTHOLE])
            did = int(s.all_defects()["defect_id"][0])
            auto = [(h["t_s"], h["from_status"], h["to_status"]) for h in s.history(did)
                    if h["from_status"] != h["to_status"]]
            timelines.append((auto, float(s.all_defects()["status_since_s"][0])))
    assert timelines[0][0][-1][2] == "confirmed" and timelines[0][0][0][1] is None
    assert timelines[1] == timelines[0] and timelines[2] == timelines[0], timelines


def test_invalid_crew_changes_are_refused(store) -> None:  # noqa: F811
    _confirmed(store)
    did = int(store.all_defects()["defect_id"][0])
    with pytest.raises(InvalidStatusError, match="crews may set"):
        views.set_status(store, did, "likely_repaired", reason="looks fixed")
    with pytest.raises(InvalidStatusError, match="already confirmed"):
        views.set_status(store, did, "confirmed", reason="looks bad")
    with pytest.raises(InvalidStatusError, match="reason"):
        views.set_status(store, did, "repaired", reason="  ")
    with pytest.raises(StoreError, match="no defect"):
        views.set_status(store, 999, "repaired", reason="x")
    with pytest.raises(lifecycle.StatusConflictError, match="no crew decision to reopen"):   # once accepted (CLI)
        views.set_status(store, did, "reopen", reason="x")
    assert _status(store) == "confirmed" and len(store.history(did)) == 2


def test_crew_confirms_a_candidate_seen_on_site(store) -> None:  # noqa: F811
    add_trip(store, "hit0", "a", T0_S, [POTHOLE])
    did = int(store.all_defects()["defect_id"][0])
    assert _status(store) == "candidate"
    views.set_status(store, did, "confirmed", reason="seen on site, 6 cm deep")
    assert _status(store) == "confirmed"
    assert store.history(did)[-1]["reason"] == "seen on site, 6 cm deep"


def test_crew_decision_survives_reprocess(store) -> None:  # noqa: F811
    impacts = {f"hit{k}": [POTHOLE] for k in range(3)}
    _confirmed(store)
    did = int(store.all_defects()["defect_id"][0])
    views.set_status(store, did, "dismissed", reason="a speed table", at_s=T0_S + 4 * DAY_S)
    summary = pipeline.reprocess(store, detect_fn=lambda tr, _p: fake_detection(tr, impacts[tr.trip_id]))
    assert summary.carried_over == 1 and summary.lost_decisions == 0
    d = store.all_defects()
    # the same id (once a new one: the ids on crews' work orders stopped naming their defects)
    assert len(d) == 1 and d["status"][0] == "dismissed" and int(d["defect_id"][0]) == did
    assert any(h["reason"] == "a speed table (kept through a reprocess)" for h in store.history(did))


# -------------------------------------------------------------------------------------------------- priority


def test_deep_pothole_on_a_busy_street_ranks_first() -> None:
    #            deep+busy  shallow+quiet  deep+quiet  shallow+busy
    sev = np.array([15.0, 3.0, 15.0, 3.0])
    tpd = np.array([20.0, 0.5, 0.5, 20.0])
    pr = priority(sev, np.full(4, 0.9), tpd, np.full(4, "pothole"), np.full(4, "confirmed"), P)
    assert pr[0] == pr.max() and pr[1] == pr.min()
    assert pr[0] > pr[2] and pr[0] > pr[3]
    # a candidate ranks below the same confirmed defect; dismissed and designed features rank zero
    st = priority(sev[:1].repeat(3), np.full(3, 0.9), tpd[:1].repeat(3), np.array(["pothole"] * 2 + ["joint"]),
                  np.array(["confirmed", "candidate", "confirmed"]), P)
    assert st[0] > st[1] > 0 and st[2] == 0
    assert priority(sev[:1], np.ones(1), tpd[:1], np.array(["pothole"]), np.array(["dismissed"]), P)[0] == 0


def test_busy_deep_pothole_ranks_above_quiet_shallow_one_in_the_list(store) -> None:  # noqa: F811
    # deep pothole on a street passed 12 times a day ... shallow one on a lane passed once a day
    for k in range(12):
        add_trip(store, f"busy{k}", f"d{k % 6}", T0_S + k * 7200.0, [(0.0, 0.0, "pothole", 14.0, 0.9)]
                 if k % 2 == 0 else [])
    for k in range(6):
        add_trip(store, f"quiet{k}", f"q{k}", T0_S + k * DAY_S, [(0.0, -500.0, "pothole", 3.0, 0.9)]
                 if k % 2 == 0 else [], heading_deg=90.0, offset_m=500.0)
    ranked = views.list_defects(store).defects
    assert len(ranked) == 2
    assert [d["traversals"] for d in ranked] == [12, 6] and [d["status"] for d in ranked] == ["confirmed"] * 2
    assert ranked[0]["severity"] == pytest.approx(14.0) and ranked[0]["priority"] > ranked[1]["priority"] > 0


# ------------------------------------------------------------------------------------- a trip's miss, quickly


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), rate=st.sampled_from([0.05, 0.3, 0.7, 1.0]),
       start=st.sampled_from([None, "confirmed", "repaired"]), late=st.booleans())
def test_a_miss_resumed_quickly_is_the_replay_of_that_pass(seed, n, rate, start, late) -> None:
    rng = np.random.default_rng(seed)
    t = T0_S + np.arange(n) * 3600.0
    trip = np.array([f"t{k:03d}" for k in range(n)])
    dev = np.array([f"d{k}" for k in rng.integers(0, 4, n)])
    hit = rng.random(n) < np.where(np.arange(n) < n // 2, rate, rate / 4)       # then mostly misses
    crew_at = T0_S + (n + (5 if late else -5)) * 3600.0 if start else None     # a crew decision after the pass?
    crew = (start, crew_at) if start else (None, None)
    _, before = replay_passes(t, trip, dev, hit, P, start=start, crew=crew, start_t_s=crew_at)
    before = Replay.from_json(before.to_json())                              # as stored
    t_miss, trip_miss, dev_miss = T0_S + n * 3600.0 + 60.0, f"t{n:03d}", f"d{rng.integers(0, 4)}"
    out, slow = replay_passes([t_miss], [trip_miss], [dev_miss], [False], P, resume=before, start_t_s=crew_at)
    fast = lifecycle.resume_after_miss(before, t_miss, trip_miss, dev_miss, P, start_t_s=crew_at)
    if fast is None:          # left to the whole replay: the status changes, or the pass is before the crew's
        assert out or (crew_at is not None and t_miss <= crew_at)
    else:
        assert out == [] and fast == slow and fast.to_json() == slow.to_json()
    if not out and not (crew_at is not None and t_miss <= crew_at):
        assert fast is not None                                              # every quiet miss goes the quick way
    # read, resumed and written as JSON: what the dataclass's way gives (None where it does not resume quickly)
    text = before.to_json()
    other_rules = DefectParams(confirm_devices=4)
    for t_pass, trip_pass, crew_pass, params in ((t_miss, trip_miss, crew, P), (t_miss, trip_miss, ("x", 0.0), P),
                                                 (T0_S - 1.0, "t", crew, P), (t_miss, trip_miss, crew, other_rules)):
        parsed = Replay.from_json(text)
        want = None
        if parsed.resumes(t_pass, trip_pass, crew_pass, params):
            after = lifecycle.resume_after_miss(parsed, t_pass, trip_pass, dev_miss, params, start_t_s=crew_pass[1])
            want = None if after is None else after.to_json()
        assert lifecycle.resume_json_after_miss(text, t_pass, trip_pass, dev_miss, crew_pass, params) == want
    if fast is not None and before.resumes(t_miss, trip_miss, crew, P):
        assert lifecycle.resume_json_after_miss(text, t_miss, trip_miss, dev_miss, crew, P) == fast.to_json()


def test_a_quick_miss_takes_the_values_as_a_replay_reads_them() -> None:
    before = Replay(state="candidate", devices=("b", "a", "a"), n_pass=3, n_hit=2, n_clean=0,
                    clean_devices=("z", "y"), last=(T0_S, "t0"), params=P.digest())
    fast = lifecycle.resume_after_miss(before, np.float64(T0_S + 1.0), np.str_("t1"), np.str_("c"), P)
    _, slow = replay_passes(np.array([T0_S + 1.0]), np.array(["t1"]), np.array(["c"]), np.array([0]), P,
                            resume=before)
    assert fast == slow and fast.devices == ("a", "b") and fast.last == (T0_S + 1.0, "t1")
    assert type(fast.last[0]) is float and type(fast.last[1]) is str
    nan_pass = lifecycle.resume_after_miss(before, np.nan, "t2", "c", P)
    assert nan_pass == replay_passes([np.nan], ["t2"], ["c"], [0], P, resume=before)[1]


@pytest.mark.parametrize("hit_rate", [-0.5, 0.0, 1e-9, 0.01, 0.1, 1 / 3, 0.5, 2 / 3, 0.999, 1.0, 1.5])
def test_the_clean_streak_remembered_is_the_one_computed(hit_rate: float) -> None:
    for params in (P, DefectParams(repaired_traversals=3, repaired_miss_prob=0.05)):
        want = params.repaired_traversals if hit_rate >= 1.0 else (
            np.iinfo(np.int64).max if hit_rate <= 0.0 else
            max(params.repaired_traversals,
                int(np.ceil(np.log(params.repaired_miss_prob) / np.log1p(-hit_rate) - 1e-9))))
        assert lifecycle.repaired_streak(hit_rate, params) == want
        assert lifecycle.repaired_streak(hit_rate, params) == want          # remembered
    with pytest.raises(ValueError):
        lifecycle.repaired_streak(float("nan"), P)


def test_a_miss_that_makes_a_defect_likely_repaired_is_left_to_the_whole_replay() -> None:
    before = Replay(state="confirmed", n_pass=10, n_hit=10, n_clean=P.repaired_traversals - 1,
                    clean_devices=("a", "b"), last=(T0_S, "t0"), params=P.digest())
    out, _ = replay_passes([T0_S + 1.0], ["t1"], ["c"], [0], P, resume=before)
    assert [tr.to_status for tr in out] == ["likely_repaired"]
    assert lifecycle.resume_after_miss(before, T0_S + 1.0, "t1", "c", P) is None
    one_short = Replay(**{**before.__dict__, "n_clean": P.repaired_traversals - 2})
    out, slow = replay_passes([T0_S + 1.0], ["t1"], ["c"], [0], P, resume=one_short)
    assert out == [] and lifecycle.resume_after_miss(one_short, T0_S + 1.0, "t1", "c", P) == slow


def test_a_replay_that_cannot_be_read_is_not_resumed_as_json() -> None:
    for text in (None, "", "{", "[]", '{"state": "confirmed"}', '{"state": null, "devices": [], "n_pass": "x"}'):
        assert Replay.from_json(text) is None
        assert lifecycle.resume_json_after_miss(text, T0_S, "t", "d", (None, None), P) is None
