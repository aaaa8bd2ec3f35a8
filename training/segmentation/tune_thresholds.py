"""Re-choose a trained segmenter's post-processing thresholds on annotated frames.

Thresholds depend on the data more than the weights do: a model can be fitted to a new
sequence's look by tuning them on a few annotated frames, without retraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.models.folder import update_model_config
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
    tuned_on = {"frames": [s.index for s in samples], "scores": scores}
    update_model_config(model_dir, {"postprocess": tuned.to_dict()}, {"tuned_on": tuned_on})
    return scores
