"""Re-choose a trained segmenter's post-processing thresholds on annotated frames.

Thresholds depend on the data more than the weights do: a model can be fitted to a new
sequence's look by tuning them on a few annotated frames, without retraining.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from inference.models.folder import CONFIG_NAME
from inference.segmentation.segmenter import Segmenter
from seg_code.resize import resample, scaled_shape
from training.segmentation.fit_segmenter import tune_postprocess
from training.segmentation.samples import SegSample


def tune_model_thresholds(model_dir: str | Path, samples: list[SegSample]) -> dict[str, Any]:
    """Tune the thresholds of `model_dir` on `samples`, rewrite its config, return the scores."""
    model_dir = Path(model_dir)
    segmenter = Segmenter.from_folder(model_dir)
    segmenter.precision = "float32"  # thresholds are chosen on the exact probabilities
    probs = [
        segmenter.probabilities(
            list(resample(s.image, scaled_shape(s.labels.shape, segmenter.scale))),
            s.labels.shape,
        )
        for s in samples
    ]
    tuned, scores = tune_postprocess(probs, samples, segmenter.postprocess)
    path = model_dir / CONFIG_NAME
    config = json.loads(path.read_text())
    config["postprocess"] = tuned.to_dict()
    config.setdefault("training", {})["tuned_on"] = {
        "frames": [s.index for s in samples],
        "scores": scores,
    }
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, path)
    return scores
