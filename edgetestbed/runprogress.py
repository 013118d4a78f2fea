"""What a run's logs say: read as they grow while the run goes, and summed up at its end.

`Progress` reads every process's JSON-lines log incrementally (the runner polls it to see
processes ready, windows reached, scores and who finished); :func:`summarize` turns it into
the run's five-line answer (``summary.json``) and :func:`format_summary` into the text the
terminal shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from edgetestbed.data.datasets import DATASETS
from edgetestbed.data.schedule import kept_pace, lost_a_window, pace_warning, window_grace
from edgetestbed.rundir import RunDir
from edgetestbed.spec.model import Spec
from edgetestbed.spec.plan import CLOUD_ID
from edgetestbed.topo.loopback import NOT_EMULATED


@dataclass
class Progress:
    """What the logs said so far, read incrementally."""

    offsets: dict[str, int] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)    # ident -> unix time of READY
    windows: dict[str, int] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)  # ident -> unix time of START
    finished: dict[str, str] = field(default_factory=dict)   # ident -> DONE | STOP | ERROR
    errors: dict[str, str] = field(default_factory=dict)
    behind: tuple[float, str | None, int | None] = (0.0, None, None)  # latest sample: (s, sensor, window)

    def read(self, logs: Path, idents: Iterable[str]) -> None:
        for ident in idents:
            for event in self._new_events(logs / f"{ident}.jsonl", ident):
                self._apply(ident, event)

    def _new_events(self, path: Path, ident: str) -> list[dict]:
        if not path.exists():
            return []
        with open(path, encoding="utf-8") as stream:
            stream.seek(self.offsets.get(ident, 0))
            text = stream.read()
        complete = text[:text.rfind("\n") + 1]  # a line still being written waits for next time
        self.offsets[ident] = self.offsets.get(ident, 0) + len(complete.encode())
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def _apply(self, ident: str, event: dict) -> None:
        kind, payload = event.get("type"), event.get("payload", {})
        if payload.get("behind", 0.0) > self.behind[0]:  # a sensor's STATISTIC or BEHIND
            self.behind = (payload["behind"], ident, payload.get("window"))
        if kind == "READY":
            self.ready[ident] = event["ts"]
        elif kind == "START":
            self.started[ident] = event["ts"]
        elif kind == "STATISTIC":
            if "window" in payload:
                self.windows[ident] = payload["window"] + 1
            score = payload.get("accuracy", payload.get("score"))
            if score is not None:
                self.accuracy[ident] = score
        elif kind in ("DONE", "STOP", "ERROR"):
            self.finished[ident] = kind
            if kind == "ERROR":
                self.errors[ident] = payload.get("error", "unknown error")



def summarize(spec: Spec, run: RunDir, progress: Progress, seconds: float, completed: bool,
              start_at: float) -> dict:
    """The five-line answer: accuracy per level, bytes, duration, completeness.

    ``late_starters`` names processes that started after window 0 began: restarted ones,
    or ones too starved of CPU to notice the open start barrier within its lead; their
    first window saw fewer samples than the spec asks. ``pace`` says whether every sample left
    within the window grace of its send time (else the machine was too slow for the
    spec; see :func:`~edgetestbed.data.schedule.kept_pace`).
    """
    levels = {"root": [spec.root.id], "parameter servers": [n.id for n in spec.parameter_servers],
              "workers": [n.id for n in spec.workers]}
    if spec.cloud is not None:
        levels["cloud"] = [CLOUD_ID]
    accuracy = {level: _mean([progress.accuracy[i] for i in ids if i in progress.accuracy])
                for level, ids in levels.items() if ids}
    tree_bytes, sensor_bytes = _bytes_sent(run.path / "logs")
    return {"run_dir": str(run.path), "completed": completed, "seconds": round(seconds, 1),
            "final_score": accuracy, "tree_bytes_sent": tree_bytes, "sensor_bytes_sent": sensor_bytes,
            "finished": progress.finished, "errors": progress.errors,
            "late_starters": sorted(i for i, ts in progress.started.items() if ts > start_at),
            "pace": _pace(spec, progress)}


def _pace(spec: Spec, progress: Progress) -> dict:
    behind, sensor, window = progress.behind
    interval = spec.windows.interval
    return {"kept": kept_pace(behind, interval), "sensor_behind_max_s": round(behind, 3), "sensor": sensor,
            "window": window, "tolerance_s": round(window_grace(interval), 3),
            "stopped": lost_a_window(behind, interval)}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _bytes_sent(logs: Path) -> tuple[int, int]:
    """Bytes of every tree message nodes sent (their CONNECTION logs) and of the samples every
    sensor sent (their STATISTIC logs), both wire size incl. framing; one pass, as the logs of a
    long run are large."""
    tree = sensors = 0
    for path in logs.glob("*.jsonl"):
        is_sensor = path.name.startswith("sensor")
        for line in path.read_text(encoding="utf-8").splitlines():
            if '"CONNECTION"' in line:
                payload = json.loads(line)["payload"]
                if payload.get("direction") == "sent":
                    tree += payload.get("bytes", 0)
            if is_sensor and '"STATISTIC"' in line:
                sensors += json.loads(line)["payload"].get("bytes", 0)
    return tree, sensors


def format_summary(summary: dict, spec: Spec) -> str:
    scores = ", ".join(f"{level} {value:.3f}" for level, value in summary["final_score"].items()
                       if value is not None)
    pace = summary["pace"]
    stopped = "stopped early" if pace["stopped"] else "timed out or interrupted"
    status = "every node finished" if summary["completed"] else f"INCOMPLETE: {summary['errors'] or stopped}"
    if summary["late_starters"]:
        status += f"; started after window 0 began: {', '.join(summary['late_starters'])}"
    if not pace["kept"]:
        status += "; " + pace_warning(pace["sensor"], pace["window"], pace["sensor_behind_max_s"],
                                      spec.windows.interval)
    return "\n".join([
        *([] if spec.network.emulated else [f"NOT EMULATED ({spec.network.backend}): {NOT_EMULATED}"]),
        f"run directory: {summary['run_dir']}",
        f"final {'accuracy' if DATASETS.get(spec.data.dataset).task == 'classification' else 'score'}: "
        f"{scores}",
        (f"raw data the sensors sent the cloud (their logs): {summary['sensor_bytes_sent'] / 1e6:.2f} MB"
         if spec.centralized else f"model exchange traffic (node logs): {summary['tree_bytes_sent'] / 1e6:.2f} MB"),
        f"duration: {summary['seconds']:.0f} s for {spec.windows.limit} windows of {spec.windows.interval:g} s",
        status,
    ])
