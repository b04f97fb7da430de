"""Physical road-and-phone simulator: roads, defects, vehicles, drivers, phones and GPS.

Everything a phone records is the outcome of physics, not drawn waveforms:

* ``road``     network geometry in local metres, ISO 8608 wheel-path profiles, defect shapes;
* ``tyre``     the rigid-tyre envelope (a wheel cannot follow a short deep hole) and contact-patch smoothing;
* ``vehicle``  four quarter-cars with tyre lift-off, rigid-body heave/pitch/roll of the body;
* ``driving``  routes, speed profiles (curves, bumps, stops), lateral wander;
* ``phone``    mount orientation, mount resonance, engine vibration, sampling without anti-alias filter,
               jitter, drops, noise, quantisation, clipping, gyroscope, handling and door slams;
* ``gps``      1 Hz fixes with correlated error, latency, outages, Doppler speed and heading;
* ``scenario`` the smoke / city / hard parameter sets; ``world`` draws a scenario's network and defects;
* ``generate`` assembles trips and writes them; ``truth`` is what ``truth.json`` holds.

The simulator knows nothing of the detector: it has no thresholds and marks no spikes. The truth it writes
is geometric (which wheel touched which defect, when, at what speed).
"""

from bump.sim.generate import generate
from bump.sim.scenario import SCENARIOS, ScenarioParams

__all__ = ["SCENARIOS", "ScenarioParams", "generate"]
